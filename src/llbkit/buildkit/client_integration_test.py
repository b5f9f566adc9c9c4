"""The client against real daemons: workers, disk usage, solves with image configs, errors."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest

from llbkit import llb
from llbkit.buildkit import (
    Client,
    ConnectionFailedError,
    Export,
    ImageConfig,
    PlainPrinter,
    SolveCancelledError,
    SolveError,
    TLSConfig,
    TLSError,
)
from llbkit.testutil import skopeo


def _tls(daemon) -> TLSConfig:
    return TLSConfig.from_dir(daemon.tls_dir)


@pytest.fixture(scope="module")
def amd64(buildkitd_amd64):
    with Client(buildkitd_amd64.addr) as c:
        yield c


@pytest.fixture(scope="module")
def arm64(buildkitd_arm64_tls):
    with Client(buildkitd_arm64_tls.addr, tls=_tls(buildkitd_arm64_tls)) as c:
        yield c


def test_list_workers_unix(amd64, buildkitd_amd64):
    workers = amd64.list_workers()
    assert len(workers) == 1
    w = workers[0]
    assert w.native_platform == "linux/amd64"
    assert "linux/arm64" in w.platforms
    ref = buildkitd_amd64.workers()[0]
    assert w.id == ref["id"]
    assert w.labels == ref["labels"]
    assert w.gc_policy and w.version.package == "github.com/moby/buildkit"
    assert amd64.info().version.version == w.version.version


def test_list_workers_tls_native_arm64_first(arm64):
    workers = arm64.list_workers()
    assert workers[0].platforms[0] == "linux/arm64"


def test_disk_usage_and_prune(amd64):
    records = amd64.disk_usage()
    assert all(r.id and r.size >= 0 for r in records)
    pruned = amd64.prune(filters=["id==does-not-exist"])
    assert pruned == []


def _app(busybox_ref: str, platform: str) -> llb.State:
    return (
        llb.image(busybox_ref, platform=platform)
        .run(["/bin/sh", "-c", "mkdir -p /app && echo hello > /app/greeting"])
        .root()
    )


def test_build_image_with_config_pushed(amd64, registry):
    target = registry.ref("llbkit-client/config", "v1")
    config = ImageConfig(
        env={"GREETING": "hi", "MODE": "prod"},
        entrypoint=["/bin/cat"],
        cmd=["/app/greeting"],
        user="1000:1000",
        workdir="/app",
        labels={"org.example.team": "build"},
        exposed_ports=["8080", "9090/udp"],
    )
    out = io.StringIO()
    res = amd64.build_image(
        _app(registry.busybox_ref, "linux/amd64").marshal(platform="linux/amd64"),
        platform="linux/amd64",
        config=config,
        base=registry.busybox_ref,
        exports=[Export.image(target, push=True)],
        progress=PlainPrinter(out),
    )
    assert res.image_digest and res.image_digest.startswith("sha256:")
    raw = skopeo.inspect_raw(target)
    assert skopeo.digest_of(raw) == res.image_digest
    info = skopeo.inspect(target)
    assert info["Architecture"] == "amd64"
    cfg = json.loads(skopeo.skopeo("inspect", "--config", "--tls-verify=false", f"docker://{target}").stdout)
    c = cfg["config"]
    assert c["Entrypoint"] == ["/bin/cat"] and c["Cmd"] == ["/app/greeting"]
    assert c["User"] == "1000:1000" and c["WorkingDir"] == "/app"
    assert "GREETING=hi" in c["Env"] and any(e.startswith("PATH=") for e in c["Env"])
    assert c["Labels"]["org.example.team"] == "build"
    assert set(c["ExposedPorts"]) == {"8080/tcp", "9090/udp"}
    # the base's history is inherited, and the new layer gets an entry
    base_cfg = json.loads(skopeo.skopeo("inspect", "--config", "--tls-verify=false",
                                        "--override-arch", "amd64", f"docker://{registry.busybox_ref}").stdout)
    assert cfg["history"][: len(base_cfg.get("history", []))] == base_cfg.get("history", [])
    assert len(cfg["rootfs"]["diff_ids"]) == len(base_cfg["rootfs"]["diff_ids"]) + 1
    log = out.getvalue()
    assert "mkdir -p /app" in log and " DONE " in log


def test_multi_platform_index_order(amd64, registry):
    target = registry.ref("llbkit-client/multi", "v1")
    platforms = ["linux/arm64", "linux/amd64"]
    defs = {p: _app(registry.busybox_ref, p).marshal(platform=p) for p in platforms}
    res = amd64.build_image(defs, config=ImageConfig(env={"A": "1"}), base=registry.busybox_ref,
                            exports=[Export.image(target, push=True)])
    index = json.loads(skopeo.inspect_raw(target))
    got = [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]]
    assert got == platforms
    assert skopeo.digest_of(skopeo.inspect_raw(target)) == res.image_digest
    arm = skopeo.inspect(target, platform="linux/arm64")
    assert arm["Architecture"] == "arm64" and "A=1" in arm["Env"]


def test_tls_solve_pushes(arm64, registry):
    target = registry.ref("llbkit-client/tls", "v1")
    d = _app(registry.busybox_ref, "linux/arm64").marshal(platform="linux/arm64")
    res = arm64.build_image(d, platform="linux/arm64", config=ImageConfig(cmd=["sh"]),
                            base=registry.busybox_ref, exports=[Export.image(target, push=True)])
    assert skopeo.inspect(target)["Architecture"] == "arm64"
    assert res.image_digest == skopeo.digest_of(skopeo.inspect_raw(target))


def test_plain_solve_matches_buildctl(amd64, buildkitd_amd64, registry, tmp_path):
    d = _app(registry.busybox_ref, "linux/amd64").marshal(platform="linux/amd64")
    ours = registry.ref("llbkit-client/plain", "ours")
    theirs = registry.ref("llbkit-client/plain", "buildctl")
    res = amd64.solve(d, source_date_epoch=0,
                      exports=[Export.image(ours, push=True, rewrite_timestamp=True)])
    path = tmp_path / "def.pb"
    path.write_bytes(d.to_bytes())
    import os
    import subprocess

    env = dict(os.environ, SOURCE_DATE_EPOCH="0")
    subprocess.run(
        [str(buildkitd_amd64.buildctl_bin), *buildkitd_amd64.client_args(), "build",
         "--output", f"type=image,name={theirs},push=true,rewrite-timestamp=true"],
        input=d.to_bytes(), env=env, check=True, capture_output=True, timeout=300,
    )
    theirs_digest = skopeo.digest_of(skopeo.inspect_raw(theirs))
    assert res.image_digest == theirs_digest


def test_failing_run_reports_vertex_exit_code_and_logs(amd64, registry):
    st = llb.image(registry.busybox_ref, platform="linux/amd64").run(
        ["/bin/sh", "-c", "echo first line; echo 'second line' >&2; exit 3"]).root()
    with pytest.raises(SolveError) as ei:
        amd64.solve(st.marshal(platform="linux/amd64"))
    err = ei.value
    assert err.exit_code == 3
    assert err.vertex and "exit 3" in err.vertex
    assert "second line" in "\n".join(err.log_tail)
    assert "exited with code 3" in str(err) and "second line" in str(err)


def test_cancel_stops_the_build(amd64, registry):
    marker = f"llbkit-cancel-{time.time_ns()}"
    st = llb.image(registry.busybox_ref, platform="linux/amd64").run(
        ["/bin/sh", "-c", f"echo {marker}; sleep 120"]).root()
    cancel = threading.Event()
    timer = threading.Timer(4.0, cancel.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(SolveCancelledError):
        amd64.solve(st.marshal(platform="linux/amd64"), cancel=cancel)
    assert time.monotonic() - started < 60
    # no process of that build is left on the daemon
    deadline = time.monotonic() + 20
    import subprocess

    while time.monotonic() < deadline:
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        if "sleep 120" not in ps or marker not in ps:
            break
        time.sleep(0.5)
    assert not any(marker in line for line in ps.splitlines() if "sleep 120" in line)


def test_unreachable_address_is_clear(tmp_path):
    addr = f"unix://{tmp_path}/nothing.sock"
    with Client(addr, timeout=5) as c:
        with pytest.raises(ConnectionFailedError) as ei:
            c.list_workers()
    msg = str(ei.value)
    assert addr in msg and "buildkitd" in msg and "--addr" in msg


def test_missing_client_cert_is_clear(buildkitd_arm64_tls):
    tls = TLSConfig(ca_cert=str(buildkitd_arm64_tls.ca_cert))
    with Client(buildkitd_arm64_tls.addr, tls=tls, timeout=10) as c:
        with pytest.raises(TLSError) as ei:
            c.list_workers()
    assert "client certificate" in str(ei.value)


def test_unknown_ca_is_clear(buildkitd_arm64_tls, tmp_path):
    from llbkit.testutil.certs import make_tls_files

    other = make_tls_files(tmp_path / "other")
    tls = TLSConfig(ca_cert=str(other.ca_cert), cert=str(buildkitd_arm64_tls.client_cert),
                    key=str(buildkitd_arm64_tls.client_key))
    with Client(buildkitd_arm64_tls.addr, tls=tls, timeout=10) as c:
        with pytest.raises(TLSError) as ei:
            c.info()
    assert "CA" in str(ei.value)
