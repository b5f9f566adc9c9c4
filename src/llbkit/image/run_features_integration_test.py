"""RUN mounts, ADD and entitlements against BuildKit's Dockerfile frontend (the oracle).

Each test lowers an ``ImageSpec`` and builds the equivalent Dockerfile on the same fixture daemon
(``buildctl build --frontend dockerfile.v0``), then compares the two root filesystems (paths,
types, modes, owners, contents, symlink targets) and configs. Where llbkit deliberately differs,
the test asserts the documented behaviour instead.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping

import pytest

from llbkit.buildkit.errors import SolveError
from llbkit.buildkit.session import SecretSource
from llbkit.image import (
    AddStep,
    BindMount,
    CacheMount,
    ContextSource,
    CopyStep,
    EnvStep,
    ImageSpec,
    RegistryBase,
    RunStep,
    SecretMount,
    SpecBase,
    SshMount,
    UrlSource,
    lower,
)
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.frontend_compare import (
    config_diff,
    frontend_tree,
    llbkit_tree,
    read_file,
    registry_config,
    tree_diff,
)
from llbkit.testutil.errors import FixtureError
from llbkit.testutil.registry import Registry
from llbkit.testutil.ssh_agent import AGENT_CHECK, SshAgent

PLATFORM = "linux/amd64"


def _lower(registry: Registry, spec: ImageSpec):
    cfg = registry_config(registry.url, "busybox", "latest", PLATFORM)
    return lower(spec, PLATFORM, base_configs={registry.busybox_ref: cfg}, context_digest=f"sha256:{uuid.uuid4().hex}",
                 source_date_epoch=0)


def _same(ours: Any, theirs: Any, ignore=()) -> None:
    (a_tree, a_cfg, _), (b_tree, b_cfg, _) = ours, theirs
    assert tree_diff(a_tree, b_tree, ignore=ignore) == []
    assert config_diff(a_cfg, b_cfg) == []


def _write(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_secret_as_environment_variable(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    script = 'echo "token=$TOKEN" > /out.txt; (test -e /run/secrets/token && echo file || echo nofile) > /run.txt'
    spec = ImageSpec(name="//t:secret_env", base=RegistryBase(registry.busybox_ref), steps=(
        RunStep(script, mounts=(SecretMount("token", env="TOKEN", required=True),)),))
    ours = llbkit_tree(buildkitd_amd64, _lower(registry, spec), tmp_path / "ours",
                       secrets={"token": SecretSource(value=b"s3cret")})
    theirs = frontend_tree(
        buildkitd_amd64, tmp_path / "df",
        f"FROM {registry.busybox_ref}\nRUN --mount=type=secret,id=token,env=TOKEN,required {script}\n",
        extra_args=["--secret", "id=token,env=LLBKIT_TEST_TOKEN"],
        env={**os.environ, "LLBKIT_TEST_TOKEN": "s3cret"})
    _same(ours, theirs)
    assert read_file(ours[2], "/out.txt") == b"token=s3cret\n"
    assert read_file(ours[2], "/run.txt") == b"nofile\n"  # env only: no file mounted


def test_secret_as_file_and_variable(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    script = 'echo "$TOKEN $(cat /etc/tok)" > /out.txt'
    spec = ImageSpec(name="//t:secret_both", base=RegistryBase(registry.busybox_ref), steps=(
        RunStep(script, mounts=(SecretMount("token", target="/etc/tok", env="TOKEN", required=True),)),))
    ours = llbkit_tree(buildkitd_amd64, _lower(registry, spec), tmp_path / "ours",
                       secrets={"token": SecretSource(value=b"s3cret")})
    theirs = frontend_tree(
        buildkitd_amd64, tmp_path / "df",
        f"FROM {registry.busybox_ref}\nRUN --mount=type=secret,id=token,env=TOKEN,target=/etc/tok,required {script}\n",
        extra_args=["--secret", "id=token,env=LLBKIT_TEST_TOKEN"],
        env={**os.environ, "LLBKIT_TEST_TOKEN": "s3cret"})
    _same(ours, theirs)
    assert read_file(ours[2], "/out.txt") == b"s3cret s3cret\n"


def test_cache_mount_owner_mode_and_seed(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:12]
    script = ('stat -c "%u:%g %a" /cache > /cache.txt && touch /cache/x && '
              'cat /seeded/a.txt > /seeded.txt && stat -c "%u:%g %a" /seeded >> /seeded.txt')
    seed = ImageSpec(name="//t:seed", base=RegistryBase(registry.busybox_ref), steps=(
        RunStep("mkdir -p /s && echo seeded > /s/a.txt && chmod 0705 /s"),))
    spec = ImageSpec(name="//t:cache", base=RegistryBase(registry.busybox_ref), steps=(
        RunStep(script, mounts=(
            CacheMount("/cache", id=f"ours-{run}", uid=1000, gid=1001, mode=0o750),
            CacheMount("/seeded", id=f"ours-seed-{run}", source=SpecBase(seed), path="/s"),
        )),))
    ours = llbkit_tree(buildkitd_amd64, _lower(registry, spec), tmp_path / "ours")
    theirs = frontend_tree(buildkitd_amd64, tmp_path / "df", "\n".join([
        f"FROM {registry.busybox_ref} AS seed",
        "RUN mkdir -p /s && echo seeded > /s/a.txt && chmod 0705 /s",
        f"FROM {registry.busybox_ref}",
        f"RUN --mount=type=cache,target=/cache,id=df-{run},uid=1000,gid=1001,mode=0750 "
        f"--mount=type=cache,target=/seeded,id=df-seed-{run},from=seed,source=/s {script}",
    ]) + "\n")
    _same(ours, theirs)
    assert read_file(ours[2], "/cache.txt") == b"1000:1001 750\n"
    assert read_file(ours[2], "/seeded.txt") == b"seeded\n0:0 705\n"


def test_mount_targets_expand_variables(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    """``--mount=...,target=$DIR`` expands against the environment so far, as the frontend does."""
    run = uuid.uuid4().hex[:12]
    script = 'touch "$CACHE_DIR/x" && ls -d "$CACHE_DIR" > /where.txt && ls /src > /src.txt'
    context = _write(tmp_path / "ctx", {"src/main.c": "int main;\n"})
    spec = ImageSpec(name="//t:expand", base=RegistryBase(registry.busybox_ref), steps=(
        EnvStep({"CACHE_DIR": "/var/cache/app", "SRC": "/src"}),
        RunStep(script, mounts=(CacheMount("$CACHE_DIR", id=f"ours-{run}"),
                                BindMount("${SRC}", ContextSource("context", "src")))),))
    ours = llbkit_tree(buildkitd_amd64, _lower(registry, spec), tmp_path / "ours", context=context)
    theirs = frontend_tree(buildkitd_amd64, tmp_path / "df", "\n".join([
        f"FROM {registry.busybox_ref}",
        'ENV CACHE_DIR="/var/cache/app" SRC="/src"',
        f"RUN --mount=type=cache,target=$CACHE_DIR,id=df-{run} --mount=type=bind,source=src,target=${{SRC}} {script}",
    ]) + "\n", context=context)
    _same(ours, theirs)
    assert read_file(ours[2], "/where.txt") == b"/var/cache/app\n"
    assert read_file(ours[2], "/src.txt") == b"main.c\n"


def test_bind_mounts_of_context_and_image(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    files = {"src/a.txt": "a\n", "src/sub/b.txt": "b\n", "other.txt": "o\n"}
    context = _write(tmp_path / "ctx", files)
    script = ("find /src /built | sort > /listing.txt && cat /src/sub/b.txt /built/out.txt > /cat.txt && "
              "(touch /src/new 2>/dev/null && echo rw || echo ro) > /src-mode.txt && "
              "touch /scratch/new && echo wrote > /scratch/new && ls /scratch > /scratch.txt")
    builder = ImageSpec(name="//t:builder", base=RegistryBase(registry.busybox_ref), steps=(
        RunStep("mkdir -p /out && echo built > /out/out.txt"),))
    spec = ImageSpec(name="//t:bind", base=RegistryBase(registry.busybox_ref), steps=(
        RunStep("mkdir /scratch"),
        RunStep(script, mounts=(
            BindMount("/src", ContextSource("context", "src")),
            BindMount("/built", SpecBase(builder), path="/out"),
            BindMount("/scratch", SpecBase(builder), path="/out", readwrite=True),
        )),))
    ours = llbkit_tree(buildkitd_amd64, _lower(registry, spec), tmp_path / "ours", context=context)
    theirs = frontend_tree(buildkitd_amd64, tmp_path / "df", "\n".join([
        f"FROM {registry.busybox_ref} AS builder",
        "RUN mkdir -p /out && echo built > /out/out.txt",
        f"FROM {registry.busybox_ref}",
        "RUN mkdir /scratch",
        "RUN --mount=type=bind,source=src,target=/src --mount=type=bind,from=builder,source=/out,target=/built "
        f"--mount=type=bind,from=builder,source=/out,target=/scratch,rw {script}",
    ]) + "\n", context=context)
    _same(ours, theirs)
    assert read_file(ours[2], "/src-mode.txt") == b"ro\n"
    assert read_file(ours[2], "/cat.txt") == b"b\nbuilt\n"
    assert ours[0]["/scratch"].kind == "dir" and "/scratch/new" not in ours[0]  # rw writes are dropped


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[tuple]:
    root = tmp_path / "served"
    root.mkdir()
    handler = lambda *a, **k: _Files(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _tar_gz(members: Dict[str, tuple]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, (data, mode, uid) in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, uid
                tf.addfile(info)
            else:
                info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, uid, 1700000000
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_add_url_with_checksum_and_local_archive(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path, http_files: tuple
) -> None:
    served, base_url = http_files
    payload = f"tool {uuid.uuid4().hex}\n".encode()
    (served / "tool.sh").write_bytes(payload)
    checksum = "sha256:" + hashlib.sha256(payload).hexdigest()
    url = f"{base_url}/tool.sh"
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "vendor.tar.gz").write_bytes(_tar_gz({
        "vendor": (None, 0o755, 0), "vendor/bin.sh": (b"#!/bin/sh\n", 0o755, 1000),
        "vendor/README": (b"read me\n", 0o640, 0)}))
    (context / "notes.txt").write_text("plain file\n")
    spec = ImageSpec(name="//t:add", base=RegistryBase(registry.busybox_ref), steps=(
        AddStep(UrlSource(url, checksum), "/opt/"),
        AddStep(UrlSource(url, checksum), "/usr/local/bin/tool", chmod="0755", chown="1000:1000"),
        AddStep(ContextSource("context", "vendor.tar.gz"), "/srv/"),
        AddStep(ContextSource("context", "notes.txt"), "/srv/"),
    ))
    ours = llbkit_tree(buildkitd_amd64, _lower(registry, spec), tmp_path / "ours", context=context)
    theirs = frontend_tree(buildkitd_amd64, tmp_path / "df", "\n".join([
        f"FROM {registry.busybox_ref}",
        f"ADD --checksum={checksum} {url} /opt/",
        f"ADD --checksum={checksum} --chmod=0755 --chown=1000:1000 {url} /usr/local/bin/tool",
        "ADD vendor.tar.gz /srv/",
        "ADD notes.txt /srv/",
    ]) + "\n", context=context)
    _same(ours, theirs)
    tree = ours[0]
    assert tree["/opt/tool.sh"].mode == 0o600  # Docker: a downloaded file is 0600 unless --chmod
    owner = lambda e: (e.mode, e.uid, e.gid)  # noqa: E731
    assert owner(tree["/usr/local/bin/tool"]) == (0o755, 1000, 1000)
    assert owner(tree["/srv/vendor/bin.sh"]) == (0o755, 1000, 1000)  # unpacked with the archive's owners
    assert owner(tree["/srv/notes.txt"]) == (0o644, 0, 0)
    assert "/srv/vendor.tar.gz" not in tree and tree["/srv/notes.txt"].kind == "file"


def test_add_url_with_a_wrong_checksum_fails(
    registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path, http_files: tuple
) -> None:
    served, base_url = http_files
    (served / "f.txt").write_bytes(b"changed on the server\n")
    wrong = "sha256:" + hashlib.sha256(b"what was pinned\n").hexdigest()
    spec = ImageSpec(name="//t:add_bad", base=RegistryBase(registry.busybox_ref), steps=(
        AddStep(UrlSource(f"{base_url}/f.txt", wrong), "/opt/"),))
    with pytest.raises(SolveError) as e:
        llbkit_tree(buildkitd_amd64, _lower(registry, spec), tmp_path / "ours")
    assert "digest mismatch" in str(e.value) or "checksum" in str(e.value), str(e.value)


def test_network_host_with_the_entitlement(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    # The fixture daemon allows network.host; the solve must still ask for it.
    script = "cat /proc/net/dev | cut -d: -f1 | sort > /ifaces.txt"
    spec = ImageSpec(name="//t:host", base=RegistryBase(registry.busybox_ref), steps=(
        RunStep(script, network="host"),))
    lowered = _lower(registry, spec)
    ours = llbkit_tree(buildkitd_amd64, lowered, tmp_path / "ours", entitlements=["network.host"])
    theirs = frontend_tree(buildkitd_amd64, tmp_path / "df",
                           f"FROM {registry.busybox_ref}\nRUN --network=host {script}\n",
                           extra_args=["--allow", "network.host"])
    _same(ours, theirs)
    assert b"lo" in read_file(ours[2], "/ifaces.txt")
    with pytest.raises(SolveError) as e:  # not asked for: the daemon refuses
        llbkit_tree(buildkitd_amd64, lowered, tmp_path / "refused")
    assert "network.host" in str(e.value)


def test_security_insecure_with_the_entitlement(registry: Registry, tmp_path: Path) -> None:
    # A daemon of its own: the shared fixture daemon does not allow security.insecure.
    script = "grep CapEff /proc/self/status | tr -d '\\t' > /caps.txt"
    spec = ImageSpec(name="//t:insecure", base=RegistryBase(registry.busybox_ref), steps=(
        RunStep(script, security="insecure"),))
    sandboxed = ImageSpec(name="//t:sandboxed", base=RegistryBase(registry.busybox_ref), steps=(RunStep(script),))
    with Buildkitd(name="buildkitd_insecure", extra_args=["--allow-insecure-entitlement", "security.insecure"]) as bk:
        ours = llbkit_tree(bk, _lower(registry, spec), tmp_path / "ours", entitlements=["security.insecure"])
        theirs = frontend_tree(bk, tmp_path / "df", f"FROM {registry.busybox_ref}\nRUN --security=insecure {script}\n",
                               extra_args=["--allow", "security.insecure"])
        plain = llbkit_tree(bk, _lower(registry, sandboxed), tmp_path / "plain")
    _same(ours, theirs)
    caps = int(read_file(ours[2], "/caps.txt").decode().split(":")[1], 16)
    assert caps >= 0x1FFFFFFFFF  # every capability
    assert int(read_file(plain[2], "/caps.txt").decode().split(":")[1], 16) < caps


@pytest.fixture
def ssh_agent(tmp_path: Path) -> Iterator[str]:
    """An ssh-agent with one generated key (comment ``llbkit-test``); its socket path."""
    try:
        agent = SshAgent(tmp_path / "agent").start()
    except FixtureError as e:
        pytest.fail(f"test environment: {e}", pytrace=False)
    try:
        yield agent.socket
    finally:
        agent.stop()


def test_ssh_mount_forwards_the_agent(buildkitd_amd64: Buildkitd, tmp_path: Path, ssh_agent: str) -> None:
    from llbkit.testutil.testregistry import PYTHON3_REPO, TestRegistry

    reg = TestRegistry()
    reg.ensure()
    ref = f"{reg.address}/{PYTHON3_REPO}:3.11"
    context = _write(tmp_path / "ctx", {"agent_check.py": AGENT_CHECK})

    cfg = registry_config(f"http://{reg.address}", PYTHON3_REPO, "3.11", PLATFORM)
    spec = ImageSpec(name="//t:ssh", base=RegistryBase(ref), steps=(
        CopyStep(ContextSource("context", "agent_check.py"), "/agent_check.py"),
        RunStep(("python3", "/agent_check.py"), mounts=(SshMount(required=True),)),  # no /bin/sh in it
    ))
    lowered = lower(spec, PLATFORM, base_configs={ref: cfg}, context_digest=f"sha256:{uuid.uuid4().hex}",
                    source_date_epoch=0)
    ours = llbkit_tree(buildkitd_amd64, lowered, tmp_path / "ours", context=context, ssh={"default": ssh_agent})
    theirs = frontend_tree(buildkitd_amd64, tmp_path / "df", "\n".join([
        f"FROM {ref}", "COPY agent_check.py /agent_check.py",
        'RUN --mount=type=ssh,required ["python3", "/agent_check.py"]']) + "\n",
        context=context, extra_args=["--ssh", f"default={ssh_agent}"])
    _same(ours, theirs, ignore=["/usr/lib/python3.11/__pycache__"])
    assert read_file(ours[2], "/agent.txt") == b"1 llbkit-test /run/buildkit/ssh_agent.0\n"
