"""Run inside the parser's PEX: print BuildKit's parse tree of each Dockerfile as JSON.

The `dockerfile` package (the one Pants' docker backend uses) wraps BuildKit's own Go parser;
this script only turns its `Command`s into JSON, so all interpretation (stages, ARG expansion,
COPY sources) is plain Python in `model.py`, unit-tested without a PEX. A parse error is
reported as data (`{"path": ..., "error": ...}`), never a traceback.
"""

import json
import sys


def main(paths):
    from dockerfile import GoParseError, parse_file  # pants: no-infer-dep

    out = []
    for path in paths:
        try:
            commands = parse_file(path)
        except GoParseError as e:
            out.append({"path": path, "error": str(e)})
            continue
        out.append({"path": path, "commands": [
            {"cmd": c.cmd, "sub_cmd": c.sub_cmd, "json": c.json, "original": c.original,
             "start_line": c.start_line, "end_line": c.end_line, "flags": list(c.flags), "value": list(c.value)}
            for c in commands]})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
