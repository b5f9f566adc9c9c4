"""A small OCI distribution client: push a layout (blobs, manifests, index, then tags), get
manifests and blobs. All of llbkit's registry HTTP is here (publish and base resolution).

Pushes go by digest first and tag last (as rules_oci does), so a tag never names something
half-pushed: blobs (HEAD to skip those present, else POST + monolithic PUT streamed from the file
and verified on the way), then each platform manifest by digest, then the index by digest, then
each tag. Auth: anonymous, HTTP basic, or the bearer token flow (``WWW-Authenticate: Bearer
realm,service,scope``), with credentials from Docker's config (:mod:`llbkit.oci.auth`).
127.0.0.1/localhost registries are spoken to over plain HTTP, every other one over HTTPS.

A client keeps one HTTP/1.1 connection per host (the registry, its token server, a blob
redirect's storage host) and reuses it (keep-alive); a connection that fails or that the server
closed is reopened once. ``requests`` keeps the last :data:`REQUEST_LOG_SIZE` requests.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import socket
import ssl
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from llbkit.oci.auth import Credentials, lookup_credentials, parse_challenge
from llbkit.oci.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryUnreachableError,
)
from llbkit.oci.layout import BlobSource, OCILayout, read_verified
from llbkit.oci.types import INDEX_TYPES, MANIFEST_TYPES, Descriptor, sha256_digest
from llbkit.reference import ImageReference, parse_reference

ACCEPT_MANIFESTS = ", ".join(sorted(INDEX_TYPES | MANIFEST_TYPES))
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_BLOCK = 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
#: How many requests :attr:`RegistryClient.requests` remembers (the most recent ones).
REQUEST_LOG_SIZE = 256




@dataclass
class PushResult:
    reference: ImageReference
    digest: str
    blobs_uploaded: List[str] = field(default_factory=list)
    blobs_skipped: List[str] = field(default_factory=list)  # already there, or mounted
    blobs_mounted: Dict[str, str] = field(default_factory=dict)  # digest -> repository mounted from
    tags: List[str] = field(default_factory=list)


class _Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str:
        return self.headers.get(name) or ""


class RegistryClient:
    """One registry host; ``requests`` logs ``(method, path, status)`` of the recent requests.

    Credentials, unless given, come from Docker's config as found in ``env`` (``DOCKER_CONFIG``,
    ``HOME``, ``PATH``); ``env`` defaults to the process environment, for callers at the edge.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Optional[Credentials] = None,
        insecure: Optional[bool] = None,
        timeout: float = 120.0,
        ssl_context: Optional[ssl.SSLContext] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.registry = registry
        self.endpoint = "registry-1.docker.io" if registry == "docker.io" else registry
        local = self.endpoint.rsplit(":", 1)[0] if not self.endpoint.startswith("[") else \
            self.endpoint.split("]")[0] + "]"
        self.plain_http = local in _LOCAL_HOSTS if insecure is None else insecure
        self.scheme = "http" if self.plain_http else "https"
        self._credentials = credentials
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.env: Mapping[str, str] = dict(os.environ if env is None else env)
        self.requests: Deque[Tuple[str, str, int]] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self._connections: Dict[Tuple[str, str], http.client.HTTPConnection] = {}
        self._tokens: Dict[str, str] = {}
        self._basic = False

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = lookup_credentials(self.registry, self.env)
        return self._credentials

    # -- HTTP ----------------------------------------------------------------------------------

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        """The open connection to ``scheme://netloc``, made on first use."""
        conn = self._connections.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout,
                                                   context=self.ssl_context, blocksize=_BLOCK)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=_BLOCK)
            self._connections[(scheme, netloc)] = conn
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._connections.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close the kept-alive connections (a later request opens new ones)."""
        for key in list(self._connections):
            self._drop(*key)

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raw(self, method: str, url: str, headers: Dict[str, str], body: Any = None,
             replayable: bool = True) -> _Response:
        """One request on the host's kept-alive connection. A connection the server closed
        between requests fails on reuse: it is reopened and the request sent once more, unless
        its body was a stream already consumed (``replayable=False``)."""
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in (0, 1):
            reused = (parts.scheme, parts.netloc) in self._connections
            conn = self._connection(parts.scheme, parts.netloc)
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()  # b"" for HEAD; a response must be read before the next
            except (ConnectionError, socket.timeout, socket.gaierror, ssl.SSLError, OSError,
                    http.client.HTTPException) as e:
                self._drop(parts.scheme, parts.netloc)
                stale = isinstance(e, (ConnectionError, http.client.RemoteDisconnected,
                                       http.client.BadStatusLine))
                if attempt == 0 and reused and stale and (replayable or body is None):
                    continue
                raise RegistryUnreachableError(
                    f"cannot reach registry {self.registry} at {parts.scheme}://{parts.netloc} "
                    f"({method} {parts.path}): {e}; check the address, that the registry is "
                    "running, and (for HTTPS) its certificate"
                ) from e
            if resp.will_close:
                self._drop(parts.scheme, parts.netloc)
            self.requests.append((method, parts.path, resp.status))
            return _Response(resp.status, resp.headers, data)
        raise AssertionError("the loop returns or raises")

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.endpoint}{path}"

    def request(
        self,
        method: str,
        path_or_url: str,
        scope: str,
        *,
        headers: Optional[Dict[str, str]] = None,
        body: Optional[Callable[[], Any]] = None,
    ) -> _Response:
        """Send with auth for ``scope``; on a 401 answer the challenge once and retry.

        ``body`` is a factory (a fresh stream per attempt)."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        for attempt in (0, 1):
            hdrs = dict(headers or {})
            auth = self._auth_header(scope)
            if auth:
                hdrs["Authorization"] = auth
            resp = self._raw(method, url, hdrs, body() if body else None, replayable=body is None)
            if resp.status != 401:
                return resp
            if attempt == 0 and self._answer(resp.header("WWW-Authenticate"), scope):
                continue
            raise self._auth_error(method, url, scope, resp)
        raise AssertionError("the loop returns or raises")

    def _auth_header(self, scope: str) -> str:
        if scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        if self._basic:
            return self.credentials.basic_header()
        return ""

    def _answer(self, header: str, scope: str) -> bool:
        """Prepare auth for a retry; False when there is nothing new to try."""
        challenge = parse_challenge(header)
        creds = self.credentials
        if challenge.scheme == "basic":
            if self._basic or not creds.username:
                return False
            self._basic = True
            return True
        if challenge.scheme == "bearer" and challenge.params.get("realm"):
            if scope in self._tokens:
                return False
            self._tokens[scope] = self._fetch_token(challenge.params, scope)
            return True
        return False

    def _fetch_token(self, params: Dict[str, str], scope: str) -> str:
        realm = params["realm"]
        query: List[Tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        query += [("scope", s) for s in scope.split(" ") if s]
        creds = self.credentials
        headers: Dict[str, str] = {}
        if creds.identity_token:
            form = urllib.parse.urlencode([("grant_type", "refresh_token"),
                                           ("refresh_token", creds.identity_token),
                                           ("client_id", "llbkit")] + query)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            resp = self._raw("POST", realm, headers, form.encode())
        else:
            if creds.username:
                headers["Authorization"] = creds.basic_header()
            sep = "&" if "?" in realm else "?"
            resp = self._raw("GET", realm + sep + urllib.parse.urlencode(query), headers)
        if resp.status != 200:
            raise RegistryAuthError(
                f"token server {realm} refused a token for {scope!r} on {self.registry} "
                f"({resp.status}{_errors(resp.body)}); tried {creds.describe()}; "
                f"run `docker login {self.registry}` or fix the config", status=resp.status
            )
        try:
            data = json.loads(resp.body)
            return str(data.get("token") or data["access_token"])
        except (ValueError, KeyError, TypeError):
            raise RegistryAuthError(f"token server {realm} answered without a token") from None

    def _auth_error(self, method: str, url: str, scope: str, resp: _Response) -> RegistryAuthError:
        creds = self.credentials
        tried = creds.describe() if (creds.username or creds.identity_token) else \
            f"no credentials ({creds.source or 'anonymous'})"
        return RegistryAuthError(
            f"registry {self.registry} refused {method} {urllib.parse.urlsplit(url).path} "
            f"(401 Unauthorized{_errors(resp.body)}) for {scope!r}; tried {tried}; run "
            f"`docker login {self.registry}` or add an auths entry for it to the Docker "
            "config.json (DOCKER_CONFIG)", status=resp.status
        )

    def _check(self, resp: _Response, ok: Sequence[int], what: str) -> _Response:
        if resp.status not in ok:
            raise RegistryError(
                f"registry {self.registry}: {what} failed with HTTP {resp.status}"
                f"{_errors(resp.body)}", status=resp.status
            )
        return resp

    # -- blobs and manifests -------------------------------------------------------------------

    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", _scope(repo, push=True))
        return resp.status == 200

    def upload_blob(self, repo: str, desc: Descriptor, source: BlobSource) -> None:
        scope = _scope(repo, push=True)
        start = self._check(self.request("POST", f"/v2/{repo}/blobs/uploads/", scope,
                                         headers={"Content-Length": "0"}),
                            (202,), f"starting the upload of {desc.digest} to {repo}")
        location = start.header("Location")
        if not location:
            raise RegistryError(f"registry {self.registry} started an upload without Location")
        url = urllib.parse.urljoin(self.url(f"/v2/{repo}/blobs/uploads/"), location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": desc.digest})
        readers: List[Any] = []

        def body() -> Any:
            readers.append(source.open_blob(desc))
            return readers[-1]

        try:
            resp = self.request("PUT", url, scope, body=body, headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(desc.size)})
            readers[-1].finish()
        finally:
            for r in readers:
                r.close()
        self._check(resp, (201,), f"uploading {desc.digest} to {repo}")

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Link ``digest`` from ``from_repo`` of this registry into ``repo`` (a cross-repository
        mount); ``False`` when the registry declines (then nothing was linked)."""
        scope = f"{_scope(repo, push=True)} {_scope(from_repo, push=False)}"
        query = urllib.parse.urlencode({"mount": digest, "from": from_repo})
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?{query}", scope, headers={"Content-Length": "0"})
        if resp.status == 201:
            return True
        location = resp.header("Location")
        if resp.status == 202 and location:  # it opened an upload instead: close it
            url = urllib.parse.urljoin(self.url(f"/v2/{repo}/blobs/uploads/"), location)
            self.request("DELETE", url, scope)
        return False

    def has_manifest(self, repo: str, reference: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/manifests/{reference}", _scope(repo, True),
                            headers={"Accept": ACCEPT_MANIFESTS})
        return resp.status == 200

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        resp = self.request("PUT", f"/v2/{repo}/manifests/{reference}", _scope(repo, True),
                            body=lambda: data,
                            headers={"Content-Type": media_type, "Content-Length": str(len(data))})
        self._check(resp, (201,), f"putting manifest {repo}:{reference}")
        return resp.header("Docker-Content-Digest") or sha256_digest(data)

    def get_manifest(self, repo: str, reference: str) -> Tuple[bytes, str, str]:
        """``(bytes, media type, digest)`` of ``repo:reference`` (tag or digest), verified."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{reference}", _scope(repo, False),
                            headers={"Accept": ACCEPT_MANIFESTS})
        self._check(resp, (200,), f"getting manifest {repo}:{reference}")
        digest = sha256_digest(resp.body)
        expected = reference if reference.startswith("sha256:") else \
            resp.header("Docker-Content-Digest")
        if expected and expected != digest:
            raise RegistryError(
                f"registry {self.registry}: manifest {repo}:{reference} hashes to {digest}, "
                f"not {expected}; the registry or a proxy altered it"
            )
        media_type = resp.header("Content-Type").split(";")[0].strip()
        if not media_type:
            media_type = str(json.loads(resp.body).get("mediaType", ""))
        return resp.body, media_type, digest

    def get_blob(self, repo: str, digest: str) -> bytes:
        """The bytes of blob ``digest`` in ``repo``, verified against the digest.

        Registries often answer with a redirect to storage elsewhere (a CDN); that URL carries
        its own signature, so it is fetched without the registry's credentials."""
        url = self.url(f"/v2/{repo}/blobs/{digest}")
        resp = self.request("GET", url, _scope(repo, False))
        for _hop in range(5):
            location = resp.header("Location")
            if resp.status not in _REDIRECTS or not location:
                break
            url = urllib.parse.urljoin(url, location)
            resp = self._raw("GET", url, {})
        self._check(resp, (200,), f"getting {repo}@{digest}")
        if sha256_digest(resp.body) != digest:
            raise RegistryError(f"registry {self.registry}: blob {repo}@{digest} does not match its digest")
        return resp.body


