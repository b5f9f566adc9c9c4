"""Resolve the registry bases of an image: a tag to the digest it names now, and the config of
the image for each platform, asked of the registry directly from the client.

::

    bases = resolve_bases(registry_bases(spec), ["linux/amd64", "linux/arm64"], pool)
    lowered = plan(spec, base_configs=bases, ...)

The digest pins the base in the LLB definition (``name:tag@sha256:...``), so it is what enters a
build's content key: when the tag moves, the key changes. Asking the registry from the client
needs no buildkitd, so a build served from the content cache starts none. Only when the
registry cannot be reached from the client (the workers may sit in another network) is a
worker's ``ResolveImageConfig`` used instead (``pool``: a :class:`LazyPool`, made on demand).

A resolved digest is the top-level one (the index of a multi-platform image), as BuildKit's own
``ResolveImageConfig`` answers. Nothing is stored here: the Pants backend runs a resolution as a
process, cached by Pants when the reference is a digest (what a digest names never changes) and
run afresh on every run when it is a tag (what a tag names may move).

``python -m llbkit.builder.process resolve-bases`` prints :func:`resolved_to_json` of a resolution.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from llbkit.builder.base_lock import LockedBase, LockedPlatform
from llbkit.builder.lazy_pool import LazyPool
from llbkit.buildkit.errors import BuildKitError
from llbkit.image import ResolvedBase
from llbkit.jsonutil import parse_json_object
from llbkit.oci.auth import lookup_credentials
from llbkit.oci.errors import RegistryError, RegistryUnreachableError
from llbkit.oci.registry import RegistryClient
from llbkit.reference import parse_reference
from llbkit.oci.types import INDEX_TYPES
from llbkit.platforms import canonical_platform, platform_matches

__all__ = ["resolve_bases", "lock_bases", "BaseResolveError", "select_platform_manifest", "resolved_to_json",
           "resolved_from_json"]


class BaseResolveError(BuildKitError):
    """A registry base image could not be resolved (not found, no such platform, refused...)."""


def resolve_bases(
    refs: Sequence[str],
    platforms: Sequence[str],
    pool: Optional[LazyPool] = None,
    *,
    env: Optional[Mapping[str, str]] = None,
    log: Optional[Any] = None,
) -> Dict[Tuple[str, str], ResolvedBase]:
    """``{(ref, platform): ResolvedBase(config bytes, digest)}`` for every registry base ``refs``
    (as :func:`llbkit.image.registry_bases` normalizes them), ready for ``plan(spec, base_configs=...)``.

    The registry is asked directly (credentials from Docker's config found through ``env``);
    ``pool`` (optional) serves only when the registry cannot be reached from here.
    ``log(message)`` is told when that fallback is taken."""
    resolver = _Resolver(pool, env, log)
    out: Dict[Tuple[str, str], ResolvedBase] = {}
    for ref in refs:
        for p in platforms:
            out[(ref, p)] = resolver.resolve(ref, p)
    return out


def lock_bases(
    requests: Sequence[Tuple[str, Sequence[str]]],
    *,
    env: Optional[Mapping[str, str]] = None,
) -> Tuple[LockedBase, ...]:
    """What each ``(reference, platforms)`` names in its registry now: the digest of the tag, and
    per platform the manifest and config digests, for :class:`~llbkit.builder.base_lock.BaseLock`.

    Only the registry is asked (credentials from Docker's config found through ``env``): a lock
    records registry digests, which a worker's ``ResolveImageConfig`` does not give per platform.
    An unreachable registry, an unknown tag or a platform the index lacks is a
    :class:`BaseResolveError` naming the reference."""
    resolver = _Resolver(None, env, None)
    return tuple(resolver.lock(ref, platforms) for ref, platforms in requests)


def resolved_to_json(bases: Mapping[Tuple[str, str], ResolvedBase]) -> str:
    """The resolutions as JSON: ``[{"ref", "platform", "digest", "config"}]`` (config as text)."""
    rows = []
    for (ref, platform), b in sorted(bases.items()):
        config = b.config if isinstance(b.config, bytes) else json.dumps(b.config).encode()
        rows.append({"ref": ref, "platform": platform, "digest": b.digest, "config": config.decode()})
    return json.dumps(rows, sort_keys=True)


def resolved_from_json(text: "str | bytes") -> Dict[Tuple[str, str], ResolvedBase]:
    return {(r["ref"], r["platform"]): ResolvedBase(r["config"].encode(), r["digest"]) for r in json.loads(text)}


def select_platform_manifest(index: Mapping[str, Any], platform: str, ref: str) -> Dict[str, Any]:
    """The descriptor in an image index for ``platform`` (matched as containerd does, see
    :func:`llbkit.platforms.platform_matches`); a clear error listing what the index has when none fits."""
    want = canonical_platform(platform)
    seen: List[str] = []
    for desc in index.get("manifests") or []:
        plat = desc.get("platform") or {}
        if not plat.get("os") or not plat.get("architecture") or plat.get("os") == "unknown":
            continue  # attestation manifests and the like
        text = "/".join(x for x in (plat["os"], plat["architecture"], plat.get("variant")) if x)
        if platform_matches(want, text):
            return dict(desc)
        seen.append(text)
    raise BaseResolveError(
        f"base image {ref} has no {want} image (it has {', '.join(seen) or 'no platform images'}): "
        f"build for one of its platforms, or use a base image that includes {want}")


class _Resolver:
    def __init__(self, pool: Optional[LazyPool], env: Optional[Mapping[str, str]], log: Optional[Any]) -> None:
        self.pool = pool
        self.env = env
        self.log = log
        self.clients: Dict[str, RegistryClient] = {}
        self.unreachable: Dict[str, str] = {}  # registry -> error: ask a worker for the rest

    def resolve(self, ref: str, platform: str) -> ResolvedBase:
        r = parse_reference(ref)
        if r.registry not in self.unreachable:
            try:
                return self._from_registry(ref, r.registry, r.repository, r.digest or r.tag or "latest", platform)
            except RegistryUnreachableError as e:
                self.unreachable[r.registry] = " ".join(str(e).split())
            except RegistryError as e:
                raise BaseResolveError(f"cannot resolve base image {ref} for {platform}: {e}") from None
        return self._from_worker(ref, r.registry, r.repository, platform)

    def lock(self, ref: str, platforms: Sequence[str]) -> LockedBase:
        r = parse_reference(ref)
        if r.digest:
            raise BaseResolveError(f"base image {ref} is pinned by digest already: it needs no lock entry")
        client = self._client(r.registry)
        try:
            data, media_type, digest = self._manifest(client, r.repository, r.tag or "latest", ref)
            doc = _json(data, f"the manifest of {ref}")
            locked = []
            for platform in platforms:
                manifest_digest, manifest = digest, doc
                if media_type in INDEX_TYPES or "manifests" in doc:
                    desc = select_platform_manifest(doc, platform, ref)
                    manifest_digest = str(desc["digest"])
                    mdata, _, _ = self._manifest(client, r.repository, manifest_digest, ref)
                    manifest = _json(mdata, f"the {platform} manifest of {ref}")
                config = (manifest.get("config") or {}).get("digest")
                if not config:
                    raise BaseResolveError(f"base image {ref} ({platform}): its manifest names no config")
                locked.append(LockedPlatform(canonical_platform(platform), manifest_digest, str(config)))
        except RegistryError as e:
            raise BaseResolveError(f"cannot lock base image {ref}: {' '.join(str(e).split())}") from None
        return LockedBase(ref, digest, tuple(sorted(locked, key=lambda p: p.platform)))

    # -- the registry ---------------------------------------------------------------------------
    def _client(self, registry: str) -> RegistryClient:
        if registry not in self.clients:
            # Docker's config as ``env`` finds it (None: this process's environment)
            creds = lookup_credentials(registry, self.env) if self.env is not None else None
            self.clients[registry] = RegistryClient(registry, credentials=creds, timeout=30.0)
        return self.clients[registry]

    def _from_registry(self, ref: str, registry: str, repo: str, reference: str, platform: str) -> ResolvedBase:
        client = self._client(registry)
        data, media_type, digest = self._manifest(client, repo, reference, ref)
        doc = _json(data, f"the manifest of {ref}")
        if media_type in INDEX_TYPES or "manifests" in doc:
            desc = select_platform_manifest(doc, platform, ref)
            data, _, _ = self._manifest(client, repo, str(desc["digest"]), ref)
            doc = _json(data, f"the {platform} manifest of {ref}")
        config_desc = doc.get("config") or {}
        if not config_desc.get("digest"):
            raise BaseResolveError(f"base image {ref} ({platform}): its manifest names no config")
        config = self._blob(client, repo, str(config_desc["digest"]), ref)
        return ResolvedBase(config, digest)

    def _manifest(self, client: RegistryClient, repo: str, reference: str, ref: str) -> Tuple[bytes, str, str]:
        try:
            return client.get_manifest(repo, reference)
        except RegistryUnreachableError:
            raise
        except RegistryError as e:
            if e.status == 404:
                raise BaseResolveError(
                    f"base image {ref} not found in registry {client.registry} (no manifest {repo}:{reference}); "
                    "check the name and tag, and that it was pushed") from None
            raise

    def _blob(self, client: RegistryClient, repo: str, digest: str, ref: str) -> bytes:
        return client.get_blob(repo, digest)  # follows redirects, checks the digest

    # -- a worker, when the registry cannot be reached from here ---------------------------------
    def _from_worker(self, ref: str, registry: str, repo: str, platform: str) -> ResolvedBase:
        if self.pool is None:
            raise BaseResolveError(
                f"cannot resolve base image {ref} for {platform}: {self.unreachable[registry]}")
        from llbkit.buildkit.solve import BuildResult

        if self.log is not None:
            self.log(f"registry {registry} cannot be reached from here ({self.unreachable[registry]}); "
                     f"resolving {ref} ({platform}) through a buildkitd worker")
        found: Dict[str, Any] = {}

        def fn(gw: Any) -> Any:
            found["r"] = gw.resolve_image_config(ref, platform=platform)
            return BuildResult.of(None)

        with self.pool.get().acquire(platform) as lease:
            try:
                lease.client.build(fn)
            except BuildKitError as e:
                raise BaseResolveError(
                    f"cannot resolve base image {ref} for {platform}: the registry cannot be reached from "
                    f"here ({self.unreachable[registry]}), and worker {lease.name} failed too: {e}") from None
        res = found["r"]
        return ResolvedBase(res.raw_config, res.digest)


def _json(data: bytes, what: str) -> Dict[str, Any]:
    return parse_json_object(data, what, BaseResolveError)
