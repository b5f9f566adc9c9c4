"""Walk a local directory the way fsutil does before sending it: order, filters, follow paths.

Order: depth first, a directory before its contents, names sorted by bytes in each directory.
That is the order fsutil's receiver validates (``changes out of order`` otherwise).

Filters have fsutil's ``FilterFS`` semantics: with include patterns, only matched paths (and
everything below a matched directory) are kept, plus the parent directories of kept paths, sent
just before their first kept child; exclude patterns then drop paths (``!`` re-includes). Follow
paths name symlinks to resolve: their targets are added to the include patterns.
"""

from __future__ import annotations

import os
import stat as _stat
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from llbkit._proto import fsutil_types_pb2 as fpb
from llbkit.buildkit.session.patterns import MatchInfo, PatternMatcher, go_clean
from llbkit.buildkit.session.stat import make_stat
from llbkit.errors import SessionError

__all__ = ["Entry", "walk", "follow_links", "FilterOptions"]

_PATTERN_CHARS = "*[]?^\\"


@dataclass(frozen=True)
class FilterOptions:
    """Include / exclude patterns and follow paths (``None`` = no filter of that kind)."""

    include: Optional[Sequence[str]] = None
    exclude: Optional[Sequence[str]] = None
    follow: Optional[Sequence[str]] = None

    def is_empty(self) -> bool:
        return not self.include and not self.exclude and not self.follow


@dataclass
class Entry:
    """One walked path: ``path`` relative with ``/``; ``abs_path`` on disk; ``stat`` as sent."""

    path: str
    abs_path: str
    is_dir: bool
    stat: "fpb.Stat"


class _Skip(Exception):
    """Skip the rest of the current directory (Go's filepath.SkipDir)."""


@dataclass
class _Node:
    path: str
    abs_path: str
    st: os.stat_result
    skip: bool = False

    @property
    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self.st.st_mode)


def _sorted_names(abs_dir: str) -> List[str]:
    return sorted(os.listdir(abs_dir), key=os.fsencode)


def _base_walk(root: str) -> Iterator[_Node]:
    """Every path under ``root`` (not root itself), parents first, names sorted by bytes.

    Set ``node.skip`` before asking for the next node to skip a directory's contents.
    """
    stack: List[Iterator[_Node]] = [_children(root, "")]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            continue
        yield node
        if node.is_dir and not node.skip:
            stack.append(_children(node.abs_path, node.path))


def _children(abs_dir: str, rel_dir: str) -> Iterator[_Node]:
    try:
        names = _sorted_names(abs_dir)
    except FileNotFoundError:
        return
    for name in names:
        abs_path = os.path.join(abs_dir, name)
        try:
            st = os.lstat(abs_path)
        except FileNotFoundError:
            continue
        yield _Node(f"{rel_dir}/{name}" if rel_dir else name, abs_path, st)


def follow_links(root: str, paths: Sequence[str]) -> Optional[List[str]]:
    """The include patterns that follow paths add: each path with its symlinks resolved.

    Symlinks resolve inside ``root`` (an absolute target is taken relative to it). Returns None
    when a resolved path is the root itself (then nothing is filtered).
    """
    resolved: Set[str] = set()

    def read_symlink(p: str, allow_wildcard: bool) -> Optional[List[str]]:
        base = p.rsplit("/", 1)[-1]
        parent = p.rsplit("/", 1)[0] if "/" in p else "."
        if allow_wildcard and _contains_wildcards(base):
            try:
                names = _sorted_names(os.path.join(root, parent))
            except (FileNotFoundError, NotADirectoryError):
                return None
            matcher = PatternMatcher([base])
            out: List[str] = []
            for name in names:
                if matcher.patterns and matcher.patterns[0].match(name):
                    child = name if parent == "." else f"{parent}/{name}"
                    res = read_symlink(child, False)
                    if res:
                        out.extend(res)
            return out
        if p in (".", "/"):
            return None
        try:
            st = os.lstat(os.path.join(root, p))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not _stat.S_ISLNK(st.st_mode):
            return None
        link = go_clean(os.readlink(os.path.join(root, p)))
        if link.startswith("/"):
            return [link]
        return [go_clean("/" + go_clean(f"{parent}/{link}"))]

    def append(p: str) -> None:
        p = go_clean("./" + p.lstrip("/")) if p.startswith("/") else go_clean(p)
        current = "."
        while True:
            parts = p.split("/", 1)
            current = go_clean(f"{current}/{parts[0]}")
            targets = read_symlink(current, True)
            p = parts[1] if len(parts) == 2 else ""
            if (p == "" or targets is not None) and current in resolved:
                return
            if targets is not None:
                resolved.add(current)
                for target in targets:
                    append(go_clean(f"{target}/{p}") if p else target)
                return
            if p == "":
                resolved.add(current)
                return

    for path in paths:
        append(path)
    return _dedupe(sorted(resolved))


def _contains_wildcards(name: str) -> bool:
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "\\":
            i += 1
        elif ch in "*?[":
            return True
        i += 1
    return False


