"""The bad-input catalogue: every way a user can get a BUILD file, a `[buildkit]` option, a CLI
argument or a definition file wrong, and what they must see for it.

For each case: a non-zero exit, no Python traceback, a message that names what is wrong, where
(the target, field, option, flag or file) and how to fix it, and nothing written: no `dist/`
output, no image in Pants' caches (no named cache but the settings channel), no buildkitd
started, no file left by the CLI.

The Pants cases run in one checkout under one pantsd (see `checkout.py`): each writes its own
`badinput/<case>/BUILD` and packages only that directory, so the whole catalogue costs one Pants
start-up plus a few seconds a case. The CLI cases run `python -m llbkit` in an empty directory.
To add a case, add a row to `PANTS_CASES` or `CLI_CASES`: an id, the input, and the fragments the
message must hold (each fragment is one of what / where / how to fix).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent
from typing import Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple

import pytest

from checkout import Checkout, repo_root
from llbkit.testutil.procs import make_temp_dir, remove_tree, silent_tcp_listener

BUSYBOX = "127.0.0.1:5050/llbkit/busybox:latest"  # the samples' registry, started by ./pants
GOOD = f'container_image(name="img", base="{BUSYBOX}", platforms=["linux/amd64"], steps=[run("true")])\n'


@dataclass(frozen=True)
class Case:
    id: str
    expect: Tuple[str, ...]  # fragments the message must hold: what, where, how to fix
    build: str = GOOD  # the case's BUILD file (badinput/<id>/BUILD)
    args: Tuple[str, ...] = ()  # Pants options
    files: Mapping[str, str] = field(default_factory=dict)  # more files in the case's directory
    env: Mapping[str, str] = field(default_factory=dict)
    goal: str = "package"


def _img(**fields: str) -> str:
    """A container_image with the good defaults and `fields` (BUILD source text) instead."""
    base = {"name": '"img"', "base": f'"{BUSYBOX}"', "platforms": '["linux/amd64"]', "steps": '[run("true")]'}
    base.update(fields)
    return "container_image(" + ", ".join(f"{k}={v}" for k, v in base.items() if v is not None) + ")\n"


FILES = 'files(name="files", sources=["a.txt"])\n'
A_TXT = {"a.txt": "a\n"}

PANTS_CASES = [
    # -- BUILD fields ---------------------------------------------------------------------------
    Case("base-missing", ("base", "img", "must be defined"), build=_img(base=None)),
    Case("base-empty", ("base", "img"), build=_img(base='""')),
    Case("base-not-a-reference", ("base", "img", "Not A Ref!"), build=_img(base='"Not A Ref!"')),
    Case("base-no-such-target", ("base", "img", ":nosuch"), build=_img(base='":nosuch"')),
    Case("base-cycle", ("base", "cycle"), build=_img(name='"img"', base='":img"')),
    Case("steps-a-string", ("steps", "img"), build=_img(steps='"run true"')),
    Case("steps-string-item", ("steps", "img", "copy(", "run("), build=_img(steps='["echo hi"]')),
    Case("copy-missing-source", ("steps", "img", "nosuch.txt"), build=FILES + _img(steps='[copy("nosuch.txt", "/")]'),
         files=A_TXT),
    Case("copy-no-dest", ("copy()", "copy(source, dest"), build=_img(steps='[copy("a.txt")]')),
    Case("copy-int-source", ("copy(source, dest)", "two strings"), build=_img(steps='[copy(1, "/")]')),
    Case("copy-absolute-source", ("steps", "img", "/etc/passwd"), build=_img(steps='[copy("/etc/passwd", "/")]')),
    Case("copy-escaping-source", ("steps", "img", "../"), build=_img(steps='[copy("../x", "/")]')),
    Case("copy-pattern-source", ("steps", "img", "pattern"), build=FILES + _img(steps='[copy("*.txt", "/")]'),
         files=A_TXT),
    Case("copy-bad-chmod", ("chmod", "img", "999"), build=FILES + _img(steps='[copy("a.txt", "/", chmod="999")]'),
         files=A_TXT),
    Case("copy-bad-chown", ("chown", "img", "a:b:c"),
         build=FILES + _img(steps='[copy("a.txt", "/", chown="a:b:c")]'), files=A_TXT),
    Case("copy-misspelt-keyword", ("copy()", "mode", "chmod="), build=_img(steps='[copy("a.txt", "/", mode="0644")]')),
    Case("run-no-command", ("run()", "command"), build=_img(steps="[run()]")),
    Case("run-empty-command", ("steps", "img", "empty"), build=_img(steps='[run("")]')),
    Case("run-bad-network", ("network", "img", "bogus"), build=_img(steps='[run("true", network="bogus")]')),
    Case("run-secret-not-a-mount", ("run(secrets=...)", "secret_mount()"), build=_img(steps='[run("true", secrets=["token"])]')),
    Case("run-mount-not-a-mount", ("run(mounts=...)", "cache_mount()"), build=_img(steps='[run("true", mounts=["/c"])]')),
    Case("cache-mount-relative", ("img", "relative"), build=_img(steps='[run("true", mounts=[cache_mount("c")])]')),
    Case("cache-mount-bad-sharing", ("sharing", "bogus", "locked"),
         build=_img(steps='[run("true", mounts=[cache_mount("/c", sharing="bogus")])]')),
    Case("tmpfs-negative-size", ("size", "img", "-1"), build=_img(steps='[run("true", mounts=[tmpfs_mount("/t", size=-1)])]')),
    Case("env-not-a-dict", ("env", "img"), build=_img(env='"A=1"')),
    Case("env-int-value", ("env", "img"), build=_img(env='{"A": 1}')),
    Case("env-bad-name", ("env", "img", "A B"), build=_img(env='{"A B": "1"}')),
    Case("workdir-a-list", ("workdir", "img"), build=_img(workdir='["/app"]')),
    Case("entrypoint-a-string", ("entrypoint", "img"), build=_img(entrypoint='"/bin/sh"')),
    Case("exposed-port-not-a-number", ("exposed_ports", "img", "http"), build=_img(exposed_ports='["http"]')),
    Case("exposed-port-bad-protocol", ("exposed_ports", "img", "xyz"), build=_img(exposed_ports='["80/xyz"]')),
    Case("volume-relative", ("volumes", "img", "data"), build=_img(volumes='["data"]')),
    Case("stop-signal-unknown", ("stop_signal", "img", "SIGBOGUS"), build=_img(stop_signal='"SIGBOGUS"')),
    Case("platform-malformed", ("platforms", "img", "amd64"), build=_img(platforms='["amd64"]')),
    Case("platforms-a-string", ("platforms", "img"), build=_img(platforms='"linux/amd64"')),
    Case("repository-uppercase", ("repository", "img", "Acme/App"), build=_img(repository='"Acme/App"')),
    Case("tag-invalid", ("image_tags", "img", "bad tag!"), build=_img(repository='"acme/app"', image_tags='["bad tag!"]')),
    Case("registry-with-scheme", ("registries", "img", "http://"), build=_img(repository='"acme/app"',
                                                                          registries='["http://r.example.com"]')),
    Case("output-format-unknown", ("output_format", "img", "tar", "oci"), build=_img(output_format='"tar"')),
    Case("docker-archive-two-platforms", ("output_format", "img", "one platform"),
         build=_img(output_format='"docker"', platforms='["linux/amd64", "linux/arm64"]')),
    Case("label-empty-key", ("labels", "img"), build=_img(labels='{"": "x"}')),
    Case("unknown-field", ("img", "frobnicate"), build=_img(frobnicate="1")),
    # Pants' own parser error: it names the file and line, not the directory (Pants 2.17).
    Case("build-file-syntax-error", ("SyntaxError", "BUILD, line 1"), build='container_image(name="img"\n'),
    # -- secrets: declared by the image, configured (or not) in [buildkit].secrets ----------------
    Case("secret-not-configured", ("img", "token", "[buildkit].secrets"),
         build=_img(steps='[run("true", secrets=[secret_mount("token")])]')),
    Case("secret-env-unset", ("img", "token", "LLBKIT_BADINPUT_UNSET", "set it"),
         build=_img(steps='[run("true", secrets=[secret_mount("token")])]'),
         args=("--buildkit-secrets=['token=env:LLBKIT_BADINPUT_UNSET']",)),
    Case("secret-file-missing", ("img", "token", "no-such-secret-file", "[buildkit].secrets"),
         build=_img(steps='[run("true", secrets=[secret_mount("token")])]'),
         args=("--buildkit-secrets=['token=file:/nonexistent/no-such-secret-file']",)),
    # -- [buildkit] options -----------------------------------------------------------------------
    Case("option-worker-no-scheme", ("[buildkit].workers", "foo", "tcp://HOST:PORT"), args=("--buildkit-workers=['foo']",)),
    Case("option-worker-bad-port", ("[buildkit].workers", "99999", "range"), args=("--buildkit-workers=['tcp://h:99999']",)),
    Case("option-worker-empty-platforms", ("[buildkit].workers", "after '='"),
         args=("--buildkit-workers=['unix:///run/b.sock=']",)),
    Case("option-worker-bad-platform", ("[buildkit].workers", "arm64", "os/arch"),
         args=("--buildkit-workers=['unix:///run/b.sock=arm64']",)),
    Case("option-platforms-malformed", ("[buildkit].platforms", "amd64", "os/arch"),
         build=_img(platforms=None), args=("--buildkit-platforms=['amd64']",)),
    Case("option-max-attempts-zero", ("[buildkit].max_attempts", "at least 1"), args=("--buildkit-max-attempts=0",)),
    Case("option-connect-timeout-zero", ("[buildkit].connect_timeout", "positive"), args=("--buildkit-connect-timeout=0",)),
    Case("option-source-date-epoch-negative", ("[buildkit].source_date_epoch", "-1"),
         args=("--buildkit-source-date-epoch=-1",)),
    Case("option-progress-unknown", ("progress", "fancy", "quiet", "plain"), args=("--buildkit-progress=fancy",)),
    Case("option-cache-from-unknown-type", ("[buildkit].cache_from", "nope", "type=registry", "type=local"),
         args=("--buildkit-cache-from=['type=nope']",)),
    Case("option-cache-from-registry-no-ref", ("[buildkit].cache_from", "ref="),
         args=("--buildkit-cache-from=['type=registry']",)),
    Case("option-cache-to-unknown-type", ("[buildkit].cache_to", "nope", "type=inline"),
         args=("--buildkit-cache-to=['type=nope,ref=x']",)),
    Case("option-cache-to-local-no-dest", ("[buildkit].cache_to", "dest="), args=("--buildkit-cache-to=['type=local']",)),
    Case("option-secret-no-source", ("[buildkit].secrets", "token", "ID=env:VARIABLE"), args=("--buildkit-secrets=['token']",)),
    Case("option-secret-bad-kind", ("[buildkit].secrets", "vault:x", "ID=file:PATH"),
         args=("--buildkit-secrets=['token=vault:x']",)),
    Case("option-secret-twice", ("[buildkit].secrets", "twice"),
         args=("--buildkit-secrets=['t=env:A', 't=env:B']",)),
    Case("option-tls-cert-without-key", ("[buildkit].tls_cert", "[buildkit].tls_key"),
         args=("--buildkit-tls-cert=/etc/x.pem",)),
    Case("option-tls-dir-and-files", ("[buildkit].tls_dir", "not both"),
         args=("--buildkit-tls-dir=/etc", "--buildkit-tls-ca=/etc/ca.pem")),
    Case("option-tls-dir-missing", ("[buildkit].tls_dir", "/nonexistent/certs", "does not exist"),
         args=("--buildkit-tls-dir=/nonexistent/certs",)),
    Case("option-tls-ca-missing", ("[buildkit].tls_ca", "/nonexistent/ca.pem", "does not exist"),
         args=("--buildkit-workers=['tcp://127.0.0.1:1']", "--buildkit-tls-ca=/nonexistent/ca.pem")),
    Case("option-tls-ca-not-pem", ("[buildkit].tls_ca", "ca.pem", "PEM"),
         files={"ca.pem": "not a certificate\n"},
         args=("--buildkit-workers=['tcp://127.0.0.1:1']", "--buildkit-tls-ca=badinput/option-tls-ca-not-pem/ca.pem")),
    Case("option-tcp-worker-without-tls", ("tcp://127.0.0.1:1", "without TLS", "[buildkit].tls_dir"),
         args=("--buildkit-workers=['tcp://127.0.0.1:1']",)),
    Case("option-no-worker-and-no-auto-start", ("img", "[buildkit].auto_start", "[buildkit].workers"),
         args=("--buildkit-auto-start=false",)),
    Case("option-worker-unreachable", ("img", "no-such-buildkitd.sock", "unreachable", "[buildkit].workers"),
         args=("--buildkit-workers=['unix:///nonexistent/no-such-buildkitd.sock']",)),
]


@dataclass(frozen=True)
class CliCase:
    id: str
    argv: Tuple[str, ...]
    expect: Tuple[str, ...]
    files: Mapping[str, bytes] = field(default_factory=dict)  # inputs, written in the empty working dir
    exit_code: Optional[int] = None  # None: any non-zero


def _definition() -> bytes:
    from llbkit import llb

    return llb.image("127.0.0.1:5050/llbkit/busybox:latest").run("true").root().marshal(platform="linux/amd64").to_bytes()


def _definition_with_a_dangling_input() -> bytes:
    from llbkit._proto import ops_pb2 as pb  # type: ignore[attr-defined]
    from llbkit.llb.marshal import serialize

    d = pb.Definition()
    d.ParseFromString(_definition())
    defs = list(getattr(d, "def"))
    op = pb.Op()
    op.ParseFromString(defs[-1])
    op.inputs[0].digest = "sha256:" + "0" * 64
    getattr(d, "def")[-1] = serialize(op)
    return d.SerializeToString()


NOSOCK = "unix:///nonexistent/no-such-buildkitd.sock"
CLI_CASES = [
    CliCase("no-command", (), ("usage", "COMMAND"), exit_code=2),
    CliCase("unknown-command", ("frobnicate",), ("frobnicate", "choose from"), exit_code=2),
    CliCase("build-progress-unknown", ("build", "def.bin", "--progress", "fancy"), ("--progress", "fancy", "plain"),
            exit_code=2),
    CliCase("build-output-unknown-type", ("build", "def.bin", "--output", "type=nope"), ("--output", "nope", "oci"),
            files={"def.bin": b"<def>"}),
    CliCase("build-output-no-dest", ("build", "def.bin", "--output", "type=oci"), ("--output", "dest="), files={"def.bin": b"<def>"}),
    CliCase("build-output-dir-missing", ("build", "def.bin", "--addr", NOSOCK, "--output", "type=oci,dest=nodir/out.tar"),
            ("nodir", "does not exist", "mkdir"), files={"def.bin": b"<def>"}),
    CliCase("build-output-dest-is-dir", ("build", "def.bin", "--addr", NOSOCK, "--output", "type=oci,dest=."),
            ("dest=.", "is a directory", "tar=false"), files={"def.bin": b"<def>"}),
    CliCase("build-metadata-dir-missing", ("build", "def.bin", "--addr", NOSOCK, "--metadata-file", "nodir/m.json"),
            ("--metadata-file", "nodir", "does not exist"), files={"def.bin": b"<def>"}),
    CliCase("build-local-missing", ("build", "def.bin", "--addr", NOSOCK, "--local", "ctx=nodir"),
            ("--local", "nodir", "not a directory"), files={"def.bin": b"<def>"}),
    CliCase("build-local-no-name", ("build", "def.bin", "--addr", NOSOCK, "--local", "ctx"), ("--local", "NAME=DIR"),
            files={"def.bin": b"<def>"}),
    CliCase("build-secret-no-source", ("build", "def.bin", "--addr", NOSOCK, "--secret", "id=x"),
            ("--secret", "id=ID,src=FILE"), files={"def.bin": b"<def>"}),
    CliCase("build-secret-file-missing", ("build", "def.bin", "--addr", NOSOCK, "--secret", "id=x,src=nofile"),
            ("--secret", "nofile", "not a file"), files={"def.bin": b"<def>"}),
    CliCase("build-import-cache-no-ref", ("build", "def.bin", "--import-cache", "type=registry"),
            ("--import-cache", "ref="), files={"def.bin": b"<def>"}),
    CliCase("build-export-cache-local-no-dest", ("build", "def.bin", "--export-cache", "type=local"),
            ("--export-cache", "dest="), files={"def.bin": b"<def>"}),
    CliCase("build-opt-no-value", ("build", "def.bin", "--opt", "foo"), ("--opt", "foo", "key=value"), files={"def.bin": b"<def>"}),
    CliCase("build-addr-bad-scheme", ("build", "def.bin", "--addr", "http://x:1"), ("http://x:1", "tcp://HOST:PORT")),
    CliCase("build-addr-bad-port", ("build", "def.bin", "--addr", "tcp://h:99999"), ("99999", "range")),
    CliCase("build-tcp-without-tls", ("build", "def.bin", "--addr", "tcp://127.0.0.1:1"), ("without TLS", "--tlsdir")),
    CliCase("build-tlsdir-missing", ("build", "def.bin", "--addr", "tcp://127.0.0.1:1", "--tlsdir", "nocerts"),
            ("nocerts", "does not exist")),
    CliCase("build-tlsdir-empty", ("build", "def.bin", "--addr", "tcp://127.0.0.1:1", "--tlsdir", "certs"),
            ("certs", "ca.pem", "ca.crt"), files={"certs/README": b"empty\n"}),
    CliCase("build-tlscert-without-key", ("build", "def.bin", "--addr", "tcp://127.0.0.1:1", "--tlscert", "c.pem"),
            ("--tlskey", "missing")),
    CliCase("build-tlsca-not-pem", ("build", "def.bin", "--addr", "tcp://127.0.0.1:1", "--tlscacert", "ca.pem"),
            ("ca.pem", "PEM"), files={"ca.pem": b"hello\n"}),
    CliCase("build-image-config-missing", ("build", "def.bin", "--image-config", "noconfig.json", "--opt", "platform=linux/amd64"),
            ("noconfig.json", "No such file")),
    CliCase("build-image-config-not-json", ("build", "def.bin", "--image-config", "c.json", "--opt", "platform=linux/amd64"),
            ("--image-config", "c.json", "not JSON"), files={"c.json": b"{nope"}),
    CliCase("build-image-config-a-list", ("build", "def.bin", "--image-config", "c.json", "--opt", "platform=linux/amd64"),
            ("--image-config", "JSON object"), files={"c.json": b"[]"}),
    CliCase("build-image-config-no-platform", ("build", "def.bin", "--image-config", "c.json"),
            ("--opt platform=",), files={"c.json": b"{}"}),
    CliCase("build-two-platforms", ("build", "def.bin", "--opt", "platform=linux/amd64,linux/arm64"),
            ("platform=linux/amd64,linux/arm64", "one platform")),
    CliCase("prune-bad-duration", ("prune", "--addr", NOSOCK, "--keep-duration", "3days"), ("--keep-duration", "3days", "48h")),
    CliCase("prune-bad-size", ("prune", "--addr", NOSOCK, "--max-used-space", "lots"), ("--max-used-space", "lots", "10GB")),
    CliCase("workers-pool-missing", ("workers", "--pool", "nopool.json"), ("nopool.json",)),
    CliCase("workers-pool-not-json", ("workers", "--pool", "pool.json"), ("pool.json", "JSON"), files={"pool.json": b"{"}),
    CliCase("workers-filter-with-pool", ("workers", "--addr", NOSOCK, "--addr", NOSOCK, "--filter", "x"),
            ("--filter", "--addr")),
    CliCase("workers-unreachable", ("workers", "--addr", NOSOCK), ("no-such-buildkitd.sock", "Is buildkitd running")),
    CliCase("push-no-layout", ("push", "127.0.0.1:1/a/b:1"), ("--layout",), exit_code=2),
    CliCase("push-layout-missing", ("push", "--layout", "nolayout.tar", "127.0.0.1:1/a/b:1"), ("nolayout.tar",)),
    CliCase("push-layout-not-a-layout", ("push", "--layout", "x.tar", "127.0.0.1:1/a/b:1"), ("x.tar",),
            files={"x.tar": b"not a tar"}),
    CliCase("push-no-registry", ("push", "--layout", "x.tar", "acme/app:1"), ("acme/app:1", "names no registry", "REGISTRY/"),
            files={"x.tar": b"not a tar"}),
    CliCase("push-digest-reference", ("push", "--layout", "x.tar", "127.0.0.1:1/a/b@sha256:" + "0" * 64),
            ("names a digest", "127.0.0.1:1/a/b"), files={"x.tar": b"not a tar"}),
    # -- definition files -------------------------------------------------------------------------
    CliCase("definition-missing", ("dump-llb", "nodef.bin"), ("nodef.bin", "No such file")),
    CliCase("definition-a-directory", ("dump-llb", "d"), ("d", "directory"), files={"d/x": b""}),
    CliCase("definition-empty", ("dump-llb", "def.bin"), ("def.bin", "empty", "nothing to build"), files={"def.bin": b""}),
    CliCase("definition-garbage", ("dump-llb", "def.bin"), ("pb.Definition",), files={"def.bin": b"\xff\xfe\x00garbage"}),
    CliCase("definition-json", ("dump-llb", "def.bin"), ("pb.Definition",), files={"def.bin": b'{"def": []}'}),
    CliCase("definition-truncated", ("dump-llb", "def.bin"), ("pb.Definition",), files={"def.bin": b"<truncated>"}),
    CliCase("definition-dangling-input", ("dump-llb", "def.bin"), ("input", "sha256:000"), files={"def.bin": b"<dangling>"}),
    CliCase("build-definition-garbage", ("build", "def.bin", "--addr", NOSOCK), ("pb.Definition",),
            files={"def.bin": b"\xff\xfe\x00garbage"}),
]


# -- Pants cases ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkout() -> Iterator[Checkout]:
    base = make_temp_dir("badinput", need_socket_room=len("/cache-b/buildkitd/buildkitd.sock"))
    co = Checkout(base, "b", pantsd=True, own_named_caches=True)
    try:
        for case in PANTS_CASES:
            d = co.repo / "badinput" / case.id
            d.mkdir(parents=True)
            (d / "BUILD").write_text(case.build)
            for rel, text in case.files.items():
                (d / rel).write_text(dedent(text))
        # Start pantsd once, before the cases (on a loaded machine its start-up can outlast the
        # client's 60 s wait: then once more).
        for _attempt in range(2):
            if co.pants("list", "badinput/base-empty:", timeout=600).returncode == 0:
                break
        yield co
    finally:
        co.close()
        remove_tree(base)


def _listing(root: Path) -> set:
    """llbkit's named caches (Pants makes its own tools' caches, pex_root..., on first use)."""
    return {p.name for p in root.iterdir() if p.name.startswith("llbkit")} if root.is_dir() else set()


def _assert_clear(message: str, expect: Sequence[str], output: str) -> None:
    assert "Traceback" not in output, f"{message}: a traceback:\n{output[-4000:]}"
    missing = [e for e in expect if e.lower() not in output.lower()]
    assert not missing, f"{message}: the message lacks {missing}:\n{output[-4000:]}"


@pytest.mark.parametrize("case", PANTS_CASES, ids=[c.id for c in PANTS_CASES])
def test_pants_bad_input_is_a_clear_error_and_writes_nothing(checkout: Checkout, case: Case) -> None:
    named = Path(checkout.env["PANTS_NAMED_CACHES_DIR"])
    before = _listing(named)
    cache_before = sorted(p.name for p in checkout.cache.iterdir())
    checkout.clear_dist()  # what an earlier case may have written is not this case's
    run = checkout.pants(case.goal, f"badinput/{case.id}:", *case.args, env=dict(case.env), timeout=600)
    assert run.returncode != 0, f"{case.id}: accepted:\n{run.log[-3000:]}"
    _assert_clear(case.id, case.expect, run.log)
    dist = checkout.repo / "dist"
    assert not dist.exists() or not any(p.is_file() for p in dist.rglob("*")), f"{case.id} wrote {list(dist.rglob('*'))}"
    # The settings channel is rewritten by design, and the build code's copy is code, not output.
    new = {n for n in _listing(named) - before if not n.startswith("llbkit_machine_") and n != "llbkit_code"}
    assert not new, f"{case.id} wrote named caches {new}"
    assert checkout.daemon.pid() is None, f"{case.id} started a buildkitd"
    assert sorted(p.name for p in checkout.cache.iterdir()) == cache_before, f"{case.id} wrote into $LLBKIT_CACHE"


# -- CLI cases ------------------------------------------------------------------------------------

_SPECIAL_FILES: Dict[bytes, Callable[[], bytes]] = {
    b"<truncated>": lambda: _definition()[:-7],
    b"<dangling>": _definition_with_a_dangling_input,
    b"<def>": _definition,
}


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_bad_input_is_a_clear_error_and_writes_nothing(tmp_path: Path, case: CliCase) -> None:
    files = dict(case.files)
    if "def.bin" in case.argv and "def.bin" not in files:
        files["def.bin"] = b"<def>"  # a good definition: the case is about something else
    for rel, data in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_SPECIAL_FILES[data]() if data in _SPECIAL_FILES else data)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    env = dict(os.environ, PYTHONPATH=str(repo_root() / "src"), TMPDIR=str(tmp_path / "tmp"))
    env.pop("BUILDKIT_HOST", None)
    env.pop("LLBKIT_DEBUG", None)
    (tmp_path / "tmp").mkdir()
    proc = subprocess.run([sys.executable, "-m", "llbkit", *case.argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{case.id}: accepted:\n{output}"
    if case.exit_code is not None:
        assert proc.returncode == case.exit_code, output
    _assert_clear(case.id, case.expect, output)
    assert not any((tmp_path / "tmp").iterdir()), f"{case.id} left temporary files"
    (tmp_path / "tmp").rmdir()
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, f"{case.id} wrote {set(after) - set(before)}"


def test_the_catalogue_has_at_least_60_cases() -> None:
    assert len(PANTS_CASES) + len(CLI_CASES) >= 60
    assert len({c.id for c in PANTS_CASES} | {c.id for c in CLI_CASES}) == len(PANTS_CASES) + len(CLI_CASES)


# -- connection faults, as `pants package` reports them ---------------------------------------------

@pytest.fixture
def silent_worker() -> Iterator[str]:
    with silent_tcp_listener() as address:
        yield address


def test_a_worker_that_never_answers_is_named_with_the_timeout_option(checkout: Checkout, silent_worker: str,
                                                                      tmp_path: Path) -> None:
    from llbkit.testutil.certs import make_tls_files

    _write_good(checkout, "silent")
    tls = make_tls_files(tmp_path / "tls")
    log = _package_fault_target(checkout, "silent", [
        f"--buildkit-workers=['{silent_worker}']", f"--buildkit-tls-ca={tls.ca_cert}",
        f"--buildkit-tls-cert={tls.client_cert}", f"--buildkit-tls-key={tls.client_key}",
        "--buildkit-connect-timeout=2", "--buildkit-max-attempts=1"])
    _assert_clear("silent worker", (silent_worker, "Deadline Exceeded", "within 2 s", "[buildkit].connect_timeout"), log)
    assert "--timeout" not in log and "--tlscert" not in log, log[-3000:]


def test_a_client_certificate_from_another_ca_names_the_tls_options(checkout: Checkout, tmp_path: Path) -> None:
    from llbkit.testutil.buildkitd import Buildkitd
    from llbkit.testutil.certs import make_tls_files

    served = make_tls_files(tmp_path / "served")
    other = make_tls_files(tmp_path / "other")
    daemon = Buildkitd(tcp=True, tls=served, name="buildkitd(tcp+tls, badinput)").start()
    try:
        _write_good(checkout, "other-ca")
        log = _package_fault_target(checkout, "other-ca", [
            f"--buildkit-workers=['{daemon.addr}']", f"--buildkit-tls-ca={served.ca_cert}",
            f"--buildkit-tls-cert={other.client_cert}", f"--buildkit-tls-key={other.client_key}",
            "--buildkit-max-attempts=1"])
    finally:
        daemon.stop()
    _assert_clear("client cert from another CA", (daemon.addr, "rejected the client certificate",
                                                   "[buildkit].tls_cert"), log)
    assert "--tlscert" not in log and "Is buildkitd running" not in log, log[-3000:]


def _write_good(co: Checkout, name: str) -> None:
    d = co.repo / "badinput" / f"fault-{name}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "BUILD").write_text(_img(steps=f'[run("echo {name}-{os.getpid()}")]'))


def _package_fault_target(co: Checkout, name: str, args: Sequence[str]) -> str:
    co.clear_dist()
    run = co.pants("package", f"badinput/fault-{name}:", *args, timeout=600)
    assert run.returncode != 0, run.log[-3000:]
    assert not (co.repo / "dist").exists() or not any(p.is_file() for p in (co.repo / "dist").rglob("*"))
    return run.log
