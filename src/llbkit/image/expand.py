"""Docker's variable expansion (``$VAR``, ``${VAR}``, ``${VAR:-default}``...) for image spec values.

A Dockerfile expands variables in ``ENV``, ``WORKDIR``, ``USER`` and ``COPY`` destinations
against the environment accumulated so far (the base image's ``Env`` included); BuildKit's
shell lexer (``frontend/dockerfile/shell``) does it. :func:`expand` does the same for a spec
value, which is read as if it were written between double quotes in a Dockerfile:

- ``$NAME`` and ``${NAME}``: the value (empty when unset);
- ``${NAME:-word}`` / ``${NAME-word}``: ``word`` when unset or empty / when unset;
- ``${NAME:+word}`` / ``${NAME+word}``: ``word`` when set and non-empty / when set, else empty;
- ``${NAME:?message}`` / ``${NAME?message}``: an error when unset or empty / when unset;
- ``\\$`` is a literal ``$``, ``\\\\`` a literal backslash; a ``$`` not followed by a name or
  ``{`` is literal. ``word`` is expanded too.

Pattern forms (``${NAME#...}``, ``${NAME%...}``, ``${NAME/...}``) are refused: they are rare in
these places and an unsupported form is better reported than half-expanded.
"""

from __future__ import annotations

from typing import Mapping, Tuple

__all__ = ["ExpansionError", "expand"]


class ExpansionError(ValueError):
    """A value that cannot be expanded; ``str()`` says why (callers add the field and the fix)."""


def _name(s: str, i: int) -> Tuple[str, int]:
    """The variable name starting at ``s[i]`` (Docker's ``processName``) and the index after it."""
    if i < len(s) and s[i].isdigit():  # positional parameters are one digit
        return s[i], i + 1
    j = i
    while j < len(s) and (s[j].isalnum() or s[j] == "_") and s[j].isascii():
        j += 1
    return s[i:j], j


def _expand(s: str, i: int, env: Mapping[str, str], stop: str) -> Tuple[str, int]:
    """Expand from ``s[i]`` up to the unescaped ``stop`` character (``""``: the end of ``s``);
    return the text and the index of ``stop`` (or ``len(s)``)."""
    out = []
    while i < len(s):
        c = s[i]
        if stop and c == stop:
            return "".join(out), i
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "$\\\"" + stop:
            out.append(s[i + 1])
            i += 2
            continue
        if c != "$":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(s) or s[i] != "{":
            name, j = _name(s, i)
            if not name:
                out.append("$")
                continue
            out.append(env.get(name, ""))
            i = j
            continue
        i += 1  # past "{"
        if i >= len(s):
            raise ExpansionError("missing '}'")
        if s[i] in "{}:":
            raise ExpansionError("bad substitution")
        name, i = _name(s, i)
        if i >= len(s):
            raise ExpansionError("missing '}'")
        op = s[i]
        if op == "}":
            if not name:
                raise ExpansionError("bad substitution")
            out.append(env.get(name, ""))
            i += 1
            continue
        null_is_unset = op == ":"
        if null_is_unset:
            i += 1
            op = s[i] if i < len(s) else ""
        if not name or op not in "-+?" or not op:
            shown = ":" + op if null_is_unset else op
            raise ExpansionError(f"unsupported substitution '${{{name}{shown}...}}' "
                                 "(use ${NAME}, ${NAME:-default}, ${NAME:+value} or ${NAME:?message})")
        word, end = _expand(s, i + 1, env, "}")
        if end >= len(s):
            raise ExpansionError("missing '}'")
        i = end + 1
        value = env.get(name)
        empty = value is None or (null_is_unset and value == "")
        if op == "-":
            out.append(word if empty else (value or ""))
        elif op == "+":
            out.append("" if empty else word)
        else:
            if empty:
                what = "unset" if value is None else "empty"
                raise ExpansionError(f"{name}: {word or f'is not allowed to be {what}'}")
            out.append(value or "")
    if stop:
        return "".join(out), len(s)
    return "".join(out), i


def expand(value: str, env: Mapping[str, str]) -> str:
    """``value`` with its variables replaced from ``env`` (see the module's rules); raises
    :class:`ExpansionError` for a malformed or unsupported substitution, or a ``:?`` check."""
    text, _ = _expand(value, 0, env, "")
    return text
