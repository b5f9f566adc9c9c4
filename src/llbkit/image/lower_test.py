from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from typing import Any, Dict, List

import pytest

from llbkit import llb
from llbkit.image import (
    CacheMount,
    ContextSource,
    CopyStep,
    ImageSpec,
    ImageSpecError,
    MissingBaseConfigError,
    RegistryBase,
    ResolvedBase,
    RunStep,
    ScratchBase,
    SecretMount,
    SpecBase,
    TmpfsMount,
    lower,
    plan,
    registry_bases,
)

BUSYBOX = "registry.example.com/busybox:1.36"
DIGEST = "sha256:" + "ab" * 32


def base_config(arch: str = "amd64", **config: Any) -> Dict[str, Any]:
    cfg = {"Env": ["PATH=/usr/bin:/bin", "FROM_BASE=1"], "Cmd": ["sh"], "WorkingDir": "/base", "User": "nobody"}
    cfg.update(config)
    return {
        "architecture": arch,
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "11" * 32]},
        "history": [{"created_by": "base layer"}],
    }


CONFIGS = {BUSYBOX: base_config()}


def app_spec(**kw: Any) -> ImageSpec:
    fields: Dict[str, Any] = dict(
        name="//app:img",
        base=RegistryBase(BUSYBOX),
        steps=[
            CopyStep(ContextSource("ctx", "app/main.sh"), "/app/", chmod="0755", chown="1000:1000"),
            CopyStep(ContextSource("ctx", "conf"), "etc/conf", chmod=0o644),
            RunStep("echo $PORT > out", mounts=[CacheMount("/var/cache/apt", sharing="locked")]),
            RunStep(["/app/main.sh", "--check"], network="none", secrets=[SecretMount("token")],
                    mounts=[TmpfsMount("/scratch", size=1 << 20)]),
        ],
        env={"PORT": "8080"},
        workdir="/app",
        user="1000:1000",
        entrypoint=["/app/main.sh"],
        labels={"org.opencontainers.image.source": "https://example.com"},
        exposed_ports=["8080", "53/udp"],
        volumes=["/data"],
        stop_signal="SIGTERM",
        platforms=["linux/amd64", "linux/arm64"],
    )
    fields.update(kw)
    return ImageSpec(**fields)


def kinds(d: llb.Definition) -> List[str]:
    return [op.kind for op in d.ops if not op.is_terminal]


def ops_of(d: llb.Definition, kind: str) -> List[llb.OpView]:
    return [op for op in d.ops if op.kind == kind]


def action(op: llb.OpView, kind: str) -> Dict[str, Any]:
    (found,) = [a["Action"][kind] for a in op.body["actions"] if kind in a["Action"]]
    return found


def chain(d: llb.Definition) -> List[llb.OpView]:
    """The ops from the head down its first inputs (the image's layer chain), base first."""
    out = []
    dgst = d.head
    while dgst is not None:
        op = d.op(dgst)
        out.append(op)
        dgst = op.inputs[0].digest if op.inputs else None
    return out[::-1]


def test_ops_in_step_order_with_image_and_local_sources() -> None:
    low = lower(app_spec(), "linux/amd64", base_configs=CONFIGS, context_digest="sha256:ctx")
    d = llb.load(low.definition.to_bytes())
    layers = chain(d)
    assert [op.kind for op in layers] == ["source", "file", "file", "file", "exec", "exec"]
    img = layers[0]
    assert img.body["identifier"] == "docker-image://" + BUSYBOX
    assert llb.format_platform(img.platform) == "linux/amd64"
    # the workdir is created (owned by the user), then the two copies
    mkdir = layers[1].body["actions"][0]["Action"]["mkdir"]
    assert mkdir["path"] == "/app" and mkdir["makeParents"]
    assert mkdir["owner"]["user"]["User"]["byId"] == 1000
    (local,) = [op for op in ops_of(d, "source") if op.body["identifier"].startswith("local://")]
    assert local.body["identifier"] == "local://ctx"
    attrs = local.body["attrs"]
    assert json.loads(attrs["local.includepattern"]) == ["app/main.sh", "conf"]
    assert attrs["local.sharedkeyhint"] == "ctx"
    assert attrs["local.unique"] == "llbkit-context:sha256:ctx"
    c1 = action(layers[2], "copy")
    assert (c1["src"], c1["dest"], c1["mode"]) == ("/app/main.sh", "/app/", 0o755)
    assert c1["owner"]["user"]["User"]["byId"] == 1000 and c1["owner"]["group"]["User"]["byId"] == 1000
    assert c1["dirCopyContents"] and c1["createDestPath"] and c1["followSymlink"]
    c2 = action(layers[3], "copy")
    # relative dest: under the working directory; no chown: root
    assert (c2["src"], c2["dest"], c2["mode"]) == ("/conf", "/app/etc/conf", 0o644)
    assert c2["owner"]["user"]["User"].get("byId", 0) == 0 and c2["owner"]["group"]["User"].get("byId", 0) == 0
    assert layers[2].inputs[1].digest == local.digest
    # one copy per step, as the Dockerfile frontend emits it: with an octal chmod, the directories
    # the copy creates get that mode (BuildKit's rule; see dockerfile_parity_integration_test)
    assert [list(a["Action"]) for a in layers[2].body["actions"]] == [["copy"]]


