"""The base-image lockfile: what each registry base's tag named when the lock was generated.

::

    lock = BaseLock.parse(text, path="3rdparty/container-images.lock")
    entry = lock.get("docker.io/library/python:3.12-slim")      # None: not locked
    entry.pinned()                       # 'docker.io/library/python:3.12-slim@sha256:...'
    entry.platform("linux/arm64")        # LockedPlatform(manifest=..., config=...) or None

    text = BaseLock("container-images", bases).render("pants generate-lockfiles --resolve=container-images")

A base named by tag is built from the digest its lock entry holds, so the same commit gives the
same images however the tag has moved since, and a build needs the registry only for content no
cache holds. Per platform the entry also holds the manifest and config digests, which the build
checks what it fetches against.

The file is a header of ``//`` comment lines (how to regenerate it), then JSON with every list
in a stable order, so that a regenerated lock differs from the old one only where a tag moved.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from llbkit.errors import LlbkitError
from llbkit.platforms import canonical_platform

__all__ = ["BaseLock", "BaseLockError", "LockedBase", "LockedPlatform", "SCHEMA", "merge_requests"]

SCHEMA = "llbkit.base-lock.v1"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class BaseLockError(LlbkitError):
    """A lockfile that cannot be read: ``path`` and what is wrong (``problem``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"the base-image lockfile {path} is damaged: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class LockedPlatform:
    platform: str  # canonical, e.g. linux/arm64
    manifest: str  # the platform's image manifest digest
    config: str  # its config blob digest


@dataclass(frozen=True)
class LockedBase:
    reference: str  # normalized NAME:TAG, as llbkit.image.registry_bases gives it
    digest: str  # what the tag named: an image index, or one manifest
    platforms: Tuple[LockedPlatform, ...] = ()

    def pinned(self) -> str:
        """The reference pinned to the locked digest, ``NAME:TAG@sha256:...``."""
        return f"{self.reference}@{self.digest}"

    def platform(self, platform: str) -> Optional[LockedPlatform]:
        want = canonical_platform(platform)
        return next((p for p in self.platforms if p.platform == want), None)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "LockedBase":
        """From :meth:`to_doc`'s form; ``ValueError``/``KeyError``/``TypeError`` if malformed."""
        ref = str(doc["reference"])
        return cls(ref, _check_digest(doc["digest"], f"{ref}: digest"), tuple(
            LockedPlatform(canonical_platform(str(p["platform"])),
                           _check_digest(p["manifest"], f"{ref} ({p['platform']}): manifest"),
                           _check_digest(p["config"], f"{ref} ({p['platform']}): config"))
            for p in doc["platforms"]))

    def to_doc(self) -> Dict[str, Any]:
        # Key order as written (not sorted): reference first reads best in the file.
        return {"reference": self.reference, "digest": self.digest,
                "platforms": [{"platform": p.platform, "manifest": p.manifest, "config": p.config}
                              for p in sorted(self.platforms, key=lambda p: p.platform)]}


@dataclass(frozen=True)
class BaseLock:
    resolve: str
    bases: Tuple[LockedBase, ...] = ()
    _by_ref: Dict[str, LockedBase] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_ref.update((b.reference, b) for b in self.bases)

    def get(self, reference: str) -> Optional[LockedBase]:
        return self._by_ref.get(reference)

    def render(self, regenerate: str) -> str:
        """The lockfile's text; ``regenerate`` is the command the header says to run."""
        doc = {"schema": SCHEMA, "resolve": self.resolve,
               "bases": [b.to_doc() for b in sorted(self.bases, key=lambda b: b.reference)]}
        header = [
            "// This lockfile pins the registry base images of the container_image targets in the",
            f"// resolve `{self.resolve}` to the digests their tags named when it was generated.",
            "// Do not edit it by hand. To regenerate it (when a tag should move, or a BUILD file",
            "// names a new base or platform), run:",
            "//",
            f"//    {regenerate}",
            "//",
        ]
        return "\n".join(header) + "\n" + json.dumps(doc, indent=2) + "\n"

    @classmethod
    def parse(cls, text: "str | bytes", path: str) -> "BaseLock":
        if isinstance(text, bytes):
            try:
                text = text.decode()
            except UnicodeDecodeError as e:
                raise BaseLockError(path, f"not UTF-8 text ({e})") from None
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise BaseLockError(path, f"not valid JSON after the header ({e})") from None
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            found = doc.get("schema") if isinstance(doc, dict) else None
            raise BaseLockError(path, f"schema {found!r}, expected {SCHEMA!r}")
        try:
            bases = tuple(LockedBase.from_doc(b) for b in doc["bases"])
            return cls(str(doc["resolve"]), bases)
        except (KeyError, TypeError, ValueError) as e:
            raise BaseLockError(path, f"an entry is malformed ({type(e).__name__}: {e})") from None


def _check_digest(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise ValueError(f"{what} {value!r} is not a sha256 digest")
    return value


def merge_requests(requests: Iterable[Tuple[str, Sequence[str]]]) -> Tuple[Tuple[str, Tuple[str, ...]], ...]:
    """``(reference, platforms)`` requests merged per reference, platforms canonical and sorted."""
    out: Dict[str, set] = {}
    for ref, platforms in requests:
        out.setdefault(ref, set()).update(canonical_platform(p) for p in platforms)
    return tuple((ref, tuple(sorted(ps))) for ref, ps in sorted(out.items()))
