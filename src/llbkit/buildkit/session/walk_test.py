from __future__ import annotations

import os
from pathlib import Path
from typing import List, Sequence

import pytest

from llbkit.buildkit.session.walk import FilterOptions, follow_links, walk
from llbkit.errors import SessionError


def _tree(root: Path, paths: Sequence[str]) -> Path:
    for p in paths:
        full = root / p
        if p.endswith("/"):
            full.mkdir(parents=True, exist_ok=True)
        else:
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_text(p)
    return root


def _paths(root: Path, *layers: FilterOptions) -> List[str]:
    return [e.path for e in walk(str(root), layers)]


def test_order_is_fsutils(tmp_path):
    _tree(tmp_path, ["a-b", "a/b", "a/c/d", "B", "a.txt", "z/"])
    # a directory comes right before its contents; names in byte order ("B" < "a")
    assert _paths(tmp_path) == ["B", "a", "a/b", "a/c", "a/c/d", "a-b", "a.txt", "z"]


def test_include_keeps_parents_of_matches(tmp_path):
    _tree(tmp_path, ["src/app/main.py", "src/app/x.pyc", "src/other.txt", "docs/readme"])
    assert _paths(tmp_path, FilterOptions(include=["src/app"])) == [
        "src", "src/app", "src/app/main.py", "src/app/x.pyc"
    ]
    assert _paths(tmp_path, FilterOptions(include=["**/*.py"])) == ["src", "src/app", "src/app/main.py"]


def test_exclude_with_exception(tmp_path):
    _tree(tmp_path, ["a/keep.txt", "a/drop.txt", "b/x", "c.log"])
    opts = FilterOptions(exclude=["a", "!a/keep.txt", "*.log"])
    assert _paths(tmp_path, opts) == ["a", "a/keep.txt", "b", "b/x"]
    assert _paths(tmp_path, FilterOptions(exclude=["a", "b"])) == ["c.log"]


def test_layers_apply_in_turn(tmp_path):
    _tree(tmp_path, ["a/x.txt", "a/y.md", "b/z.txt"])
    client = FilterOptions(exclude=["*/*.md"])
    daemon = FilterOptions(include=["a"])
    assert _paths(tmp_path, client, daemon) == ["a", "a/x.txt"]


def test_follow_paths_resolve_symlinks(tmp_path):
    _tree(tmp_path, ["real/f", "other/g", "unrelated"])
    os.symlink("real", tmp_path / "link")
    os.symlink("/other/g", tmp_path / "abs")  # absolute: inside the root
    assert follow_links(str(tmp_path), ["link/f"]) == ["link", "real/f"]
    assert follow_links(str(tmp_path), ["abs"]) == ["abs", "other/g"]
    # a wildcard stays as a pattern, plus the targets of the symlinks it matches
    assert follow_links(str(tmp_path), ["l*"]) == ["l*", "real"]
    assert follow_links(str(tmp_path), ["."]) is None
    assert _paths(tmp_path, FilterOptions(follow=["link"])) == ["link", "real", "real/f"]


def test_hardlinks_point_at_the_first_kept_path(tmp_path):
    _tree(tmp_path, ["a", "skip/"])
    os.link(tmp_path / "a", tmp_path / "b")
    os.link(tmp_path / "a", tmp_path / "skip/c")
    entries = {e.path: e.stat for e in walk(str(tmp_path))}
    assert entries["a"].linkname == "" and entries["b"].linkname == "a"
    entries = {e.path: e.stat for e in walk(str(tmp_path), [FilterOptions(exclude=["a"])])}
    assert entries["b"].linkname == "" and entries["skip/c"].linkname == "b"


def test_missing_root(tmp_path):
    with pytest.raises(SessionError, match="does not exist"):
        list(walk(str(tmp_path / "nope")))
