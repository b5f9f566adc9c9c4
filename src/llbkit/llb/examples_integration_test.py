"""The example catalogue against real BuildKit: buildctl parses our bytes as we do, and they solve.

For every example of :func:`llbkit.testutil.llb_examples.catalogue`:

- ``buildctl debug dump-llb`` of the marshaled bytes prints exactly ``llb.dump(definition)`` (and
  ``--dot`` exactly ``llb.to_dot``);
- ``buildctl build`` reading the definition from stdin solves it on the ``buildkitd_amd64`` fixture
  and the exported filesystem passes :func:`verify_export`. Examples that check owners are exported
  as a tar (owners are read from the archive, so no root is needed for them to survive); the others
  with the local exporter. The cache-mount example is solved twice and must show the second count.
- secret values never appear in the definition bytes, the export or buildctl's progress output.

One example (plus a ``uname -m`` run) is also solved for linux/arm64 on ``buildkitd_arm64_tls``.
Until llbkit's own client exists, buildctl is the client here.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from llbkit import llb
from llbkit.testutil.llb_examples import (
    SECRET_ENV_VALUE,
    SECRET_VALUE,
    Example,
    Expect,
    catalogue,
    verify_export,
)
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.registry import Registry
from llbkit.testutil.tools import find_tool

PLATFORM = "linux/amd64"
SECRETS = (SECRET_VALUE, SECRET_ENV_VALUE)
# Names only (they do not depend on the registry address): the test ids.
NAMES = [e.name for e in catalogue("127.0.0.1:5000")]
# Fresh cache ids per session, so the cache-mount counter starts from an empty cache.
CACHE_NAMESPACE = f"llbkit-it-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def examples(registry: Registry) -> Dict[str, Example]:
    return {e.name: e for e in catalogue(registry.host, cache_namespace=CACHE_NAMESPACE)}


@pytest.fixture(scope="module")
def buildctl_bin() -> Path:
    return find_tool("buildctl")


def _marshal(ex: Example, platform: str = PLATFORM) -> llb.Definition:
    return ex.state.marshal(platform, local_unique_id=f"llbkit-it-{ex.name}")


def _dump_llb(buildctl: Path, data: bytes, *args: str) -> str:
    res = subprocess.run([str(buildctl), "debug", "dump-llb", *args], input=data,
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    return res.stdout.decode()


def _write_tree(root: Path, files: Dict[str, bytes]) -> Path:
    root.mkdir(parents=True)
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return root


def _needs_owners(ex: Example) -> bool:
    return any(e.uid is not None or e.gid is not None for e in ex.expect + ex.expect_second_solve)


def _solve(
    daemon: Buildkitd, ex: Example, data: bytes, out: Path, tmp: Path, *, as_tar: bool
) -> "subprocess.CompletedProcess[bytes]":
    """``buildctl build`` of ``data`` (from stdin), exported to ``out`` (a dir, or a tar file)."""
    args: List[str] = ["build", "--progress=plain"]
    for name, files in sorted(ex.local_dirs.items()):
        src = tmp / f"local-{name}"
        if not src.exists():
            _write_tree(src, dict(files))
        args += ["--local", f"{name}={src}"]
    for sid, value in sorted(ex.secrets.items()):
        src = tmp / f"secret-{sid}"
        src.write_bytes(value)
        args += ["--secret", f"id={sid},src={src}"]
    for ent in ex.entitlements:
        args += ["--allow", ent]
    args += ["--output", f"type=tar,dest={out}" if as_tar else f"type=local,dest={out}"]
    assert daemon.buildctl_bin is not None
    argv = [str(daemon.buildctl_bin), *daemon.client_args(), "--timeout", "5", *args]
    res = subprocess.run(argv, input=data, capture_output=True, timeout=300)
    assert res.returncode == 0, (
        f"{ex.name}: buildctl build failed ({res.returncode})\n"
        f"{res.stderr.decode(errors='replace')[-4000:]}"
    )
    return res


def _extract(tar_path: Path, dest: Path) -> Dict[str, tarfile.TarInfo]:
    """Extract (modes, symlinks, mtimes) and return the members by absolute path."""
    dest.mkdir()
    with tarfile.open(tar_path) as tf:
        members = tf.getmembers()
        kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        tf.extractall(dest, **kw)  # noqa: S202 - our own build's output
    return {"/" + _strip_dot_slash(m.name).rstrip("/"): m for m in members}


def _strip_dot_slash(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _owner_problems(ex: Example, members: Dict[str, tarfile.TarInfo], expects: Sequence[Expect]) -> List[str]:
    problems = []
    for e in expects:
        m = members.get(e.path)
        if m is None or e.kind == "absent":
            continue
        if e.uid is not None and m.uid != e.uid:
            problems.append(f"{ex.name}: {e.path}: uid {m.uid} in the tar, want {e.uid}")
        if e.gid is not None and m.gid != e.gid:
            problems.append(f"{ex.name}: {e.path}: gid {m.gid} in the tar, want {e.gid}")
    return problems


def _files_containing(root: Path, needles: Sequence[bytes]) -> List[str]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            if p.is_symlink():
                continue
            data = p.read_bytes()
            found += [f"{p}: {n!r}" for n in needles if n in data]
    return found


def _solve_and_verify(
    daemon: Buildkitd, ex: Example, data: bytes, tmp: Path, label: str, *, second: bool = False
) -> None:
    as_tar = _needs_owners(ex)
    root = tmp / f"{label}-root"
    if as_tar:
        tar_path = tmp / f"{label}.tar"
        res = _solve(daemon, ex, data, tar_path, tmp, as_tar=True)
        raw = tar_path.read_bytes()
        assert not [s for s in SECRETS if s in raw], f"{ex.name}: a secret value is in the export"
        members = _extract(tar_path, root)
        problems = verify_export(ex, root, second_solve=second, check_owners=False)
        problems += _owner_problems(ex, members, ex.expect_second_solve if second else ex.expect)
    else:
        res = _solve(daemon, ex, data, root, tmp, as_tar=False)
        problems = verify_export(ex, root, second_solve=second, check_owners=os.geteuid() == 0)
    assert not problems, "\n".join([ex.description, *problems])
    assert not _files_containing(root, SECRETS), f"{ex.name}: a secret value is in the export"
    progress = res.stdout + res.stderr
    assert not [s for s in SECRETS if s in progress], f"{ex.name}: a secret value is in buildctl's output"


@pytest.mark.parametrize("name", NAMES)
def test_buildctl_dump_llb_matches_ours(name: str, examples: Dict[str, Example], buildctl_bin: Path) -> None:
    definition = _marshal(examples[name])
    data = definition.to_bytes()
    assert not [s for s in SECRETS if s in data], f"{name}: a secret value is in the definition"
    assert llb.load(data).to_bytes() == data
    assert _dump_llb(buildctl_bin, data) == llb.dump(definition)
    assert _dump_llb(buildctl_bin, data, "--dot") == llb.to_dot(definition)


@pytest.mark.parametrize("name", NAMES)
def test_example_solves_with_the_expected_filesystem(
    name: str, examples: Dict[str, Example], buildkitd_amd64: Buildkitd, tmp_path: Path
) -> None:
    ex = examples[name]
    data = _marshal(ex).to_bytes()
    _solve_and_verify(buildkitd_amd64, ex, data, tmp_path, "first")
    if ex.expect_second_solve:
        _solve_and_verify(buildkitd_amd64, ex, data, tmp_path, "second", second=True)


def test_cache_mount_example_persists_between_solves(examples: Dict[str, Example]) -> None:
    # The parametrized test above solves it twice; make sure the catalogue still asks for that.
    assert examples["cache_mount"].expect_second_solve


def test_example_solves_on_the_arm64_tls_worker(
    examples: Dict[str, Example], buildkitd_arm64_tls: Buildkitd, registry: Registry, tmp_path: Path
) -> None:
    ex = examples["run_env_cwd"]
    bb = llb.image(f"{registry.host}/busybox:latest")
    arch = bb.run(["/bin/sh", "-c", "uname -m > /out/arch"], mounts=[llb.bind("/out", llb.scratch())])
    both = dataclasses.replace(
        ex,
        name=f"{ex.name}@arm64",
        state=llb.merge([ex.state, arch.get_mount("/out")]),
        expect=ex.expect + (Expect("/arch", "file", content=b"aarch64\n"),),
    )
    definition = _marshal(both, "linux/arm64")
    assert {llb.format_platform(op.platform) for op in definition.ops if op.platform} == {"linux/arm64"}
    _solve_and_verify(buildkitd_arm64_tls, both, definition.to_bytes(), tmp_path, "arm64")
