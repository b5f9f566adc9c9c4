"""Validation and lowering of bind, ssh, secret-env and cache mounts and of ADD (no daemon):
each bad value is an ImageSpecError naming the image, the field, the value and the fix."""

from __future__ import annotations

import pytest

from llbkit import llb
from llbkit.image import (
    AddStep,
    BindMount,
    CacheMount,
    ContextSource,
    ImageSpec,
    ImageSpecError,
    RegistryBase,
    RunStep,
    SecretMount,
    SpecBase,
    SshMount,
    UrlSource,
    image_graph,
    lower,
    registry_bases,
)

SUM = "sha256:" + "0" * 64


def _bad(step, field: str, *fragments: str) -> None:
    with pytest.raises(ImageSpecError) as e:
        lower(ImageSpec(name="img", steps=(step,)), "linux/amd64")
    assert e.value.field == field, str(e.value)
    for f in fragments:
        assert f in str(e.value), str(e.value)


@pytest.mark.parametrize("step, field, fragments", [
    (RunStep(["/x"], mounts=(BindMount("rel", ContextSource("context", "a")),)), "steps[0].mounts[0].target",
     ("absolute path",)),
    (RunStep(["/x"], mounts=(BindMount("/m", RegistryBase("busybox:1.36")),)), "steps[0].mounts[0].source",
     ("pinned by digest", "busybox:1.36@sha256:")),
    (RunStep(["/x"], mounts=(BindMount("/m", SpecBase(ImageSpec(name="o")), path="out"),)),
     "steps[0].mounts[0].path", ("absolute",)),
    (RunStep(["/x"], mounts=(BindMount("/m", ContextSource("context", "a"), path="/sub"),)),
     "steps[0].mounts[0].path", ("takes its path from the source",)),
    (RunStep(["/x"], mounts=(CacheMount("/c", mode="rwx"),)), "steps[0].mounts[0].mode", ("octal",)),
    (RunStep(["/x"], mounts=(CacheMount("/c", uid=-1),)), "steps[0].mounts[0].uid", ("0..4294967294",)),
    (RunStep(["/x"], mounts=(CacheMount("/c", path="/sub"),)), "steps[0].mounts[0].path", ("needs a source",)),
    (RunStep(["/x"], mounts=(SecretMount("t", env="A=B"),)), "steps[0].mounts[0].env", ("variable name",)),
    (RunStep(["/x"], secrets=(SecretMount("t", env="A"), SecretMount("u", env="A"))), "steps[0].secrets",
     ("same variable",)),
    (RunStep(["/x"], mounts=(SshMount("my agent"),)), "steps[0].mounts[0].id", ("ssh agent id",)),
    (RunStep(["/x"], mounts=(SshMount(target="run/ssh"),)), "steps[0].mounts[0].target", ("absolute",)),
    (RunStep(["/x"], security="privileged"), "steps[0].security", ("sandbox, insecure",)),
    (AddStep(UrlSource("ftp://example.com/x", SUM), "/opt/"), "steps[0].source.url", ("http:// or https://",)),
    (AddStep(UrlSource("https://example.com/x", "md5:abc"), "/opt/"), "steps[0].source.checksum", ("sha256sum",)),
    (AddStep(ContextSource("context", "../x.tar"), "/opt/"), "steps[0].source.path", ("inside the build context",)),
    (AddStep(UrlSource("https://example.com/x", SUM), "/opt/", chmod="rw"), "steps[0].chmod", ("octal",)),
])
def test_bad_values(step, field: str, fragments) -> None:
    _bad(step, field, *fragments)


def test_env_only_secret_occupies_no_path() -> None:
    spec = ImageSpec(name="img", steps=(RunStep(["/x"], mounts=(
        SecretMount("a", env="A"), SecretMount("b", env="B"), SecretMount("a", target="/run/secrets/a"))),))
    body = [op for op in lower(spec, "linux/amd64").definition.ops if op.kind == "exec"][0].body
    assert [m["dest"] for m in body["mounts"]] == ["/", "/run/secrets/a"]
    assert [(s["ID"], s["name"]) for s in body["secretenv"]] == [("a", "A"), ("b", "B")]


def test_mounted_images_are_part_of_the_graph() -> None:
    builder = ImageSpec(name="builder", base=RegistryBase("registry.example.com/gcc:13"))
    spec = ImageSpec(name="app", base=RegistryBase("registry.example.com/busybox:1.36"), steps=(
        RunStep(["/x"], mounts=(BindMount("/b", SpecBase(builder)), CacheMount("/c", source=SpecBase(builder)))),))
    assert [s.name for s in image_graph(spec)] == ["app", "builder"]
    assert registry_bases(spec) == ["registry.example.com/busybox:1.36", "registry.example.com/gcc:13"]


def test_cache_owner_seeds_the_cache_like_the_dockerfile_frontend() -> None:
    spec = ImageSpec(name="img", steps=(RunStep(["/x"], mounts=(CacheMount("/c", id="c", uid=1, gid=2, mode="0700"),)),))
    ops = lower(spec, "linux/amd64").definition.ops
    (mkdir,) = [op for op in ops if op.kind == "file"]
    action = mkdir.body["actions"][0]["Action"]["mkdir"]
    assert (action["path"], action["mode"]) == ("/cache", 0o700)
    assert mkdir.metadata.description["llb.customname"] == "[internal] settings cache mount permissions"
    (run,) = [op for op in ops if op.kind == "exec"]
    cache = run.body["mounts"][1]
    assert (cache["selector"], cache["cacheOpt"]["ID"], cache["mountType"]) == ("/cache", "c", 3)


def test_bind_mounts_are_read_only_unless_readwrite_and_never_outputs() -> None:
    other = ImageSpec(name="o")
    spec = ImageSpec(name="img", steps=(RunStep(["/x"], mounts=(
        BindMount("/ro", SpecBase(other), path="/out"), BindMount("/rw", SpecBase(other), readwrite=True))),))
    (run,) = [op for op in lower(spec, "linux/amd64").definition.ops if op.kind == "exec"]
    ro, rw = run.body["mounts"][1:]
    assert (ro["dest"], ro.get("readonly"), ro["selector"], ro["output"]) == ("/ro", True, "/out", -1)
    assert (rw["dest"], rw.get("readonly", False), rw["output"]) == ("/rw", False, -1)
    assert llb.caps.EXEC_MOUNT_BIND_READWRITE_NO_OUTPUT in run.metadata.caps