def _scope(repo: str, push: bool) -> str:
    return f"repository:{repo}:{'pull,push' if push else 'pull'}"


def _errors(body: bytes) -> str:
    try:
        errors = json.loads(body).get("errors") or []
        text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, AttributeError):
        text = body[:200].decode(errors="replace").strip()
    return f": {text}" if text else ""


# -- push ----------------------------------------------------------------------------------------

def _plan(
    source: BlobSource, root: Descriptor
) -> Tuple[List[Descriptor], List[Tuple[Descriptor, bytes]]]:
    """(blobs, manifests in push order: children before the indexes naming them)."""
    blobs: Dict[str, Descriptor] = {}
    manifests: Dict[str, Tuple[Descriptor, bytes]] = {}

    def visit(desc: Descriptor) -> None:
        if desc.digest in manifests:
            return
        if desc.media_type in INDEX_TYPES | MANIFEST_TYPES:
            data = read_verified(source, desc)
            body = json.loads(data)
            if desc.media_type in INDEX_TYPES:
                for d in body.get("manifests") or []:
                    visit(Descriptor.from_dict(d, f"index {desc.digest}"))
            else:
                for d in [body.get("config")] + list(body.get("layers") or []):
                    child = Descriptor.from_dict(d, f"manifest {desc.digest}")
                    blobs.setdefault(child.digest, child)
            manifests[desc.digest] = (desc, data)
        else:
            blobs.setdefault(desc.digest, desc)

    visit(root)
    return list(blobs.values()), list(manifests.values())


