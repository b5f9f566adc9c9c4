"""Images on images across the two frontends, against the fixture daemon, with no registry
round trip. A container_image on a Dockerfile image: the Dockerfile image is built by the
frontend into an OCI layout tar, and the child starts from it through ``oci-layout://`` with the
tar served from the client's session; the base's layers are kept as they are, its config is
inherited, both platforms run, and the child built again from an empty build cache is
byte-identical. And a Dockerfile image on a container_image: the container_image's LLB and
config handed to the frontend as a named input."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any, Dict, List

from llbkit.builder import BuildOptions, ExportOptions, LazyPool, SolveJob, build_job
from llbkit.builder.job import FrontendCall, JobPlatform
from llbkit.builder.oci_layouts import layout_base_configs
from llbkit.buildkit import WorkerConfig
from llbkit.image import ContextSource, CopyStep, ImageSpec, LayoutBase, RunStep, plan
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.registry import Registry
from llbkit.testutil.run_image import run_image

PLATFORMS = ("linux/amd64", "linux/arm64")
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
ARG TARGETARCH
RUN echo "base for $TARGETARCH" > /base.txt
ENV FROM_DOCKERFILE=yes
CMD ["cat", "/base.txt"]
"""


def _manifests(oci_tar: Path) -> Dict[str, Dict[str, Any]]:
    """platform -> manifest of an OCI tar with one index."""
    with tarfile.open(oci_tar) as tf:
        def blob(digest: str) -> Dict[str, Any]:
            f = tf.extractfile("blobs/" + digest.replace(":", "/"))
            assert f is not None
            return json.loads(f.read())

        f = tf.extractfile("index.json")
        assert f is not None
        (top,) = json.loads(f.read())["manifests"]
        return {f"{m['platform']['os']}/{m['platform']['architecture']}": dict(blob(m["digest"]), _config=blob(
            blob(m["digest"])["config"]["digest"])) for m in blob(top["digest"])["manifests"]}


def _layers(manifest: Dict[str, Any]) -> List[str]:
    return [d["digest"] for d in manifest["layers"]]


def test_a_container_image_starts_from_a_dockerfile_image_served_as_an_oci_layout(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "child.txt").write_text("from the child\n")
    base_job = SolveJob("//df:base", tuple(
        JobPlatform(p, b"", b"", frontend=FrontendCall("dockerfile.v0", (("build-arg:BASE", registry.busybox_ref),)))
        for p in PLATFORMS), ExportOptions(), local_dirs=("context", "dockerfile"))
    base_tar = tmp_path / "base" / "image.tar"
    with LazyPool([WorkerConfig(buildkitd_amd64.addr)]) as workers:
        build_job(base_job, workers, base_tar, tmp_path / "base" / "image.json",
                  local_dirs={"context": ctx, "dockerfile": ctx})

    spec = ImageSpec(name="//app:child", base=LayoutBase("df-base"), platforms=PLATFORMS,
                     steps=(CopyStep(ContextSource("context", "child.txt"), "/child.txt"),
                            RunStep("cat /base.txt /child.txt > /both.txt")),
                     cmd=("cat", "/both.txt"))
    bases = layout_base_configs("df-base", base_tar, PLATFORMS)
    lowered = plan(spec, base_configs=bases, context_digest="sha256:" + "0c" * 32, source_date_epoch=0)
    job = SolveJob.of(spec.name, lowered, ExportOptions(), has_context=True, oci_layouts=["df-base"])
    # the child's LLB names the base by its manifest digest and store, as Go's llb.OCILayout does
    first_ops = [op for op in lowered[0].definition.ops if op.kind == "source"]
    layout_ops = [op for op in first_ops if op.body["identifier"].startswith("oci-layout://")]
    assert [op.body["identifier"] for op in layout_ops] == [
        f"oci-layout://docker.io/library/df-base@{bases[('oci-layout://df-base', 'linux/amd64')].digest}"]
    assert layout_ops[0].body["attrs"] == {"oci.store": "df-base"}

    def build(out: Path) -> Dict[str, Any]:
        with LazyPool([WorkerConfig(buildkitd_amd64.addr)]) as workers:
            return build_job(job, workers, out / "image.tar", out / "image.json", context_dir=ctx,
                             oci_layouts={"df-base": base_tar}, opts=BuildOptions())

    first = build(tmp_path / "one")
    base_m, child_m = _manifests(base_tar), _manifests(tmp_path / "one" / "image.tar")
    for p in PLATFORMS:
        # the base's layers exactly as in its tar, then the child's own
        assert _layers(child_m[p])[:len(_layers(base_m[p]))] == _layers(base_m[p])
        assert len(_layers(child_m[p])) == len(_layers(base_m[p])) + 2
        assert "FROM_DOCKERFILE=yes" in child_m[p]["_config"]["config"]["Env"]
        arch = p.split("/")[1]
        assert run_image(tmp_path / "one" / "image.tar", p).check().stdout == f"base for {arch}\nfrom the child\n"

    buildkitd_amd64.buildctl("prune", "--all")
    second = build(tmp_path / "two")
    assert second["index"]["digest"] == first["index"]["digest"]



def test_a_dockerfile_image_starts_from_a_container_image_composed_as_a_frontend_input(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    """The other direction: ``FROM app-base`` in a Dockerfile is a container_image's own LLB,
    handed to the frontend as an input with its config (no registry round trip)."""
    from llbkit.builder import resolve_bases
    from llbkit.builder.frontends import named_input
    from llbkit.image import EnvStep, RegistryBase

    spec = ImageSpec(name="//app:base", base=RegistryBase(registry.busybox_ref), platforms=("linux/amd64",),
                     steps=(RunStep("echo from llbkit > /from-llbkit"), EnvStep((("BASE_ENV", "set"),))))
    bases = resolve_bases([spec.base.normalized], list(spec.platforms), None)
    (lowered,) = plan(spec, base_configs=bases, source_date_epoch=0)
    opts, inp = named_input("app-base", lowered.definition.to_bytes(), lowered.oci_config_bytes())
    d = tmp_path / "df"
    d.mkdir()
    (d / "Dockerfile").write_text('FROM app-base\nRUN cat /from-llbkit > /seen\nCMD ["sh", "-c", "cat /seen; echo $BASE_ENV"]\n')
    call = FrontendCall("dockerfile.v0", tuple(opts.items()), (inp,))
    job = SolveJob("//app:df", (JobPlatform("linux/amd64", b"", b"", frontend=call),), ExportOptions(),
                   local_dirs=("context", "dockerfile"))
    with LazyPool([WorkerConfig(buildkitd_amd64.addr)]) as workers:
        build_job(job, workers, tmp_path / "out" / "image.tar", tmp_path / "out" / "image.json",
                  local_dirs={"context": d, "dockerfile": d})
    assert run_image(tmp_path / "out" / "image.tar").check().stdout == "from llbkit\nset\n"