def test_runs_see_accumulated_env_cwd_user_and_mounts() -> None:
    low = lower(app_spec(), "linux/arm64", base_configs=CONFIGS)
    run1, run2 = [op.body for op in chain(low.definition) if op.kind == "exec"]
    meta = run1["meta"]
    assert meta["args"] == ["/bin/sh", "-c", "echo $PORT > out"]
    assert meta["env"] == ["PATH=/usr/bin:/bin", "FROM_BASE=1", "PORT=8080"]
    assert meta["cwd"] == "/app" and meta["user"] == "1000:1000"
    cache = [m for m in run1["mounts"] if m["dest"] == "/var/cache/apt"][0]
    assert cache["cacheOpt"] == {"ID": "/var/cache/apt", "sharing": 2}
    assert run2["meta"]["args"] == ["/app/main.sh", "--check"]
    assert run2.get("network") == 2
    mounts = {m["dest"]: m for m in run2["mounts"]}
    assert mounts["/run/secrets/token"]["secretOpt"]["ID"] == "token"
    assert mounts["/run/secrets/token"]["secretOpt"].get("optional") is True
    assert mounts["/scratch"]["TmpfsOpt"]["size"] == 1 << 20
    execs = [op for op in low.definition.ops if op.kind == "exec"]
    assert {llb.format_platform(op.platform) for op in execs} == {"linux/arm64"}


def test_base_config_is_inherited_docker_style() -> None:
    spec = ImageSpec(name="x", base=RegistryBase(BUSYBOX), steps=[RunStep("id")])
    low = lower(spec, "linux/amd64", base_configs=CONFIGS)
    (run,) = ops_of(low.definition, "exec")
    assert run.body["meta"]["cwd"] == "/base" and run.body["meta"]["user"] == "nobody"
    assert run.body["meta"]["env"] == ["PATH=/usr/bin:/bin", "FROM_BASE=1"]
    cfg = low.oci_config()["config"]
    assert cfg["Cmd"] == ["sh"] and cfg["WorkingDir"] == "/base" and cfg["User"] == "nobody"
    # an entrypoint of our own resets the inherited cmd; env merges key by key
    low2 = lower(app_spec(), "linux/amd64", base_configs=CONFIGS)
    oci = low2.oci_config()
    cfg2 = oci["config"]
    assert "Cmd" not in cfg2 and cfg2["Entrypoint"] == ["/app/main.sh"]
    assert cfg2["Env"] == ["PATH=/usr/bin:/bin", "FROM_BASE=1", "PORT=8080"]
    assert cfg2["WorkingDir"] == "/app" and cfg2["User"] == "1000:1000"
    assert cfg2["ExposedPorts"] == {"53/udp": {}, "8080/tcp": {}}
    assert cfg2["Volumes"] == {"/data": {}} and cfg2["StopSignal"] == "SIGTERM"
    assert cfg2["Labels"] == {"org.opencontainers.image.source": "https://example.com"}
    hist = oci["history"]
    assert hist[0] == {"created_by": "base layer"}
    layers = [h["created_by"] for h in hist[1:] if not h.get("empty_layer")]
    assert layers == [
        "WORKDIR /app",
        "COPY --chown=1000:1000 --chmod=0755 ctx:app/main.sh /app/",
        "COPY --chmod=0644 ctx:conf etc/conf",
        "RUN --mount=type=cache,target=/var/cache/apt echo $PORT > out",
        'RUN --mount=type=secret,id=token --network=none ["/app/main.sh", "--check"]',
    ]
    assert not any("created" in h for h in hist)  # SOURCE_DATE_EPOCH-friendly


