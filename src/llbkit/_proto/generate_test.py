"""The checked-in generated modules are exactly what the .proto files beside them produce."""

from __future__ import annotations

from pathlib import Path

import pytest

from llbkit._proto import generate

PINNED_GRPCIO_TOOLS = "1.74.0"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi")
HOW_TO_FIX = "run build-support/gen-protos.sh and check in the result"


def _generated_files(directory: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in directory.iterdir() if p.name.endswith(GENERATED_SUFFIXES)
    }


def _require_pinned_grpcio_tools() -> None:
    # grpcio-tools is a dev requirement: a missing or different version is a broken dev setup,
    # not a reason to skip (the generated code would silently go stale).
    try:
        from grpc_tools import grpc_version
    except ImportError as e:
        pytest.fail(f"grpcio-tools=={PINNED_GRPCIO_TOOLS} (a dev requirement) is not importable: {e}")
    if grpc_version.VERSION != PINNED_GRPCIO_TOOLS:
        pytest.fail(
            f"grpcio-tools {grpc_version.VERSION} is installed but the checked-in code is generated "
            f"with {PINNED_GRPCIO_TOOLS}; install that version (build-support/gen-protos.sh does)"
        )


def test_every_proto_has_its_two_generated_modules() -> None:
    stems = {Path(p).stem for p in generate.proto_files()}
    expected = {f"{stem}{suffix}" for stem in stems for suffix in GENERATED_SUFFIXES}
    present = set(_generated_files(generate.PROTO_DIR))
    missing, orphaned = sorted(expected - present), sorted(present - expected)
    assert not missing, f"generated modules missing: {missing}; {HOW_TO_FIX}"
    assert not orphaned, f"generated modules without a .proto (delete them): {orphaned}"


def test_regeneration_changes_nothing(tmp_path: Path) -> None:
    _require_pinned_grpcio_tools()
    generate.generate(tmp_path)
    fresh = _generated_files(tmp_path / generate.PACKAGE_PATH)
    checked_in = _generated_files(generate.PROTO_DIR)

    missing = sorted(set(fresh) - set(checked_in))
    extra = sorted(set(checked_in) - set(fresh))
    stale = sorted(name for name in set(fresh) & set(checked_in) if fresh[name] != checked_in[name])
    assert not (missing or extra or stale), (
        f"generated code is out of date (missing: {missing}, extra: {extra}, stale: {stale}); "
        + HOW_TO_FIX
    )
