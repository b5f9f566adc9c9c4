"""Regenerate the checked-in protobuf modules from the ``.proto`` files beside this file.

The ``.proto`` files are the project's own description of BuildKit's wire types (package names,
message names and field numbers match BuildKit v0.32). They import each other relative to ``src/``
(``import "llbkit/_proto/ops.proto";``) so that the generated modules import each other as
``llbkit._proto.<name>_pb2``. No ``*_pb2_grpc`` modules: they import grpc-python, which llbkit
does not use (``llbkit.buildkit.rpc`` makes its stubs and handlers from the service descriptors).

Run ``build-support/gen-protos.sh`` (which provides a pinned grpcio-tools) rather than this module
directly. ``generate(out_dir)`` is also used by the test that checks the generated code is current.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
SRC_ROOT = PROTO_DIR.parent.parent
PACKAGE_PATH = "llbkit/_proto"


def proto_files() -> list[str]:
    """The .proto files to compile, as paths relative to ``src/``, in a stable order."""
    return sorted(f"{PACKAGE_PATH}/{p.name}" for p in PROTO_DIR.glob("*.proto"))


def generate(out_root: Path) -> list[Path]:
    """Compile every .proto into ``out_root/llbkit/_proto`` and return the files written."""
    # A dev-only dependency, imported here so that the library never needs it.
    from grpc_tools import protoc  # pants: no-infer-dep
    import grpc_tools  # pants: no-infer-dep

    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    out_root.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{SRC_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        *proto_files(),
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    out_dir = out_root / PACKAGE_PATH
    return sorted(p for p in out_dir.iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi")))


def main() -> int:
    written = generate(SRC_ROOT)
    for path in written:
        print(path.relative_to(SRC_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