def test_base_shell_is_used_for_shell_form() -> None:
    cfgs = {BUSYBOX: base_config(Shell=["/bin/bash", "-eu", "-c"])}
    spec = ImageSpec(name="x", base=RegistryBase(BUSYBOX), steps=[RunStep("true")])
    (run,) = ops_of(lower(spec, "linux/amd64", base_configs=cfgs).definition, "exec")
    assert run.body["meta"]["args"] == ["/bin/bash", "-eu", "-c", "true"]


def test_resolved_digest_pins_the_base_and_keys_by_platform() -> None:
    spec = ImageSpec(name="x", base=RegistryBase("registry.example.com/busybox:1.36"))
    cfgs = {
        (BUSYBOX, "linux/amd64"): ResolvedBase(json.dumps(base_config()).encode(), DIGEST),
        (BUSYBOX, "linux/arm64"): base_config("arm64", User="arm"),
    }
    amd = lower(spec, "linux/amd64", base_configs=cfgs)
    (src,) = ops_of(amd.definition, "source")
    assert src.body["identifier"] == f"docker-image://{BUSYBOX}@{DIGEST}"
    arm = lower(spec, "linux/arm64", base_configs=cfgs)
    assert arm.oci_config()["config"]["User"] == "arm"
    assert arm.oci_config()["architecture"] == "arm64"


def test_missing_base_config_is_an_error() -> None:
    with pytest.raises(MissingBaseConfigError, match="no config for base image.*linux/amd64"):
        lower(app_spec(), "linux/amd64", base_configs={})


def test_spec_base_is_composed_directly_and_its_config_inherited() -> None:
    parent = app_spec(name="//base:img", steps=[RunStep("touch /parent")], entrypoint=None, cmd=["serve"])
    child = ImageSpec(
        name="//child:img",
        base=SpecBase(parent),
        steps=[RunStep("touch child")],
        env={"CHILD": "1"},
        platforms=["linux/amd64"],
    )
    low = lower(child, "linux/amd64", base_configs=CONFIGS)
    images = [op for op in ops_of(low.definition, "source")]
    assert [op.body["identifier"] for op in images] == ["docker-image://" + BUSYBOX]  # only the parent's
    layers = chain(low.definition)
    execs = [op.body["meta"] for op in layers if op.kind == "exec"]
    assert [m["args"][-1] for m in execs] == ["touch /parent", "touch child"]
    assert execs[1]["env"] == ["PATH=/usr/bin:/bin", "FROM_BASE=1", "PORT=8080", "CHILD=1"]
    assert execs[1]["cwd"] == "/app" and execs[1]["user"] == "1000:1000"
    cfg = low.oci_config()
    assert cfg["config"]["Cmd"] == ["serve"] and cfg["config"]["WorkingDir"] == "/app"
    assert cfg["config"]["Env"][-1] == "CHILD=1"
    created = [h.get("created_by") for h in cfg["history"]]
    assert created[0] == "base layer" and "RUN touch /parent" in created and created[-1] == "RUN touch child"
    # the parent's lowering is exactly the child's starting point
    parent_low = lower(parent, "linux/amd64", base_configs=CONFIGS)
    assert layers[-2].digest == parent_low.definition.head


def test_spec_base_must_be_built_for_the_platform() -> None:
    parent = app_spec(name="//base:img", platforms=["linux/amd64"])
    child = ImageSpec(name="//child:img", base=SpecBase(parent), platforms=["linux/arm64"])
    with pytest.raises(ImageSpecError, match=r"//base:img: field 'platforms': linux/arm64 is not one of"):
        lower(child, "linux/arm64", base_configs=CONFIGS)


def test_scratch_base_gets_default_path_and_no_image_source() -> None:
    spec = ImageSpec(name="s", steps=[CopyStep(ContextSource("c", "bin/tool"), "/usr/bin/tool")])
    low = lower(spec, "linux/amd64")
    assert [op.body["identifier"] for op in ops_of(low.definition, "source")] == ["local://c"]
    assert low.oci_config()["config"]["Env"][0].startswith("PATH=")
    assert lower(ImageSpec(name="empty"), "linux/amd64").definition.to_bytes() == llb.scratch().marshal(
        "linux/amd64").to_bytes()