def push(
    client: RegistryClient,
    repository: str,
    root: Descriptor,
    source: BlobSource,
    tags: Sequence[str] = (),
    memory: Optional[Any] = None,
) -> PushResult:
    """Push ``root`` (an index or manifest) and everything it names, then ``tags``.

    ``memory`` (a :class:`~llbkit.oci.pushed_blobs.PushedBlobs`) names other repositories of the
    registry that hold a blob: a missing blob is mounted from one of them before it is uploaded."""
    blobs, manifests = _plan(source, root)
    result = PushResult(ImageReference(client.registry, repository, digest=root.digest), root.digest)
    for desc in blobs:
        if client.has_blob(repository, desc.digest):
            result.blobs_skipped.append(desc.digest)
        else:
            donor = next((r for r in (memory.repositories(client.registry, desc.digest) if memory else [])
                          if r != repository and client.mount_blob(repository, desc.digest, r)), None)
            if donor is not None:
                result.blobs_skipped.append(desc.digest)
                result.blobs_mounted[desc.digest] = donor
            else:
                client.upload_blob(repository, desc, source)
                result.blobs_uploaded.append(desc.digest)
        if memory is not None:
            memory.record(client.registry, desc.digest, repository)
    for desc, data in manifests:
        if not client.has_manifest(repository, desc.digest):
            client.put_manifest(repository, desc.digest, data, desc.media_type)
    root_data = manifests[-1][1]
    for tag in tags:
        client.put_manifest(repository, tag, root_data, root.media_type)
        result.tags.append(tag)
    return result


def push_layout(
    layout: Union[str, OCILayout, Any], dest: str, tags: Sequence[str] = (),
    client: Optional[RegistryClient] = None,
    memory: Optional[Any] = None,
) -> PushResult:
    """Push the image ``index.json`` names (exactly one) from a layout dir or tar (``memory``: see
    :func:`push`)."""
    opened = layout if isinstance(layout, OCILayout) else OCILayout(layout)
    try:
        roots = {d.digest: d for d in opened.manifests}
        if len(roots) != 1:
            raise RegistryError(
                f"{opened.describe()}: index.json names {len(roots)} images; push_layout needs "
                "exactly one (an index or a manifest)"
            )
        root = next(iter(roots.values())).replace(annotations={}, platform=None)
        ref = parse_reference(dest, op="push")
        client = client or RegistryClient(ref.registry)
        all_tags = list(dict.fromkeys(([ref.tag] if ref.tag else []) + list(tags)))
        return push(client, ref.repository, root, opened, all_tags, memory=memory)
    finally:
        if opened is not layout:
            opened.close()


__all__ = ["PushResult", "RegistryClient", "REQUEST_LOG_SIZE", "push", "push_layout"]
