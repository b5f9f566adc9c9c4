from __future__ import annotations

import pytest

from llbkit.llb import InvalidReferenceError, LLBError, normalize_image_reference
from llbkit.reference import parse_reference, validate_digest

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "ref, want",
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/foo/bar", "docker.io/foo/bar:latest"),
        ("foo/bar/baz:v1", "docker.io/foo/bar/baz:v1"),
        ("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/a/b:c", "localhost:5000/a/b:c"),
        ("ghcr.io/owner/img", "ghcr.io/owner/img:latest"),
        ("[::1]:5000/img", "[::1]:5000/img:latest"),
        ("busybox@" + D, "docker.io/library/busybox@" + D),
        ("busybox:1@" + D, "docker.io/library/busybox:1@" + D),
        ("Registry.Example/x", "Registry.Example/x:latest"),
        ("a-b__c.d/e", "a-b__c.d/e:latest"),
    ],
)
def test_normalize_like_docker(ref, want):
    assert normalize_image_reference(ref) == want


@pytest.mark.parametrize(
    "ref, fragment",
    [
        ("", "empty"),
        ("Busybox", "must be lowercase"),
        ("busybox:", "expected"),
        ("busy box", "expected"),
        ("a" * 64, "image ID"),
        ("busybox@sha256:abc", "expected"),
        ("busybox@sha256:" + "A" * 64, "lowercase hex"),
        ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("busybox:" + "t" * 129, "expected"),
        ("x/" + "a" * 300, "longer than"),
        ("-foo", "expected"),
    ],
)
def test_invalid_references_raise(ref, fragment):
    with pytest.raises(InvalidReferenceError) as e:
        normalize_image_reference(ref, op="image")
    msg = str(e.value)
    assert isinstance(e.value, LLBError)
    assert msg.startswith("image: ")
    assert fragment in msg
    if ref:
        assert repr(ref) in msg or ref in msg


def test_parse_parts():
    r = parse_reference("127.0.0.1:5000/team/app:v2@" + D)
    assert (r.registry, r.repository, r.tag, r.digest) == ("127.0.0.1:5000", "team/app", "v2", D)
    assert r.name == "127.0.0.1:5000/team/app"


@pytest.mark.parametrize("d", ["sha256:" + "0" * 64, "sha384:" + "1" * 96, "sha512:" + "f" * 128])
def test_valid_digests(d):
    assert validate_digest(d, op="x") == d


@pytest.mark.parametrize("d", ["", "sha256", "sha256:", ":abc", "sha256:" + "A" * 64, "sha256:" + "0" * 63, "sha1:" + "0" * 40])
def test_invalid_digests(d):
    with pytest.raises(InvalidReferenceError, match="^http: "):
        validate_digest(d, op="http")
