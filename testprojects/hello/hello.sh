#!/bin/sh
# The hello image's entrypoint: shows its config fields and what its run step wrote.
set -eu
[ "${1:-}" = "--config" ] || { echo "usage: hello --config FILE" >&2; exit 2; }
echo "$GREETING: $(cat /app/hello.txt)"
echo "cwd=$(pwd) port=$PORT"
echo "config: $(tr '\n' ' ' < "$2")"
cat /app/build-info
