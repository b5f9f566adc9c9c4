"""`pants package` on the worker pool, against the fixture daemons: ten images x two platforms
in one run spread over both daemons (checked from the daemons' build histories); then, with no
daemon reachable at all, the same run is served from the content cache byte for byte."""

from __future__ import annotations

import gzip
import io
import json
import secrets
import tarfile
from pathlib import Path
from textwrap import dedent
from typing import Dict, Set

import pytest
from pants.core.goals import package as core_package
from pants.core.goals.package import Package
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from llbkit.oci import open_layout, split
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    buildkitd_amd64,
    buildkitd_arm64_tls,
    buildkitd_tls_files,
    busybox_image,
    pytest_runtest_makereport,
    registry,
)
from llbkit.testutil.registry import Registry
from llbkit_pants import register

IMAGES = 10
ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


@pytest.fixture
def rule_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RuleRunner:
    # A cache of this test's own, so that every image is solved here and not found from an earlier run.
    monkeypatch.setenv("LLBKIT_CACHE", str(tmp_path / "llbkit-cache"))
    return RuleRunner(rules=[*core_package.rules(), *register.rules()], target_types=register.target_types(),
                      aliases=[register.build_file_aliases()])


def manifests_built_by(daemon: Buildkitd) -> Set[str]:
    """The manifest digests of the builds in the daemon's own history (`buildctl debug histories`)."""
    out = daemon.buildctl("debug", "histories", "--format", "{{json .}}").stdout
    digests = set()
    for line in out.splitlines():
        if line.strip():
            result = (json.loads(line)["record"].get("Result") or {}).get("ResultDeprecated") or {}
            if result.get("digest"):
                digests.add(result["digest"])
    return digests


def file_in_last_layer(oci_tar: Path, platform: str, name: str) -> bytes:
    with open_layout(oci_tar) as layout:
        image = [i for i in split(layout) if str(i.platform) == platform][0]
        with layout.open_blob(image.layers[-1]) as f:
            data = gzip.decompress(f.read())
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        member = tf.extractfile(name)
        assert member is not None, f"{name} not in the last layer of {oci_tar} ({platform})"
        return member.read()


def outputs(root: Path) -> Dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ten_images_two_platforms_spread_over_both_daemons_then_from_cache(
    rule_runner: RuleRunner, registry: Registry, buildkitd_amd64: Buildkitd, buildkitd_arm64_tls: Buildkitd,
) -> None:
    token = secrets.token_hex(6)  # new images for the daemons, whatever ran before
    targets = "".join(
        f'container_image(name="img{i}", base="{registry.busybox_ref}", '
        f'steps=[run("echo {token}-{i} > /token && uname -m > /arch")], '
        f'platforms=["linux/amd64", "linux/arm64"], image_tags=["1.0"])\n'
        for i in range(IMAGES))
    rule_runner.write_files({"fleet/BUILD": targets})
    workers = [buildkitd_amd64.addr, buildkitd_arm64_tls.addr]
    options = [f"--buildkit-workers={json.dumps(workers)}", f"--buildkit-tls-dir={buildkitd_arm64_tls.tls_dir}"]

    result = rule_runner.run_goal_rule(Package, global_args=options, args=["fleet::"])
    assert result.exit_code == 0, result.stderr

    dist = Path(rule_runner.build_root, "dist")
    built_on_amd64, built_on_arm64 = manifests_built_by(buildkitd_amd64), manifests_built_by(buildkitd_arm64_tls)
    for i in range(IMAGES):
        record = json.loads((dist / f"fleet/img{i}.image.json").read_bytes())
        by_platform = {p["platform"]: p for p in record["platforms"]}
        assert list(by_platform) == ["linux/amd64", "linux/arm64"]
        # each platform on its native daemon, as the daemons themselves report
        assert by_platform["linux/amd64"]["worker"] == buildkitd_amd64.addr
        assert by_platform["linux/arm64"]["worker"] == buildkitd_arm64_tls.addr
        assert by_platform["linux/amd64"]["manifest"]["digest"] in built_on_amd64
        assert by_platform["linux/arm64"]["manifest"]["digest"] in built_on_arm64
        assert by_platform["linux/arm64"]["manifest"]["digest"] not in built_on_amd64
        oci_tar = dist / f"fleet/img{i}.oci.tar"
        for platform, arch in ARCH.items():
            assert file_in_last_layer(oci_tar, platform, "arch").decode().strip() == arch
        assert file_in_last_layer(oci_tar, "linux/arm64", "token").decode().strip() == f"{token}-{i}"

    # Every buildkitd gone: the same run is served from the content cache (the tag base is
    # resolved from the registry directly), byte for byte.
    first = outputs(dist)
    for p in dist.rglob("*"):
        if p.is_file():
            p.unlink()
    nowhere = [f"unix://{rule_runner.build_root}/no-buildkitd.sock"]
    again = rule_runner.run_goal_rule(Package, global_args=[f"--buildkit-workers={json.dumps(nowhere)}"],
                                      args=["fleet::"])
    assert again.exit_code == 0, again.stderr
    assert outputs(dist) == first


def test_unreachable_workers_are_named_with_the_fix(rule_runner: RuleRunner, registry: Registry) -> None:
    rule_runner.write_files({"lone/BUILD": dedent(f"""\
        container_image(name="img", base="{registry.busybox_ref}",
                        steps=[run("echo {secrets.token_hex(6)} > /t")], platforms=["linux/amd64"])
        """)})
    gone = [f"unix://{rule_runner.build_root}/gone-1.sock", "tcp://127.0.0.1:9"]
    with pytest.raises(ExecutionError) as e:
        rule_runner.run_goal_rule(Package, global_args=[f"--buildkit-workers={json.dumps(gone)}"], args=["lone:img"])
    message = str(e.value)
    assert "failed to build lone:img: cannot build linux/amd64" in message
    for address in gone:
        assert f"{address}: unreachable" in message
    assert "check the addresses in [buildkit].workers" in message


def test_a_secret_comes_from_the_users_environment(
    rule_runner: RuleRunner, registry: Registry, buildkitd_amd64: Buildkitd, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = f"s3cret-{secrets.token_hex(6)}"
    # The value comes from the environment Pants is run in (Pants' environment API), never from
    # the Pants process' own os.environ, which under pantsd is the daemon's.
    monkeypatch.setenv("LLBKIT_IT_TOKEN", "not-this-one")
    rule_runner.write_files({"sec/BUILD": dedent(f"""\
        container_image(name="img", base="{registry.busybox_ref}", platforms=["linux/amd64"],
                        steps=[run("cat /run/secrets/token > /got", secrets=[secret_mount("token")])])
        """)})
    options = [f"--buildkit-workers=['{buildkitd_amd64.addr}']", "--buildkit-secrets=['token=env:LLBKIT_IT_TOKEN']"]
    result = rule_runner.run_goal_rule(Package, global_args=options, args=["sec:img"],
                                       env={"LLBKIT_IT_TOKEN": value})
    assert result.exit_code == 0, result.stderr
    dist = Path(rule_runner.build_root, "dist", "sec")
    assert file_in_last_layer(dist / "img.oci.tar", "linux/amd64", "got").decode() == value
    assert value.encode() not in (dist / "img.image.json").read_bytes()  # nor in the key it records
