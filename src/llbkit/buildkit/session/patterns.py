"""Path patterns with the semantics of BuildKit's include/exclude filters (moby/patternmatcher).

Pure functions, no IO. A pattern list is evaluated in order: a path is matched when the last
pattern that applies to it is a plain pattern, not an exclusion (``!pattern``). A pattern also
matches every path below a directory it matches (``foo`` matches ``foo/bar``).

Pattern syntax: ``*`` any run of non-separator characters, ``?`` one non-separator character,
``[...]`` a character class, ``**`` any number of directories (``**/x``, ``a/**``, ``a/**/b``),
``\\`` escapes the next character. Patterns and paths use ``/`` and are relative to the root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from llbkit.errors import SessionError

__all__ = ["PatternError", "Pattern", "PatternMatcher", "MatchInfo", "go_clean"]


class PatternError(SessionError, ValueError):
    """An include, exclude or follow pattern that cannot be parsed."""


def go_clean(path: str) -> str:
    """Go's ``path.Clean``: collapse ``//``, ``.`` and ``..``; ``""`` becomes ``"."``."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: List[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(comp)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def _go_match_syntax_ok(pattern: str) -> bool:
    """Whether Go's ``filepath.Match`` accepts the pattern (it rejects bad ``[...]`` and ``\\``)."""
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                return False
            i += 2
            continue
        if ch == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            first = True
            while True:
                if i >= n:
                    return False
                if pattern[i] == "]" and not first:
                    i += 1
                    break
                first = False
                lo = pattern[i]
                if lo == "\\":
                    i += 1
                    if i >= n:
                        return False
                elif lo in "-":
                    return False
                i += 1
                if i < n and pattern[i] == "-":
                    i += 1
                    if i >= n:
                        return False
                    if pattern[i] == "\\":
                        i += 1
                        if i >= n:
                            return False
                    elif pattern[i] in "]-":
                        return False
                    i += 1
            continue
        if ch == "]":
            return False
        i += 1
    return True


_REGEX_ESCAPE = set(".+()|{}$")


@dataclass
class Pattern:
    """One compiled pattern; ``exclusion`` for a ``!pattern``."""

    cleaned: str
    exclusion: bool
    _kind: str = field(default="", repr=False)  # exact | prefix | suffix | regexp
    _regex: Optional["re.Pattern[str]"] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._compile()

    @property
    def dirs(self) -> List[str]:
        return self.cleaned.split("/")

    def _compile(self) -> None:
        reg = "^"
        kind = "exact"
        p = self.cleaned
        i, n = 0, len(p)
        index = 0
        while i < n:
            ch = p[i]
            i += 1
            if ch == "*":
                if i < n and p[i] == "*":
                    i += 1
                    if i < n and p[i] == "/":  # "**/" is the same as "**"
                        i += 1
                    if i >= n:  # trailing "**": everything below
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            reg += ".*"
                            kind = "regexp"
                    else:
                        reg += "(.*/)?"
                        kind = "regexp"
                    if index == 0:
                        kind = "suffix"
                else:
                    reg += "[^/]*"
                    kind = "regexp"
            elif ch == "?":
                reg += "[^/]"
                kind = "regexp"
            elif ch in _REGEX_ESCAPE:
                reg += "\\" + ch
            elif ch == "\\":
                if i < n:
                    reg += "\\" + p[i]
                    i += 1
                    kind = "regexp"
                else:
                    reg += "\\\\"
            elif ch in "[]":
                reg += ch
                kind = "regexp"
            else:
                reg += ch
            index += 1
        if kind == "regexp":
            try:
                self._regex = re.compile(reg + r"\Z")
            except re.error as e:
                raise PatternError(f"invalid pattern {self.cleaned!r}: {e}") from None
        self._kind = kind

    def match(self, path: str) -> bool:
        """Whether ``path`` itself (not its parents) matches."""
        kind = self._kind
        if kind == "exact":
            return path == self.cleaned
        if kind == "prefix":
            return path.startswith(self.cleaned[:-2])
        if kind == "suffix":
            suffix = self.cleaned[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self._regex is not None
        return self._regex.match(path) is not None

    def without_trailing_glob(self) -> str:
        s = self.cleaned
        if s.endswith("/**"):
            s = s[:-3]
        if s.endswith("/*"):
            s = s[:-2]
        return s

    def __str__(self) -> str:
        return ("!" if self.exclusion else "") + self.cleaned


@dataclass(frozen=True)
class MatchInfo:
    """Per-pattern match results of a directory, reused when matching its children."""

    parent_matched: Tuple[bool, ...] = ()


class PatternMatcher:
    """An ordered list of patterns (``!`` marks an exclusion)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns: List[Pattern] = []
        self.exclusions = False
        for raw in patterns:
            p = raw.strip()
            if not p:
                continue
            p = go_clean(p)
            exclusion = False
            if p[0] == "!":
                if len(p) == 1:
                    raise PatternError('illegal exclusion pattern: "!"')
                exclusion = True
                p = p[1:]
                self.exclusions = True
            if not _go_match_syntax_ok(p):
                raise PatternError(f"invalid pattern {raw!r}: syntax error in pattern")
            self.patterns.append(Pattern(p, exclusion))

    def matches_or_parent_matches(self, path: str) -> bool:
        """Whether ``path`` or one of its parent directories is matched."""
        matched = False
        parent = _dirname(path)
        parent_dirs = parent.split("/")
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            match = pattern.match(path)
            if not match and parent != ".":
                for i in range(len(parent_dirs)):
                    if pattern.match("/".join(parent_dirs[: i + 1])):
                        match = True
                        break
            if match:
                matched = not pattern.exclusion
        return matched

    def matches_using_parent_results(
        self, path: str, parent_info: MatchInfo = MatchInfo()
    ) -> Tuple[bool, MatchInfo]:
        """Like :meth:`matches_or_parent_matches`, reusing the parent directory's results."""
        parent_matched = parent_info.parent_matched
        if parent_matched and len(parent_matched) != len(self.patterns):
            raise PatternError("wrong number of values in parent match info")
        matched = False
        results = [False] * len(self.patterns)
        for i, pattern in enumerate(self.patterns):
            match = bool(parent_matched) and parent_matched[i]
            if not match:
                if pattern.exclusion != matched:
                    continue
                match = pattern.match(path)
                if not match and not parent_matched:
                    parent = _dirname(path)
                    if parent != ".":
                        parent_dirs = parent.split("/")
                        for j in range(len(parent_dirs)):
                            if pattern.match("/".join(parent_dirs[: j + 1])):
                                match = True
                                break
            results[i] = match
            if match:
                matched = not pattern.exclusion
        return matched, MatchInfo(tuple(results))


def _dirname(path: str) -> str:
    """Go's ``filepath.Dir`` for a relative, clean path."""
    i = path.rfind("/")
    if i < 0:
        return "."
    return go_clean(path[:i]) if i > 0 else "/"