@pytest.mark.parametrize(
    "dest,workdir,want",
    [
        ("/abs", None, "/abs"),
        ("/dir/", None, "/dir/"),
        ("rel", "/w", "/w/rel"),
        ("rel/", "/w", "/w/rel/"),
        (".", "/w", "/w/"),
        ("./x/../y", "/w", "/w/y"),
        ("..", "/w/v", "/w"),  # as Docker: only "." and a trailing "/" mean "into"
    ],
)
def test_copy_destination_semantics(dest: str, workdir: Any, want: str) -> None:
    spec = ImageSpec(name="d", steps=[CopyStep(ContextSource("c", "f"), dest)], workdir=workdir)
    low = lower(spec, "linux/amd64")
    (copy_op,) = [op for op in ops_of(low.definition, "file") if "copy" in op.body["actions"][0]["Action"]]
    assert copy_op.body["actions"][0]["Action"]["copy"]["dest"] == want


def test_source_date_epoch_sets_copy_and_mkdir_times() -> None:
    spec = ImageSpec(name="t", workdir="/w", steps=[CopyStep(ContextSource("c", "f"), "/f")])
    low = lower(spec, "linux/amd64", source_date_epoch=1000000000)
    actions = [op.body["actions"][0]["Action"] for op in ops_of(low.definition, "file")]
    assert [a.get("mkdir", a.get("copy"))["timestamp"] for a in actions] == [10**18] * 2


_LOWER_SCRIPT = """
import hashlib, sys
from llbkit.image import lower
from llbkit.image.lower_test import BUSYBOX, app_spec, base_config
d = lower(app_spec(), "linux/arm64", base_configs={BUSYBOX: base_config()}, context_digest="sha256:ctx")
sys.stdout.write(hashlib.sha256(d.definition.to_bytes()).hexdigest())
"""


def test_same_bytes_in_fresh_processes_with_different_hash_seeds() -> None:
    """Set and dict orders change with PYTHONHASHSEED from one process to the next, never within
    one: only fresh processes can show that lowering does not depend on them."""

    def digest_in_a_fresh_process(seed: str) -> str:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONHASHSEED=seed)
        return subprocess.run([sys.executable, "-c", _LOWER_SCRIPT], env=env, capture_output=True,
                              text=True, check=True).stdout

    here = digest_in_a_fresh_process("1")
    assert len(here) == 64
    assert digest_in_a_fresh_process("2") == digest_in_a_fresh_process("4242") == here
    other = lower(app_spec(), "linux/arm64", base_configs=CONFIGS, context_digest="sha256:other")
    assert hashlib.sha256(other.definition.to_bytes()).hexdigest() != here


def test_plan_keeps_platform_order() -> None:
    spec = app_spec(platforms=["linux/arm64", "linux/x86_64"])
    builds = plan(spec, base_configs=CONFIGS)
    assert [b.platform for b in builds] == ["linux/arm64", "linux/amd64"]
    for b in builds:
        (img,) = [op for op in ops_of(b.definition, "source") if op.body["identifier"].startswith("docker")]
        assert llb.format_platform(img.platform) == b.platform
        assert b.oci_config()["architecture"] == b.platform.split("/")[1]
    assert [b.platform for b in plan(app_spec(platforms=[]), base_configs=CONFIGS,
                                     default_platforms=["linux/amd64"])] == ["linux/amd64"]
    with pytest.raises(ImageSpecError, match="no platform to build for"):
        plan(app_spec(platforms=[]), base_configs=CONFIGS)


def test_registry_bases_lists_the_chain() -> None:
    parent = app_spec(name="//base:img")
    child = ImageSpec(name="//child:img", base=SpecBase(parent))
    assert registry_bases(child) == [BUSYBOX]
    assert registry_bases(ImageSpec(name="s", base=ScratchBase())) == []
    assert registry_bases(ImageSpec(name="b", base=RegistryBase("busybox"))) == ["docker.io/library/busybox:latest"]


# -- ordered env/user/workdir, expansion, modes, multi-stage (parity: dockerfile_parity_integration_test) --


def _execs(low: Any) -> List[Dict[str, Any]]:
    return [op.body["meta"] for op in chain(low.definition) if op.kind == "exec"]


