from __future__ import annotations

import pytest

from llbkit.buildkit.session.patterns import PatternError, PatternMatcher, go_clean


@pytest.mark.parametrize(
    "path,clean",
    [("", "."), ("a//b/./c/..", "a/b"), ("/../x", "/x"), ("../../a", "../../a"), ("./", "."), ("a/", "a")],
)
def test_go_clean(path, clean):
    assert go_clean(path) == clean


@pytest.mark.parametrize(
    "patterns,path,matched",
    [
        (["foo"], "foo", True),
        (["foo"], "foo/bar/baz", True),  # below a matched dir
        (["foo"], "foobar", False),
        (["*.txt"], "a.txt", True),
        (["*.txt"], "d/a.txt", False),  # * stops at /
        (["**/*.txt"], "d/e/a.txt", True),
        (["**/*.txt"], "a.txt", True),
        (["a/**"], "a/b/c", True),
        (["a/**/z"], "a/z", True),
        (["a/**/z"], "a/b/c/z", True),
        (["?.md"], "x.md", True),
        (["?.md"], "xy.md", False),
        (["[ab].c"], "b.c", True),
        (["[^ab].c"], "b.c", False),
        (["[^ab].c"], "x.c", True),
        (["a.b"], "axb", False),  # regexp metacharacters are literal
        (["*", "!keep"], "keep", False),
        (["*", "!keep"], "drop", True),
        (["*", "!keep", "keep"], "keep", True),
        (["/abs"], "abs", False),  # cleaned, not stripped: matches only "/abs"
        (["  spaced  "], "spaced", True),
        (["a\\*b"], "a*b", True),
        (["a\\*b"], "axb", False),
    ],
)
def test_matches(patterns, path, matched):
    pm = PatternMatcher(patterns)
    assert pm.matches_or_parent_matches(path) is matched
    # walking from the root with parent results gives the same answer
    parts = path.split("/")
    info = None
    for i in range(len(parts)):
        sub = "/".join(parts[: i + 1])
        m, info = pm.matches_using_parent_results(sub, info) if info else pm.matches_using_parent_results(sub)
    assert m is matched


def test_bad_patterns():
    with pytest.raises(PatternError):
        PatternMatcher(["!"])
    with pytest.raises(PatternError):
        PatternMatcher(["[a"])
    assert PatternMatcher(["", "  "]).patterns == []
