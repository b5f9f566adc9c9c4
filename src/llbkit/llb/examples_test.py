from __future__ import annotations

import os

from llbkit import llb
from llbkit.llb import caps
from llbkit.testutil.llb_examples import SECRET_ENV_VALUE, SECRET_VALUE, Expect, Example, catalogue, verify_export

REGISTRY = "127.0.0.1:5000"


def test_catalogue_is_large_varied_and_marshals():
    exs = catalogue(REGISTRY)
    assert len(exs) >= 22
    assert len({e.name for e in exs}) == len(exs)
    kinds, mount_types, identifiers = set(), set(), set()
    for ex in exs:
        assert ex.description and ex.expect, ex.name
        d = ex.state.marshal("linux/amd64", local_unique_id="ctx")
        assert d.required_caps() <= caps.SUPPORTED_CAPS, ex.name
        data = d.to_bytes()
        assert SECRET_VALUE not in data and SECRET_ENV_VALUE not in data
        for op in d.ops:
            kinds.add(op.kind)
            if op.kind == "exec":
                mount_types.update(m.get("mountType", 0) for m in op.body["mounts"])
                if op.body.get("network"):
                    kinds.add("network:%d" % op.body["network"])
            if op.kind == "source":
                identifiers.add(op.body["identifier"].split("://")[0])
    assert {"source", "exec", "file", "merge", "diff", "network:2"} <= kinds
    assert {m.value for m in llb.MountType} - {llb.MountType.SSH.value} <= mount_types
    assert {"docker-image", "local"} <= identifiers
    assert any(f"docker-image://{REGISTRY}/busybox:latest" in op.body.get("identifier", "")
               for ex in exs for op in ex.state.marshal("linux/amd64").ops)


def test_catalogue_is_parametrized():
    # Determinism is checked across processes with different hash seeds in marshal_test.py.
    one = [e.state.marshal("linux/amd64").to_bytes() for e in catalogue(REGISTRY)]
    other = {e.name: e.state.marshal("linux/amd64").to_bytes() for e in catalogue("10.0.0.1:5001", cache_namespace="x")}
    assert other["network_none"] != dict(zip([e.name for e in catalogue(REGISTRY)], one))["network_none"]
    assert b"x-counter" in other["cache_mount"]


def _write(root, rel, data, mode=0o644):
    p = os.path.join(root, rel.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)


def test_verify_export(tmp_path):
    ex = Example(
        "t",
        "test",
        llb.scratch(),
        (
            Expect("/a/f", content=b"x", mode=0o640),
            Expect("/a/g", contains=b"needle"),
            Expect("/l", "symlink", target="a/f"),
            Expect("/gone", "absent"),
            Expect("/d", "dir"),
        ),
        exact=True,
    )
    root = str(tmp_path)
    _write(root, "/a/f", b"x", 0o640)
    _write(root, "/a/g", b"hay needle hay")
    os.symlink("a/f", os.path.join(root, "l"))
    os.mkdir(os.path.join(root, "d"))
    assert verify_export(ex, tmp_path, check_owners=False) == []
    _write(root, "/gone", b"")
    _write(root, "/extra/x", b"")
    os.chmod(os.path.join(root, "a/f"), 0o600)
    problems = verify_export(ex, tmp_path, check_owners=False)
    assert "t: /gone: should not exist" in problems
    assert "t: /a/f: mode 0o600, want 0o640" in problems
    assert "t: unexpected /extra" in problems and "t: unexpected /extra/x" in problems


def test_every_example_is_checkable_on_a_synthetic_export(tmp_path):
    """Write what each example expects and check verify_export accepts it (the checks agree with
    themselves; the integration test checks them against buildkitd)."""
    for ex in catalogue(REGISTRY):
        root = tmp_path / ex.name
        root.mkdir()
        for e in ex.expect:
            p = root / e.path.lstrip("/")
            if e.kind == "file":
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(e.content if e.content is not None else (e.contains or b""))
                if e.mode is not None:
                    os.chmod(p, e.mode)
                if e.mtime is not None:
                    os.utime(p, (e.mtime, e.mtime))
            elif e.kind == "dir":
                p.mkdir(parents=True, exist_ok=True)
                if e.mode is not None:
                    os.chmod(p, e.mode)
            elif e.kind == "symlink":
                p.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(e.target, p)
        assert verify_export(ex, root, check_owners=False) == [], ex.name
