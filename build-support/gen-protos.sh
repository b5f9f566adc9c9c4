#!/usr/bin/env bash
# Regenerate src/llbkit/_proto/*_pb2*.py from the .proto files there, with a pinned grpcio-tools.
# grpcio-tools 1.74.0 bundles protoc for protobuf 6.31.1: the generated code then runs on the
# protobuf 6.33.6 runtime that Pants 2.17's plugin resolve allows, and on newer runtimes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cache="${LLBKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llbkit}"
venv="$cache/protogen-venv-grpcio-tools-1.74.0"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  PIP_CONFIG_FILE=/dev/null "$venv/bin/pip" install --quiet "grpcio-tools==1.74.0"
fi
cd "$root/src"
PYTHONPATH="$root/src" exec "$venv/bin/python" -m llbkit._proto.generate
