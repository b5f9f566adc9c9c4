"""Resolve the registry bases of an image: a tag to the digest it names now, and the config of
the image for each platform, asked of the registry directly from the client.

::

    bases = resolve_bases(spec, ["linux/amd64", "linux/arm64"], pool, cache)
    lowered = plan(spec, base_configs=bases, ...)

The digest pins the base in the LLB definition (``name:tag@sha256:...``), so it is what enters a
build's content key: when the tag moves, the key changes. Asking the registry from the client
needs no buildkitd, so a build served from the content cache starts none. Only when the
registry cannot be reached from the client (the workers may sit in another network) is a
worker's ``ResolveImageConfig`` used instead (``pool``: a :class:`LazyPool`, made on demand).

A resolved digest is the top-level one (the index of a multi-platform image), as BuildKit's own
``ResolveImageConfig`` answers. Configs are stored by digest under ``<cache>/../base-configs/``
(what a digest names never changes), so a base given by digest needs no request at all.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from llbkit.builder.cache import ImageCache
from llbkit.builder.lazy_pool import LazyPool
from llbkit.buildkit.errors import BuildKitError
from llbkit.buildkit.pool import normalize_platform
from llbkit.image import ImageSpec, ResolvedBase, registry_bases
from llbkit.atomic import write_bytes_atomic
from llbkit.oci.errors import RegistryError, RegistryUnreachableError
from llbkit.oci.registry import RegistryClient
from llbkit.reference import parse_reference
from llbkit.oci.types import INDEX_TYPES, sha256_digest

__all__ = ["resolve_bases", "BaseResolveError", "select_platform_manifest"]

_REDIRECTS = (301, 302, 303, 307, 308)


class BaseResolveError(BuildKitError):
    """A registry base image could not be resolved (not found, no such platform, refused...)."""


def resolve_bases(
    spec: ImageSpec,
    platforms: Sequence[str],
    pool: Optional[LazyPool] = None,
    cache: Optional[ImageCache] = None,
    *,
    log: Optional[Any] = None,
) -> Dict[Tuple[str, str], ResolvedBase]:
    """``{(ref, platform): ResolvedBase(config bytes, digest)}`` for every registry base of
    ``spec``'s chain (``ref`` as :func:`llbkit.image.registry_bases` normalizes it), ready for
    ``plan(spec, base_configs=...)``.

    The registry is asked directly; ``pool`` (optional) serves only when the registry cannot be
    reached from here. ``log(message)`` is told when that fallback is taken."""
    resolver = _Resolver(pool, cache, log)
    out: Dict[Tuple[str, str], ResolvedBase] = {}
    for ref in registry_bases(spec):
        for p in platforms:
            out[(ref, p)] = resolver.resolve(ref, p)
    return out


def select_platform_manifest(index: Mapping[str, Any], platform: str, ref: str) -> Dict[str, Any]:
    """The descriptor in an image index for ``platform`` (normalized as containerd does, so
    ``arm64/v8`` is ``arm64``); a clear error listing what the index has when none fits."""
    want = normalize_platform(platform)
    seen: List[str] = []
    for desc in index.get("manifests") or []:
        plat = desc.get("platform") or {}
        if not plat.get("os") or not plat.get("architecture") or plat.get("os") == "unknown":
            continue  # attestation manifests and the like
        text = "/".join(x for x in (plat["os"], plat["architecture"], plat.get("variant")) if x)
        try:
            norm = normalize_platform(text)
        except BuildKitError:
            continue
        if norm == want:
            return dict(desc)
        seen.append(norm)
    raise BaseResolveError(
        f"base image {ref} has no {want} image (it has {', '.join(seen) or 'no platform images'}): "
        f"build for one of its platforms, or use a base image that includes {want}")


class _Resolver:
    def __init__(self, pool: Optional[LazyPool], cache: Optional[ImageCache], log: Optional[Any]) -> None:
        self.pool = pool
        self.store_dir = cache.root.parent / "base-configs" if cache is not None else None
        self.log = log
        self.clients: Dict[str, RegistryClient] = {}
        self.unreachable: Dict[str, str] = {}  # registry -> error: ask a worker for the rest

    def resolve(self, ref: str, platform: str) -> ResolvedBase:
        r = parse_reference(ref)
        if r.digest:
            stored = self._load(r.registry, r.repository, r.digest, platform)
            if stored is not None:
                return stored
        if r.registry not in self.unreachable:
            try:
                return self._from_registry(ref, r.registry, r.repository, r.digest or r.tag or "latest", platform)
            except RegistryUnreachableError as e:
                self.unreachable[r.registry] = " ".join(str(e).split())
            except RegistryError as e:
                raise BaseResolveError(f"cannot resolve base image {ref} for {platform}: {e}") from None
        return self._from_worker(ref, r.registry, r.repository, platform)

    # -- the registry ---------------------------------------------------------------------------
    def _client(self, registry: str) -> RegistryClient:
        if registry not in self.clients:
            self.clients[registry] = RegistryClient(registry, timeout=30.0)
        return self.clients[registry]

    def _from_registry(self, ref: str, registry: str, repo: str, reference: str, platform: str) -> ResolvedBase:
        client = self._client(registry)
        data, media_type, digest = self._manifest(client, repo, reference, ref)
        stored = self._load(registry, repo, digest, platform)
        if stored is not None:
            return stored
        doc = _json(data, f"the manifest of {ref}")
        if media_type in INDEX_TYPES or "manifests" in doc:
            desc = select_platform_manifest(doc, platform, ref)
            data, _, _ = self._manifest(client, repo, str(desc["digest"]), ref)
            doc = _json(data, f"the {platform} manifest of {ref}")
        config_desc = doc.get("config") or {}
        if not config_desc.get("digest"):
            raise BaseResolveError(f"base image {ref} ({platform}): its manifest names no config")
        config = self._blob(client, repo, str(config_desc["digest"]), ref)
        return self._store(registry, repo, digest, platform, ResolvedBase(config, digest))

    def _manifest(self, client: RegistryClient, repo: str, reference: str, ref: str) -> Tuple[bytes, str, str]:
        try:
            return client.get_manifest(repo, reference)
        except RegistryUnreachableError:
            raise
        except RegistryError as e:
            if "HTTP 404" in str(e):
                raise BaseResolveError(
                    f"base image {ref} not found in registry {client.registry} (no manifest {repo}:{reference}); "
                    "check the name and tag, and that it was pushed") from None
            raise

    def _blob(self, client: RegistryClient, repo: str, digest: str, ref: str) -> bytes:
        resp = client.request("GET", f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:pull")
        body = resp.body
        if resp.status in _REDIRECTS and resp.header("Location"):
            # Registries serve blobs from storage elsewhere (a CDN); that URL carries its own
            # signature and must not get the registry's credentials.
            url = urllib.parse.urljoin(client.url(f"/v2/{repo}/blobs/{digest}"), resp.header("Location"))
            try:
                with urllib.request.urlopen(url, timeout=client.timeout) as f:  # noqa: S310 - http(s) only
                    body = f.read()
            except (urllib.error.URLError, OSError) as e:
                raise RegistryUnreachableError(f"cannot fetch {digest} of {ref} from {url}: {e}") from e
        elif resp.status != 200:
            raise RegistryError(f"registry {client.registry}: getting {repo}@{digest} failed with HTTP {resp.status}")
        if sha256_digest(body) != digest:
            raise RegistryError(f"registry {client.registry}: blob {repo}@{digest} does not match its digest")
        return body

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
        return self._store(registry, repo, res.digest, platform, ResolvedBase(res.raw_config, res.digest))

    # -- configs by digest ----------------------------------------------------------------------
    def _path(self, registry: str, repo: str, digest: str, platform: str) -> Optional[Path]:
        if self.store_dir is None:
            return None
        name = hashlib.sha256(f"{registry}/{repo}@{digest} {platform}".encode()).hexdigest()
        return self.store_dir / f"{name}.json"

    def _load(self, registry: str, repo: str, digest: str, platform: str) -> Optional[ResolvedBase]:
        path = self._path(registry, repo, digest, platform)
        if path is None or not path.exists():
            return None
        try:
            doc = json.loads(path.read_bytes())
            return ResolvedBase(doc["config"].encode(), doc["digest"])
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is resolved again

    def _store(self, registry: str, repo: str, digest: str, platform: str, base: ResolvedBase) -> ResolvedBase:
        path = self._path(registry, repo, digest, platform)
        if path is not None:
            config = base.config if isinstance(base.config, bytes) else json.dumps(base.config).encode()
            # Several Pants processes may store the same entry at once: each writes its own temp file.
            write_bytes_atomic(path, json.dumps({"config": config.decode(), "digest": digest}).encode())
        return base


def _json(data: bytes, what: str) -> Dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise BaseResolveError(f"{what} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BaseResolveError(f"{what} is not a JSON object")
    return doc