def test_ordered_steps_change_env_user_and_workdir_for_later_steps_and_the_config() -> None:
    from llbkit.image import EnvStep, UserStep, WorkdirStep
    spec = ImageSpec(name="x", base=RegistryBase(BUSYBOX), env={"PATH": "/opt/bin:$PATH"}, user="root",
                     steps=[RunStep("adduser app"), UserStep("app"), EnvStep({"HOME": "/home/$USER_NAME",
                            "WHERE": "${FROM_BASE:+base}"}), WorkdirStep("/home/${NOPE:-app}"), RunStep("id")])
    low = lower(spec, "linux/amd64", base_configs=CONFIGS)
    first, second = _execs(low)
    assert first["user"] == "root" and first["cwd"] == "/base"
    assert first["env"] == ["FROM_BASE=1", "PATH=/opt/bin:/usr/bin:/bin"]  # Go's AddEnv: moved last
    assert second["user"] == "app" and second["cwd"] == "/home/app"
    assert second["env"][-2:] == ["HOME=/home/", "WHERE=base"]
    mkdir = [action(op, "mkdir") for op in chain(low.definition) if op.kind == "file"][0]
    assert mkdir["path"] == "/home/app" and mkdir["owner"]["user"]["User"]["byName"]["name"] == "app"
    cfg = low.oci_config()["config"]
    assert cfg["User"] == "app" and cfg["WorkingDir"] == "/home/app"
    assert cfg["Env"] == ["PATH=/opt/bin:/usr/bin:/bin", "FROM_BASE=1", "HOME=/home/", "WHERE=base"]


