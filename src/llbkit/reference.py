"""Image references and digests, parsed and normalized the way Go's ``distribution/reference`` does.

The one parser for every stage: the LLB compiler (``image("busybox")`` must name exactly the op
Go's ``llb.Image("busybox")`` names), the image IR's bases, base resolution and publish. It
imports nothing outside the standard library, so ``llbkit push`` can use it without grpc.

A reference goes through the same steps as ``reference.ParseNormalizedNamed`` + ``TagNameOnly``:
``busybox`` -> ``docker.io/library/busybox:latest``, ``index.docker.io/x/y`` -> ``docker.io/x/y:latest``,
``127.0.0.1:5000/busybox`` stays on its registry, and a digest-pinned name gets no default tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from llbkit.errors import InvalidReferenceError

__all__ = ["ImageReference", "parse_reference", "normalize_image_reference", "validate_digest"]

_DEFAULT_DOMAIN = "docker.io"
_LEGACY_DEFAULT_DOMAIN = "index.docker.io"
_OFFICIAL_PREFIX = "library/"
_DEFAULT_TAG = "latest"
_NAME_MAX = 255

# The grammar of distribution/reference (RE2 "\w" is ASCII-only, hence re.ASCII below).
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = r"(?:" + _DOMAIN_NAME + r"|" + _IPV6 + r")"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEP + _ALNUM + r")*"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

_REFERENCE_RE = re.compile(
    r"^(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?$", re.ASCII
)
_ANCHORED_NAME_RE = re.compile(r"^(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")$", re.ASCII)
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")
_DIGEST_ANCHORED_RE = re.compile(r"^" + _DIGEST + r"$", re.ASCII)
_DIGEST_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class ImageReference:
    """A parsed, normalized image reference: ``registry`` (Go's domain, ``docker.io`` for Hub)
    and ``repository`` (Go's path, ``library/busybox``)."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s


def _digest_problem(value: str) -> Optional[str]:
    i = value.find(":")
    if i <= 0 or i + 1 == len(value):
        return f"invalid digest {value!r}: expected 'sha256:<64 hex digits>'"
    algorithm, encoded = value[:i], value[i + 1 :]
    want = _DIGEST_HEX_LEN.get(algorithm)
    if want is None:
        kind = "unsupported digest algorithm" if _DIGEST_ANCHORED_RE.match(value) else "invalid digest"
        return f"{kind} {value!r}"
    if len(encoded) != want or not re.fullmatch(r"[a-f0-9]+", encoded):
        return f"invalid digest {value!r}: {algorithm} needs {want} lowercase hex digits"
    return None


def validate_digest(value: str, *, op: str) -> str:
    """Check ``algorithm:hex`` (sha256, sha384 or sha512, lowercase hex of the right length)."""
    if not isinstance(value, str):
        raise InvalidReferenceError(f"{op}: digest must be a string, got {value!r}")
    problem = _digest_problem(value)
    if problem:
        raise InvalidReferenceError(f"{op}: {problem}")
    return value


def _split_docker_domain(name: str):
    maybe_domain, sep, maybe_remote = name.partition("/")
    if not sep:
        return _DEFAULT_DOMAIN, _OFFICIAL_PREFIX + name
    if maybe_domain == "localhost":
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain == _LEGACY_DEFAULT_DOMAIN:
        domain, remote = _DEFAULT_DOMAIN, maybe_remote
    elif "." in maybe_domain or ":" in maybe_domain:
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain.lower() != maybe_domain:
        domain, remote = maybe_domain, maybe_remote
    else:
        domain, remote = _DEFAULT_DOMAIN, name
    if domain == _DEFAULT_DOMAIN and "/" not in remote:
        remote = _OFFICIAL_PREFIX + remote
    return domain, remote


def parse_reference(ref: str, *, op: str = "image") -> ImageReference:
    """Parse like ``reference.ParseNormalizedNamed``; raise :class:`InvalidReferenceError`."""
    if not isinstance(ref, str):
        raise InvalidReferenceError(f"{op}: image reference must be a string, got {ref!r}")
    if ref == "":
        raise InvalidReferenceError(f"{op}: image reference is empty")
    if _IDENTIFIER_RE.match(ref):
        raise InvalidReferenceError(
            f"{op}: invalid image reference {ref!r}: a 64-character hex string is an image ID, not a name"
        )
    domain, remainder = _split_docker_domain(ref)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidReferenceError(
            f"{op}: invalid image reference {ref!r}: repository name {remote!r} must be lowercase"
        )
    full = domain + "/" + remainder
    m = _REFERENCE_RE.match(full)
    if m is None:
        raise InvalidReferenceError(
            f"{op}: invalid image reference {ref!r}: expected [registry[:port]/]name[:tag][@digest]"
        )
    name, tag, digest = m.group(1), m.group(2) or "", m.group(3) or ""
    nm = _ANCHORED_NAME_RE.match(name)
    if nm is not None:
        domain, path = nm.group(1) or "", nm.group(2)
    else:  # pragma: no cover - the reference pattern already matched a name
        domain, path = "", name
    if len(path) > _NAME_MAX:
        raise InvalidReferenceError(
            f"{op}: invalid image reference {ref!r}: repository name longer than {_NAME_MAX} characters"
        )
    problem = _digest_problem(digest) if digest else None
    if problem:
        raise InvalidReferenceError(f"{op}: invalid image reference {ref!r}: {problem}")
    return ImageReference(domain, path, tag, digest)


def normalize_image_reference(ref: str, *, op: str = "image") -> str:
    """The fully qualified reference, with ``:latest`` added when neither tag nor digest is given."""
    r = parse_reference(ref, op=op)
    if not r.tag and not r.digest:
        r = ImageReference(r.registry, r.repository, _DEFAULT_TAG, "")
    return str(r)
