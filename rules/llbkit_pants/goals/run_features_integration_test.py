"""`pants package` of images using RUN mounts, `add()` and entitlements, end to end: BUILD-file
helpers -> spec -> solve job -> the build process (machine settings: entitlements, secrets, ssh
agents) -> buildkitd; then the files each image holds."""

from __future__ import annotations

import hashlib
import http.server
import secrets
import threading
from pathlib import Path
from textwrap import dedent
from typing import Any, Iterator

import pytest
from pants.core.goals import package as core_package
from pants.core.goals.package import Package
from pants.core.target_types import FilesGeneratorTarget
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from llbkit.buildkit.local_daemon import LocalDaemon
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    buildkitd_amd64,
    busybox_image,
    pytest_runtest_makereport,
    registry,
)
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.registry import Registry
from llbkit.testutil.ssh_agent import AGENT_CHECK, SshAgent
from llbkit.testutil.tools import find_tool
from llbkit_pants import register


@pytest.fixture
def rule_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RuleRunner:
    monkeypatch.setenv("LLBKIT_CACHE", str(tmp_path / "llbkit-cache"))
    return RuleRunner(rules=[*core_package.rules(), *register.rules()],
                      target_types=[*register.target_types(), FilesGeneratorTarget],
                      aliases=[register.build_file_aliases()])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple]:
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: _Quiet(*a, directory=str(root), **k))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_mounts_add_and_entitlements_through_pants(
    rule_runner: RuleRunner, registry: Registry, buildkitd_amd64: Buildkitd, served: tuple
) -> None:
    token = secrets.token_hex(6)
    root, url = served
    payload = f"tool {token}\n".encode()
    (root / "tool.sh").write_bytes(payload)
    checksum = "sha256:" + hashlib.sha256(payload).hexdigest()
    base = registry.busybox_ref
    rule_runner.write_files({
        "feat/src/a.txt": f"a {token}\n",
        "feat/BUILD": dedent(f"""\
            files(name="src", sources=["src/*"])
            container_image(name="builder", base="{base}", steps=[run("mkdir /out && echo built-{token} > /out/b")])
            container_image(
                name="img", base="{base}", platforms=["linux/amd64"],
                steps=[
                    add("{url}/tool.sh", "/opt/", checksum="{checksum}"),
                    run("cat /proc/net/dev | cut -d: -f1 > /net", network="host"),
                    run("echo $API_TOKEN > /tok", secrets=[secret_env("API_TOKEN", id="token")]),
                    run("cat /src/src/a.txt /b/b > /bound && stat -c '%u:%g %a' /cache > /cache-stat", mounts=[
                        bind_mount(":src", "/src"),
                        bind_mount(":builder", "/b", path="/out"),
                        cache_mount("/cache", id="c-{token}", uid=1000, gid=1000, mode=0o700),
                    ]),
                ],
            )
            """),
    })
    common = [f"--buildkit-workers=['{buildkitd_amd64.addr}']", "--buildkit-secrets=['token=env:LLBKIT_IT_TOKEN']"]
    env = {"LLBKIT_IT_TOKEN": f"secret-{token}"}
    with pytest.raises(ExecutionError) as e:  # not enabled: refused before anything is solved
        rule_runner.run_goal_rule(Package, global_args=common, args=["feat:img"], env=env)
    assert "steps[1].network" in str(e.value) and '[buildkit] entitlements = ["network.host"]' in str(e.value)

    result = rule_runner.run_goal_rule(Package, global_args=[*common, "--buildkit-entitlements=['network.host']"],
                                       args=["feat:img"], env=env)
    assert result.exit_code == 0, result.stderr
    tar = Path(rule_runner.build_root, "dist", "feat", "img.oci.tar")
    got = {name: file_in_last_layer_any(tar, name) for name in ("opt/tool.sh", "net", "tok", "bound", "cache-stat")}
    assert got["opt/tool.sh"] == payload
    assert b"lo" in got["net"]
    assert got["tok"] == f"secret-{token}\n".encode()
    assert got["bound"] == f"a {token}\nbuilt-{token}\n".encode()
    assert got["cache-stat"] == b"1000:1000 700\n"


def file_in_last_layer_any(oci_tar: Path, name: str) -> bytes:
    """``name`` from the newest layer that holds it (each step is a layer)."""
    import gzip
    import io
    import tarfile

    from llbkit.oci import open_layout, split

    with open_layout(oci_tar) as layout:
        (image,) = split(layout)
        for layer in reversed(image.layers):
            with layout.open_blob(layer) as f:
                data = gzip.decompress(f.read())
            with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                try:
                    member = tf.extractfile(name)
                except KeyError:
                    continue
                assert member is not None
                return member.read()
    raise AssertionError(f"{name} is in no layer of {oci_tar}")