def test_scratch_expands_against_dockers_default_path() -> None:
    spec = ImageSpec(name="x", env={"PATH": "/app/bin:$PATH"})
    env = lower(spec, "linux/amd64").oci_config()["config"]["Env"]
    assert env == ["PATH=/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def test_copy_destination_and_user_expand() -> None:
    from llbkit.image import EnvStep, UserStep
    spec = ImageSpec(name="x", steps=[EnvStep({"D": "/srv", "U": "1000"}), UserStep("$U:$U"),
                                      CopyStep(ContextSource("c", "f"), "$D/", chown="${U}:2")])
    low = lower(spec, "linux/amd64")
    copy = [action(op, "copy") for op in chain(low.definition) if op.kind == "file"][0]
    assert copy["dest"] == "/srv/"
    assert copy["owner"]["user"]["User"]["byId"] == 1000 and copy["owner"]["group"]["User"]["byId"] == 2
    assert low.oci_config()["config"]["User"] == "1000:1000"


def test_copy_and_add_chmod_expand() -> None:
    from llbkit.image import AddStep, EnvStep
    spec = ImageSpec(name="x", steps=[EnvStep({"M": "0640"}),
                                      CopyStep(ContextSource("c", "f", files=(("", False),)), "/a", chmod="$M"),
                                      AddStep(ContextSource("c", "g"), "/b", chmod="${M}")])
    copies = [action(op, "copy") for op in chain(lower(spec, "linux/amd64").definition) if op.kind == "file"]
    assert [c.get("mode") for c in copies if c.get("mode")] == [0o640, 0o640], copies
    with pytest.raises(ImageSpecError) as e:
        lower(ImageSpec(name="//a:b", steps=[CopyStep(ContextSource("c", "f"), "/a", chmod="$NOPE")]), "linux/amd64")
    assert e.value.field == "steps[0].chmod" and "expanded to ''" in str(e.value) and "octal mode" in str(e.value)


def test_a_mount_target_must_expand_to_an_absolute_path() -> None:
    from llbkit.image import CacheMount, EnvStep, RunStep
    steps = [EnvStep({"D": "rel"}), RunStep("true", mounts=(CacheMount("$D"),))]
    with pytest.raises(ImageSpecError) as e:
        lower(ImageSpec(name="//a:b", steps=steps), "linux/amd64")
    assert e.value.field == "steps[1].mounts[0].target" and "expanded to 'rel'" in str(e.value)


def test_expansion_and_expanded_user_errors_name_the_step() -> None:
    from llbkit.image import UserStep, WorkdirStep
    with pytest.raises(ImageSpecError) as e:
        lower(ImageSpec(name="//a:b", steps=[WorkdirStep("${NOPE:?set NOPE}")]), "linux/amd64")
    assert e.value.field == "steps[0].path" and "set NOPE" in str(e.value)
    with pytest.raises(ImageSpecError) as e:
        lower(ImageSpec(name="//a:b", steps=[UserStep("$NOPE")]), "linux/amd64")
    assert e.value.field == "steps[0].user" and "expanded to ''" in str(e.value)


def test_known_modes_copy_regular_files_then_the_rest() -> None:
    files = (("a.txt", False), ("bin/run", True), ("we[i]rd*", False))
    spec = ImageSpec(name="x", steps=[CopyStep(ContextSource("c", "tree", files=files), "/t/"),
                                      CopyStep(ContextSource("c", "tool", files=(("", True),)), "/bin/"),
                                      CopyStep(ContextSource("c", "tree", files=files), "/s/", chmod="u+x,go-w"),
                                      CopyStep(ContextSource("c", "tree", files=files), "/o/", chmod="0700")])
    ops = [op for op in chain(lower(spec, "linux/amd64").definition) if op.kind == "file"]
    regular, rest = [a["Action"]["copy"] for a in ops[0].body["actions"]]
    assert regular["modeStr"] == "u=rw,go=r" and regular["include_patterns"] == ["a.txt", "we\\[i\\]rd\\*"]
    assert rest["modeStr"] == "u=rwx,go=rx" and rest["exclude_patterns"] == regular["include_patterns"]
    assert action(ops[1], "copy")["modeStr"] == "u=rwx,go=rx"
    # a symbolic mode applies to the normalized modes: copied from a staging filesystem
    sym = action(ops[2], "copy")
    assert sym["modeStr"] == "u+x,go-w" and sym["src"] == "/"
    octal = action(ops[3], "copy")
    assert octal["mode"] == 0o700 and not octal.get("modeStr")


def test_copy_from_another_image_and_a_pinned_registry_image() -> None:
    from llbkit.image import ImageSource
    builder = ImageSpec(name="//b:builder", base=RegistryBase(BUSYBOX), steps=[RunStep("make")])
    pinned = f"registry.example.com/tools@{DIGEST}"
    spec = ImageSpec(name="//b:app", steps=[CopyStep(ImageSource(builder, "/out/"), "/app/"),
                                           CopyStep(ImageSource(pinned, "/bin/tool"), "/bin/")])
    assert registry_bases(spec) == [BUSYBOX]
    low = lower(spec, "linux/arm64", base_configs=CONFIGS)
    d = low.definition
    (run,) = ops_of(d, "exec")
    assert run.body["meta"]["args"] == ["/bin/sh", "-c", "make"] and llb.format_platform(run.platform) == "linux/arm64"
    idents = sorted(op.body["identifier"] for op in ops_of(d, "source"))
    assert idents == ["docker-image://" + BUSYBOX, "docker-image://" + pinned]
    c1 = action(chain(d)[-2], "copy")
    assert c1["src"] == "/out" and "owner" not in c1  # owners kept from the image
    assert low.oci_config()["history"][-1]["created_by"] == f"COPY --from={pinned} /bin/tool /bin/"


def test_copy_from_sources_are_validated() -> None:
    from llbkit.image import ImageSource
    with pytest.raises(ImageSpecError) as e:
        lower(ImageSpec(name="x", steps=[CopyStep(ImageSource(BUSYBOX, "/bin/sh"), "/")]), "linux/amd64")
    assert e.value.field == "steps[0].source.image" and "pinned by digest" in e.value.problem
    with pytest.raises(ImageSpecError) as e:
        lower(ImageSpec(name="x", steps=[CopyStep(ImageSource(f"a/b@{DIGEST}", "bin/sh"), "/")]), "linux/amd64")
    assert e.value.field == "steps[0].source.path"


def test_base_onbuild_triggers_are_cleared() -> None:
    cfgs = {BUSYBOX: base_config(OnBuild=["RUN make"])}
    base = ImageSpec(name="base", base=RegistryBase(BUSYBOX))
    child = ImageSpec(name="child", base=SpecBase(base))
    assert "OnBuild" not in lower(base, "linux/amd64", base_configs=cfgs).oci_config()["config"]
    assert "OnBuild" not in lower(child, "linux/amd64", base_configs=cfgs).oci_config()["config"]
