"""`pants package` of a container_image against BuildKit's Dockerfile frontend, through Pants' own
sandbox: files come out 0644/0755 from Pants' executable bit whatever the staging left (Pants
hardlinks files of 512 KiB and more from its store as 0555), directories 0755, as `COPY` of the
same files from a checkout gives them; env expansion and ordered steps reach the config."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from pathlib import Path
from textwrap import dedent
from typing import Any, Dict, Tuple

import pytest
from pants.core.goals import package as core_package
from pants.core.goals.package import Package
from pants.core.target_types import FilesGeneratorTarget, FileTarget
from pants.testutil.rule_runner import RuleRunner

from llbkit.oci import open_layout, split
from llbkit.oci.layout import read_json
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    buildkitd_amd64,
    busybox_image,
    pytest_runtest_makereport,
    registry,
)
from llbkit.testutil.registry import Registry
from llbkit_pants import register

BIG = 600 * 1024
FILES: Dict[str, Tuple[bytes, int]] = {
    "d/a.txt": (b"a\n", 0o644),
    "d/run.sh": (b"#!/bin/sh\necho run\n", 0o755),
    "d/sub/big.bin": (b"x" * BIG, 0o644),
    "d/sub/bigtool": (b"y" * BIG, 0o755),
}


@pytest.fixture
def rule_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RuleRunner:
    monkeypatch.setenv("LLBKIT_CACHE", str(tmp_path / "llbkit-cache"))
    return RuleRunner(rules=[*core_package.rules(), *register.rules()],
                      target_types=[*register.target_types(), FilesGeneratorTarget, FileTarget],
                      aliases=[register.build_file_aliases()])


def entries(tf: tarfile.TarFile, under: str) -> Dict[str, Tuple[Any, ...]]:
    out = {}
    for m in tf.getmembers():
        name = m.name.lstrip("./").rstrip("/")
        if name == under or name.startswith(under + "/"):
            data = hashlib.sha256(tf.extractfile(m).read()).hexdigest()[:12] if m.isfile() else ""
            out[name] = (m.type, oct(m.mode), m.uid, m.gid, data, m.linkname)
    return out


def write_files(root: Path) -> None:
    for rel, (data, mode) in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.chmod(p, mode)


def test_packaged_modes_and_config_match_the_dockerfile_frontend(
    rule_runner: RuleRunner, registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path,
) -> None:
    rule_runner.write_files({"img/BUILD": dedent(f"""\
        files(name="files", sources=["d/**"])
        container_image(
            name="img", base="{registry.busybox_ref}", platforms=["linux/amd64"],
            env={{"PATH": "/opt/bin:$PATH"}},
            steps=[set_user("root"), set_workdir("/srv"), copy("d", "d/"), set_user("65534")],
        )
        """)})
    write_files(Path(rule_runner.build_root, "img"))
    result = rule_runner.run_goal_rule(Package, global_args=[f"--buildkit-workers={json.dumps([buildkitd_amd64.addr])}"],
                                       args=["img:img"])
    assert result.exit_code == 0, result.stderr
    with open_layout(Path(rule_runner.build_root, "dist/img/img.oci.tar")) as layout:
        (image,) = split(layout)
        with layout.open_blob(image.layers[-1]) as f:
            layer = gzip.decompress(f.read())
        config = read_json(layout, image.config)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
        ours = entries(tf, "srv/d")

    context = tmp_path / "ctx"
    write_files(context)
    (tmp_path / "df").mkdir()
    (tmp_path / "df/Dockerfile").write_text(
        f'FROM {registry.busybox_ref}\nENV PATH="/opt/bin:$PATH"\nUSER root\nWORKDIR /srv\nCOPY d d/\nUSER 65534\n')
    rootfs = tmp_path / "theirs.tar"
    buildkitd_amd64.build_dockerfile(context, dockerfile_dir=tmp_path / "df", platform="linux/amd64",
                                     outputs=[f"type=tar,dest={rootfs}"])
    with tarfile.open(rootfs) as tf:
        theirs = entries(tf, "srv/d")
    assert ours == theirs
    assert ours["srv/d/sub/big.bin"][1] == oct(0o644) and ours["srv/d/sub/bigtool"][1] == oct(0o755)
    cfg = config["config"]
    assert cfg["User"] == "65534" and cfg["WorkingDir"] == "/srv"
    assert cfg["Env"][0] == "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_packaged_multi_stage_copies_match_the_dockerfile_frontend(
    rule_runner: RuleRunner, registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path,
) -> None:
    """copy_from() another container_image target (composed in LLB, its registry base resolved
    by the rules too) and a registry image pinned by digest, as `COPY --from` copies them."""
    index = urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - the local fixture registry
        f"{registry.url}/v2/busybox/manifests/latest",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"}), timeout=30)
    pinned = f"{registry.busybox_ref.rsplit(':', 1)[0]}@{index.headers['Docker-Content-Digest']}"
    build = ("mkdir -p /out/lib && echo built > /out/app && chmod 0750 /out/app && chown 1000:1000 /out/app"
             " && ln -s ../app /out/lib/app")
    rule_runner.write_files({"ms/BUILD": dedent(f"""\
        container_image(name="builder", base="{registry.busybox_ref}", steps=[run({build!r})])
        container_image(
            name="app", base="scratch", platforms=["linux/amd64"],
            steps=[copy_from(":builder", "/out/", "/app/"), copy_from("{pinned}", "/bin/busybox", "/bin/")],
        )
        """)})
    result = rule_runner.run_goal_rule(Package, global_args=[f"--buildkit-workers={json.dumps([buildkitd_amd64.addr])}"],
                                       args=["ms:app"])
    assert result.exit_code == 0, result.stderr
    ours: Dict[str, Tuple[Any, ...]] = {}
    with open_layout(Path(rule_runner.build_root, "dist/ms/app.oci.tar")) as layout:
        (image,) = split(layout)
        for desc in image.layers:
            with layout.open_blob(desc) as f, tarfile.open(fileobj=io.BytesIO(gzip.decompress(f.read()))) as tf:
                ours.update(entries(tf, "app"))
                ours.update(entries(tf, "bin"))
    (tmp_path / "df").mkdir()
    (tmp_path / "df/Dockerfile").write_text(
        f"FROM {registry.busybox_ref} AS builder\nRUN {build}\nFROM scratch\n"
        f"COPY --from=builder /out/ /app/\nCOPY --from={pinned} /bin/busybox /bin/\n")
    rootfs = tmp_path / "theirs.tar"
    buildkitd_amd64.build_dockerfile(tmp_path / "df", dockerfile_dir=tmp_path / "df", platform="linux/amd64",
                                     outputs=[f"type=tar,dest={rootfs}"])
    with tarfile.open(rootfs) as tf:
        theirs = {**entries(tf, "app"), **entries(tf, "bin")}
    assert ours == theirs
    assert ours["app/app"][1:4] == (oct(0o750), 1000, 1000) and ours["app/lib/app"][5] == "../app"