@pytest.fixture
def ssh_agent(tmp_path: Path) -> Iterator[str]:
    with SshAgent(tmp_path / "agent") as agent:
        yield agent.socket


@pytest.fixture
def python3_base() -> str:
    """The samples' python3 image (a test base with no shell). Requested before `rule_runner`,
    which points LLBKIT_CACHE (where the samples' registry keeps its state) elsewhere."""
    from llbkit.testutil.testregistry import PYTHON3_REPO, TestRegistry

    reg = TestRegistry()
    reg.ensure()
    return f"{reg.address}/{PYTHON3_REPO}:3.11"


def test_ssh_agent_forwarded_through_pants(
    python3_base: str, rule_runner: RuleRunner, buildkitd_amd64: Buildkitd, ssh_agent: str
) -> None:
    rule_runner.write_files({
        "ssh/agent_check.py": AGENT_CHECK,
        "ssh/BUILD": dedent(f"""\
            files(name="check", sources=["agent_check.py"])
            container_image(name="img", base="{python3_base}", platforms=["linux/amd64"],
                            steps=[copy("agent_check.py", "/agent_check.py"),
                                   run(["python3", "/agent_check.py"], mounts=[ssh_mount()])])
            """),
    })
    options = [f"--buildkit-workers=['{buildkitd_amd64.addr}']", "--buildkit-ssh=['default']"]
    result = rule_runner.run_goal_rule(Package, global_args=options, args=["ssh:img"],
                                       env={"SSH_AUTH_SOCK": ssh_agent})
    assert result.exit_code == 0, result.stderr
    tar = Path(rule_runner.build_root, "dist", "ssh", "img.oci.tar")
    assert file_in_last_layer_any(tar, "agent.txt") == b"1 llbkit-test /run/buildkit/ssh_agent.0\n"

    # $SSH_AUTH_SOCK unset where Pants runs: the (new) image's build says so, with the fix.
    build = rule_runner.build_root + "/ssh/BUILD"
    Path(build).write_text(Path(build).read_text().replace('"/agent_check.py"]', '"/agent_check.py", "again"]'))
    with pytest.raises(ExecutionError) as e:
        rule_runner.run_goal_rule(Package, global_args=options, args=["ssh:img"], env={})
    message = str(e.value)
    assert "failed to build ssh:img" in message and "SSH_AUTH_SOCK is not set" in message, message
    assert "eval $(ssh-agent)" in message

    # A key file instead of an agent: the build runs a private agent holding it.
    key = str(Path(ssh_agent).parent / "id_ed25519")
    Path(build).write_text(Path(build).read_text().replace('"again"]', '"key"]'))
    result = rule_runner.run_goal_rule(Package, args=["ssh:img"], env={},
                                       global_args=[options[0], f"--buildkit-ssh=['default={key}']"])
    assert result.exit_code == 0, result.stderr
    assert file_in_last_layer_any(tar, "agent.txt").startswith(b"1 llbkit-test /run/buildkit/ssh_agent.0")


def test_auto_started_daemon_allows_an_enabled_entitlement(
    rule_runner: RuleRunner, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_temp_dir("pantsbk", need_socket_room=len("buildkitd/buildkitd.sock"))
    monkeypatch.setenv("LLBKIT_CACHE", str(cache))
    monkeypatch.setenv("LLBKIT_BUILDKIT_BIN", str(find_tool("buildkitd").parent))
    monkeypatch.delenv("BUILDKIT_HOST", raising=False)
    rule_runner.write_files({"auto/BUILD": dedent(f"""\
        container_image(name="img", base="{registry.busybox_ref}", platforms=["linux/amd64"],
                        steps=[run("echo {secrets.token_hex(6)} > /t && cat /proc/net/dev > /net", network="host")])
        """)})
    daemon = LocalDaemon(cache / "buildkitd", env={"LLBKIT_CACHE": str(cache)})
    try:
        result = rule_runner.run_goal_rule(Package, global_args=["--buildkit-entitlements=['network.host']"],
                                           args=["auto:img"], env={"LLBKIT_CACHE": str(cache),
                                                                   "LLBKIT_BUILDKIT_BIN": str(find_tool("buildkitd").parent)})
        assert result.exit_code == 0, result.stderr
        assert daemon.pid() is not None and daemon.allowed_entitlements() == ("network.host",)
        tar = Path(rule_runner.build_root, "dist", "auto", "img.oci.tar")
        assert b"lo:" in file_in_last_layer_any(tar, "net")
    finally:
        daemon.stop()
        remove_tree(cache)
