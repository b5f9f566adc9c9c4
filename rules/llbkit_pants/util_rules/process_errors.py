"""What a build process (`llbkit.builder.process`) said on stderr: its scheduling events, its
BuildKit log, and, when it failed, its typed error (`[llbkit-error] {"kind", "message", ...}`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple


def _prefixes() -> Tuple[str, str]:
    # The build process's own constants, imported here rather than when the plugin loads (the
    # `llbkit.builder` package brings the whole client with it).
    from llbkit.builder.process import ERROR_PREFIX, EVENT_PREFIX

    return ERROR_PREFIX, EVENT_PREFIX


@dataclass(frozen=True)
class ProcessFailure:
    kind: str
    message: str
    fields: Dict[str, Any] = field(default_factory=dict)


def _lines(stderr: bytes) -> List[str]:
    return stderr.decode(errors="replace").splitlines()


def events(stderr: bytes) -> Tuple[str, ...]:
    """The scheduling events, one line each (which worker builds which platform, retries...)."""
    _, EVENT_PREFIX = _prefixes()
    return tuple(line[len(EVENT_PREFIX):] for line in _lines(stderr) if line.startswith(EVENT_PREFIX))


def build_log(stderr: bytes) -> str:
    """Everything else on stderr: BuildKit's step log (with `progress = "plain"`)."""
    ERROR_PREFIX, EVENT_PREFIX = _prefixes()
    return "\n".join(line for line in _lines(stderr)
                     if not line.startswith(EVENT_PREFIX) and not line.startswith(ERROR_PREFIX))


def process_failure(result: Any) -> ProcessFailure:
    """The failure of a `FallibleProcessResult` with a non-zero exit code."""
    ERROR_PREFIX, _ = _prefixes()
    for line in reversed(_lines(result.stderr)):
        if line.startswith(ERROR_PREFIX):
            try:
                doc = json.loads(line[len(ERROR_PREFIX):])
                kind, message = str(doc.pop("kind")), str(doc.pop("message"))
                return ProcessFailure(kind, message, doc)
            except (ValueError, KeyError, AttributeError):
                break
    # No typed error: the process died (killed, out of memory) or crashed at start-up.
    tail = "\n".join(_lines(result.stderr)[-20:]).strip()
    return ProcessFailure("crashed", f"the build process exited with code {result.exit_code}"
                          + (f":\n{tail}" if tail else " and printed nothing"))
