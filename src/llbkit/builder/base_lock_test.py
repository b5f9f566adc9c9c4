from __future__ import annotations

import json

import pytest

from llbkit.builder.base_lock import SCHEMA, BaseLock, BaseLockError, LockedBase, LockedPlatform, merge_requests

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def _lock() -> BaseLock:
    return BaseLock("container-images", (
        LockedBase("registry.example.com/library/python:3.12", D1,
                   (LockedPlatform("linux/arm64", D2, D3), LockedPlatform("linux/amd64", D3, D2))),
        LockedBase("docker.io/library/busybox:1.36", D2, (LockedPlatform("linux/amd64", D1, D3),)),
    ))


def test_render_parse_round_trip_and_stable_order() -> None:
    text = _lock().render("pants generate-lockfiles --resolve=container-images")
    assert text.startswith("// ")
    assert "//    pants generate-lockfiles --resolve=container-images\n" in text
    parsed = BaseLock.parse(text, "x.lock")
    assert parsed.resolve == "container-images"
    assert [b.reference for b in parsed.bases] == ["docker.io/library/busybox:1.36",
                                                    "registry.example.com/library/python:3.12"]
    py = parsed.get("registry.example.com/library/python:3.12")
    assert py is not None and [p.platform for p in py.platforms] == ["linux/amd64", "linux/arm64"]
    # Rendering the parsed lock gives the same bytes: a regenerated lock differs only where a tag moved.
    assert parsed.render("pants generate-lockfiles --resolve=container-images") == text
    body = json.loads("\n".join(line for line in text.splitlines() if not line.startswith("//")))
    assert body["schema"] == SCHEMA
    assert list(body["bases"][0]) == ["reference", "digest", "platforms"]


def test_lookup_pins_and_matches_platform_spellings() -> None:
    entry = _lock().get("registry.example.com/library/python:3.12")
    assert entry is not None
    assert entry.pinned() == f"registry.example.com/library/python:3.12@{D1}"
    assert entry.platform("linux/arm64/v8") == LockedPlatform("linux/arm64", D2, D3)
    assert entry.platform("linux/x86_64") == LockedPlatform("linux/amd64", D3, D2)
    assert entry.platform("linux/s390x") is None
    assert _lock().get("docker.io/library/busybox:latest") is None


@pytest.mark.parametrize("text, problem", [
    ("// header only\n", "not valid JSON"),
    ('{"schema": "other", "resolve": "r", "bases": []}', "schema 'other'"),
    ('[1, 2]', "schema None"),
    (json.dumps({"schema": SCHEMA, "resolve": "r", "bases": [{"reference": "a:b"}]}), "malformed"),
    (json.dumps({"schema": SCHEMA, "resolve": "r", "bases": [
        {"reference": "a:b", "digest": "sha256:12", "platforms": []}]}), "not a sha256 digest"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_damaged_lockfile_names_path_and_problem(text: "str | bytes", problem: str) -> None:
    with pytest.raises(BaseLockError) as e:
        BaseLock.parse(text, "3rdparty/container-images.lock")
    assert e.value.path == "3rdparty/container-images.lock"
    assert problem in e.value.problem
    assert "3rdparty/container-images.lock" in str(e.value)


def test_merge_requests_unions_platforms_per_reference() -> None:
    merged = merge_requests([("b:1", ["linux/arm64"]), ("a:1", ["linux/amd64"]), ("b:1", ["linux/x86_64", "linux/arm64"])])
    assert merged == (("a:1", ("linux/amd64",)), ("b:1", ("linux/amd64", "linux/arm64")))
