from __future__ import annotations

import pytest

from llbkit.image.expand import ExpansionError, expand

ENV = {"PATH": "/usr/bin:/bin", "EMPTY": "", "APP": "app"}


@pytest.mark.parametrize("value, expected", [
    ("/opt/bin:$PATH", "/opt/bin:/usr/bin:/bin"),
    ("${APP}-x", "app-x"),
    ("$APP.x", "app.x"),
    ("$NOPE", ""),
    ("${NOPE:-d}", "d"),
    ("${EMPTY:-d}", "d"),
    ("${EMPTY-d}", ""),
    ("${NOPE-d}", "d"),
    ("${APP:+yes}", "yes"),
    ("${EMPTY:+yes}", ""),
    ("${EMPTY+yes}", "yes"),
    ("${NOPE:-$APP/x}", "app/x"),
    ("${APP:?}", "app"),
    ("\\$APP", "$APP"),
    ("a\\\\b", "a\\b"),
    ("a\\b", "a\\b"),
    ("cost: 5$", "cost: 5$"),
    ("$-x", "$-x"),
    ("$1x", "x"),
])
def test_expands_as_dockerfile_env(value: str, expected: str) -> None:
    assert expand(value, ENV) == expected


@pytest.mark.parametrize("value, reason", [
    ("${APP", "missing '}'"),
    ("${}", "bad substitution"),
    ("${:-x}", "bad substitution"),
    ("${APP#a}", "unsupported substitution"),
    ("${APP/a/b}", "unsupported substitution"),
    ("${NOPE:?set it}", "NOPE: set it"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ("${NOPE?}", "NOPE: is not allowed to be unset"),
    ("${NOPE:-x", "missing '}'"),
])
def test_malformed_or_failing_substitutions_say_why(value: str, reason: str) -> None:
    with pytest.raises(ExpansionError, match="^" + reason.replace("$", "\\$").replace("{", "\\{")):
        expand(value, ENV)
