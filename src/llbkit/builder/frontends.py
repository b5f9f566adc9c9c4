"""Which frontend builds a Dockerfile: BuildKit's own, or a custom one through the gateway.

::

    call = dockerfile_frontend(dockerfile_bytes, attrs, pins={"docker/dockerfile:1.7": "sha256:..."})

BuildKit's Dockerfile frontend reads a ``# syntax=IMAGE [ARGS]`` directive (or the
``BUILDKIT_SYNTAX`` build arg) and hands the build to that image through ``gateway.v0``, looking
the image up in its registry on every build. llbkit makes that hand-over itself, with the image
pinned by digest, so the frontend that runs is part of the content key: the call is
``gateway.v0`` with ``source=IMAGE@DIGEST``, ``cmdline`` the directive's value and the same
options otherwise, which is what BuildKit's forwarding passes (``forwardGateway`` in
``frontend/dockerfile/builder/build.go``). A field naming a frontend image is the same call
(:func:`gateway_frontend`).

The directive is found as BuildKit's parser finds it (``parser.DetectSyntax``): a byte-order
mark and a ``#!`` line are skipped; then leading ``# key=value`` directives (``//`` comments too,
or a JSON document's ``"syntax"`` key); only ``syntax``, ``escape`` and ``check`` are directives.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

from llbkit.builder.job import FrontendCall
from llbkit.errors import LlbkitError

__all__ = ["Syntax", "UnpinnedFrontendError", "detect_syntax", "dockerfile_frontend", "gateway_frontend", "named_input",
           "DOCKERFILE_FRONTEND", "GATEWAY_FRONTEND", "SYNTAX_BUILD_ARG"]

DOCKERFILE_FRONTEND = "dockerfile.v0"
GATEWAY_FRONTEND = "gateway.v0"
SYNTAX_BUILD_ARG = "build-arg:BUILDKIT_SYNTAX"
_DIRECTIVE = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_DIRECTIVES = ("syntax", "escape", "check")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


class UnpinnedFrontendError(LlbkitError):
    """A custom frontend image is named by tag only and no digest was given for it."""

    def __init__(self, image: str, where: str) -> None:
        super().__init__(f"{where}: the frontend image {image!r} is not pinned by digest: write it as "
                         f"{image}@sha256:<digest>, or lock it (the digest its tag names now) so that the "
                         "frontend that runs is part of what the image is cached by")
        self.image = image
        self.where = where


@dataclass(frozen=True)
class Syntax:
    """A ``# syntax=`` directive: the frontend ``image``, the whole ``cmdline`` and its 1-based line."""

    image: str
    cmdline: str
    line: int


def _directive_lines(text: str, comment: str, first_line: int) -> Optional[Syntax]:
    seen = set()
    for n, line in enumerate(text.split("\n"), start=first_line + 1):
        if not line.startswith(comment):
            return None
        m = _DIRECTIVE.match(line[len(comment):].lstrip())
        if not m or m.group(1).lower() not in _DIRECTIVES:
            return None
        key = m.group(1).lower()
        if key in seen:  # BuildKit refuses a second one; the frontend reports it
            return None
        seen.add(key)
        if key == "syntax":
            value = m.group(2)
            return Syntax(value.split(" ", 1)[0], value, n)
    return None


def detect_syntax(dockerfile: bytes) -> Optional[Syntax]:
    """The ``# syntax=`` directive of a Dockerfile, or ``None``."""
    text = dockerfile.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    first = 0
    if text.startswith("#!"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        first = 1
    text = text.replace("\r\n", "\n")
    for comment in ("#", "//"):
        found = _directive_lines(text, comment, first)
        if found is not None:
            return found
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("syntax"), str):
        return Syntax(doc["syntax"], doc["syntax"], first)
    return None


def _pinned(image: str, pins: Mapping[str, str], where: str) -> str:
    if _DIGEST.search(image):
        return image
    digest = pins.get(image)
    if not digest:
        raise UnpinnedFrontendError(image, where)
    return f"{image}@{digest}"


def gateway_frontend(image: str, attrs: Sequence[Tuple[str, str]] = (), inputs: Sequence[Tuple[str, bytes]] = (),
                     *, cmdline: Optional[str] = None, pins: Mapping[str, str] = {},
                     where: str = "frontend") -> FrontendCall:
    """A custom frontend image run through ``gateway.v0``, pinned by digest (in ``image``, or
    ``pins[image]``); ``cmdline`` is passed as BuildKit's forwarding passes it."""
    opts = dict(attrs)
    opts["source"] = _pinned(image, pins, where)
    if cmdline is not None:
        opts["cmdline"] = cmdline
    return FrontendCall(GATEWAY_FRONTEND, tuple(opts.items()), tuple(inputs))


def dockerfile_frontend(dockerfile: bytes, attrs: Sequence[Tuple[str, str]] = (),
                        inputs: Sequence[Tuple[str, bytes]] = (), *, pins: Mapping[str, str] = {},
                        filename: str = "Dockerfile") -> FrontendCall:
    """The frontend call that builds ``dockerfile`` with ``attrs``: BuildKit's Dockerfile
    frontend, or the custom frontend its ``BUILDKIT_SYNTAX`` build arg or ``# syntax=``
    directive names, pinned (:class:`UnpinnedFrontendError` when it cannot be)."""
    opts = dict(attrs)
    if SYNTAX_BUILD_ARG in opts:
        value = opts[SYNTAX_BUILD_ARG].strip()
        return gateway_frontend(value.split(" ", 1)[0], tuple(opts.items()), inputs, cmdline=opts[SYNTAX_BUILD_ARG],
                                pins=pins, where=f"the build arg BUILDKIT_SYNTAX")
    syntax = detect_syntax(dockerfile)
    if syntax is not None:
        return gateway_frontend(syntax.image, tuple(opts.items()), inputs, cmdline=syntax.cmdline, pins=pins,
                                where=f"{filename}:{syntax.line}: # syntax=")
    return FrontendCall(DOCKERFILE_FRONTEND, tuple(opts.items()), tuple(inputs))


def named_input(name: str, definition: bytes, config: Optional[bytes] = None) -> Tuple[Dict[str, str], Tuple[str, bytes]]:
    """A named context made of another image's LLB, composed directly (no registry): the frontend
    options (``context:NAME=input:NAME`` and, with the image's OCI ``config``,
    ``input-metadata:NAME``, whose ``containerimage.config`` the Dockerfile frontend inherits as
    it inherits a registry image's) and the input ``(NAME, definition)``. A Dockerfile's
    ``FROM NAME`` (or ``COPY --from=NAME``) then starts from that image."""
    opts = {f"context:{name}": f"input:{name}"}
    if config is not None:
        # Go's map[string][]byte as JSON: values in standard base64
        opts[f"input-metadata:{name}"] = json.dumps(
            {"containerimage.config": base64.b64encode(config).decode()}, separators=(",", ":"))
    return opts, (name, definition)