def _dedupe(paths: List[str]) -> Optional[List[str]]:
    out: List[str] = []
    last = None
    for s in paths:
        if s == ".":
            return None
        if last is not None and s.startswith(last + "/"):
            continue
        out.append(s)
        last = s
    return out


@dataclass
class _Visited:
    node: _Node
    path_with_sep: str
    include_info: MatchInfo = MatchInfo()
    exclude_info: MatchInfo = MatchInfo()
    called: bool = False


@dataclass
class _Filter:
    include: Optional[PatternMatcher]
    exclude: Optional[PatternMatcher]
    only_prefix_includes: bool = True
    only_prefix_exclude_exceptions: bool = True
    parents: List[_Visited] = field(default_factory=list)


def _make_filter(root: str, opts: FilterOptions) -> Optional[_Filter]:
    include_patterns: Optional[List[str]] = list(opts.include) if opts.include is not None else None
    if opts.follow is not None:
        targets = follow_links(root, list(opts.follow))
        if targets is not None:
            include_patterns = _dedupe((include_patterns or []) + targets)
    include = PatternMatcher(include_patterns) if include_patterns else None
    exclude = PatternMatcher(list(opts.exclude)) if opts.exclude else None
    if include is None and exclude is None:
        return None
    f = _Filter(include, exclude)
    if include is not None:
        f.only_prefix_includes = not any(
            not p.exclusion and any(c in p.without_trailing_glob() for c in _PATTERN_CHARS)
            for p in include.patterns
        )
    if exclude is not None:
        f.only_prefix_exclude_exceptions = not any(
            p.exclusion and any(c in p.without_trailing_glob() for c in _PATTERN_CHARS)
            for p in exclude.patterns
        )
    return f


def _walk_nodes(root: str, layers: Sequence[FilterOptions]) -> Iterator[_Node]:
    """The nodes kept by every filter layer, in order, lazily."""
    filters = [f for f in (_make_filter(root, o) for o in layers) if f is not None]
    out: List[_Node] = []

    def emit_through(level: int, node: _Node) -> Optional[bool]:
        if level == len(filters):
            out.append(node)
            return None
        return _filter_visit(filters[level], node, lambda n: emit_through(level + 1, n))

    for node in _base_walk(root):
        node.skip = bool(emit_through(0, node))
        yield from out
        out.clear()


def _filter_visit(f: _Filter, node: _Node, fn: Callable[[_Node], Optional[bool]]) -> bool:
    """One step of fsutil's FilterFS walk; returns True to skip the node's contents."""
    path = node.path
    is_dir = node.is_dir
    while f.parents and not path.startswith(f.parents[-1].path_with_sep):
        f.parents.pop()
    visited = _Visited(node, path + "/") if is_dir else None
    skip = False
    if f.include is not None:
        parent_info = f.parents[-1].include_info if f.parents else MatchInfo()
        m, info = f.include.matches_using_parent_results(path, parent_info)
        if visited is not None:
            visited.include_info = info
        if not m:
            if is_dir and f.only_prefix_includes:
                dir_slash = path + "/"
                if not any(
                    (p.without_trailing_glob() + "/").startswith(dir_slash)
                    for p in f.include.patterns
                    if not p.exclusion
                ):
                    return True
            skip = True
    if f.exclude is not None:
        parent_info = f.parents[-1].exclude_info if f.parents else MatchInfo()
        m, info = f.exclude.matches_using_parent_results(path, parent_info)
        if visited is not None:
            visited.exclude_info = info
        if m:
            if is_dir and f.only_prefix_exclude_exceptions:
                if not f.exclude.exclusions:
                    return True
                dir_slash = path + "/"
                if not any(
                    (p.without_trailing_glob() + "/").startswith(dir_slash)
                    for p in f.exclude.patterns
                    if p.exclusion
                ):
                    return True
            skip = True
    if skip:
        if visited is not None:
            f.parents.append(visited)
        return False
    if visited is not None:
        visited.called = True
    for parent in f.parents:
        if parent.called:
            continue
        parent.called = True
        if fn(parent.node):
            # a layer below skipped this parent: skip everything under it too
            if visited is not None:
                f.parents.append(visited)
            return True
    result = bool(fn(node))
    if visited is not None:
        f.parents.append(visited)
    return result


def walk(
    root: str,
    layers: Sequence[FilterOptions] = (),
    *,
    xattrs: bool = True,
) -> Iterator[Entry]:
    """Entries under ``root`` in fsutil's order, filtered by each layer of options in turn.

    Raises :class:`SessionError` when ``root`` is not a directory. Hardlinked files after the
    first one kept are sent as links to it.
    """
    root = os.path.realpath(root)
    if not os.path.isdir(root):
        raise SessionError(f"local directory {root!r} does not exist or is not a directory")
    hardlinks: Dict[Tuple[int, int], str] = {}
    for node in _walk_nodes(root, layers):
        st = make_stat(node.abs_path, node.path, node.st, hardlinks, xattrs=xattrs)
        yield Entry(node.path, node.abs_path, node.is_dir, st)
