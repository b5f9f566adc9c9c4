"""Source ops: where filesystems come from (Go's ``client/llb/source.go``).

``scratch()`` is the empty filesystem (no op at all). The others make a ``SourceOp`` whose
identifier is a URL-like string and whose attrs carry the options, exactly as Go spells them, so
that a Python-built source has the same bytes and digest as the Go-built one:

==============  ===============================================  ===========================
builder         identifier                                       platform in the op?
==============  ===============================================  ===========================
``image``       ``docker-image://docker.io/library/busybox:latest``  yes
``local``       ``local://<name>``                               no
``git``         ``git://<host>/<path>[#ref[:subdir]]``           no
``http``        the URL itself                                   no
``oci_layout``  ``oci-layout://<name>@<digest>``                 yes
==============  ===============================================  ===========================
"""

from __future__ import annotations

import enum
import re
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit, urlunsplit

from llbkit.llb import caps as _caps
from llbkit.llb.constraints import Constraints, marshal_constraints, op_constraints
from llbkit.llb.errors import InvalidArgumentError, InvalidReferenceError
from llbkit.gojson import go_json
from llbkit.llb.marshal import MarshalContext
from llbkit.llb.meta import go_path_join
from llbkit.platforms import PlatformLike
from llbkit.reference import normalize_image_reference, parse_reference, validate_digest
from llbkit.llb.state import Output, State, Vertex, new_state

__all__ = ["SourceOp", "ResolveMode", "scratch", "image", "local", "git", "http", "oci_layout"]

# Attribute keys (wire facts, from BuildKit's solver/pb/attr.go).
ATTR_IMAGE_RESOLVE_MODE = "image.resolvemode"
ATTR_IMAGE_RECORD_TYPE = "image.recordtype"
ATTR_IMAGE_LAYER_LIMIT = "image.layerlimit"
ATTR_IMAGE_CHECKSUM = "image.checksum"
ATTR_LOCAL_SESSION_ID = "local.session"
ATTR_LOCAL_UNIQUE_ID = "local.unique"
ATTR_LOCAL_INCLUDE_PATTERNS = "local.includepattern"
ATTR_LOCAL_FOLLOW_PATHS = "local.followpaths"
ATTR_LOCAL_EXCLUDE_PATTERNS = "local.excludepatterns"
ATTR_LOCAL_SHARED_KEY_HINT = "local.sharedkeyhint"
ATTR_LOCAL_DIFFER = "local.differ"
ATTR_LOCAL_METADATA_TRANSFER = "local.metadatatransfer"
ATTR_LOCAL_METADATA_TRANSFER_EXCLUDE = "local.metadatatransferexclude"
ATTR_GIT_KEEP_DIR = "git.keepgitdir"
ATTR_GIT_FULL_URL = "git.fullurl"
ATTR_GIT_AUTH_HEADER_SECRET = "git.authheadersecret"
ATTR_GIT_AUTH_TOKEN_SECRET = "git.authtokensecret"
ATTR_GIT_KNOWN_SSH_HOSTS = "git.knownsshhosts"
ATTR_GIT_MOUNT_SSH_SOCK = "git.mountsshsock"
ATTR_GIT_CHECKSUM = "git.checksum"
ATTR_GIT_SKIP_SUBMODULES = "git.skipsubmodules"
ATTR_GIT_MTIME = "git.mtime"
ATTR_GIT_FETCH_BY_COMMIT = "git.fetchbycommit"
ATTR_HTTP_CHECKSUM = "http.checksum"
ATTR_HTTP_FILENAME = "http.filename"
ATTR_HTTP_PERM = "http.perm"
ATTR_HTTP_UID = "http.uid"
ATTR_HTTP_GID = "http.gid"
ATTR_HTTP_AUTH_HEADER_SECRET = "http.authheadersecret"
ATTR_HTTP_HEADER_PREFIX = "http.header."
ATTR_OCI_SESSION_ID = "oci.session"
ATTR_OCI_STORE_ID = "oci.store"
ATTR_OCI_LAYER_LIMIT = "oci.layerlimit"

# Secret names git sources ask the session for by default (Go sets them on every git source).
GIT_AUTH_HEADER_KEY = "GIT_AUTH_HEADER"
GIT_AUTH_TOKEN_KEY = "GIT_AUTH_TOKEN"


class ResolveMode(enum.Enum):
    """How an image source resolves its reference (attr ``image.resolvemode``)."""

    DEFAULT = "default"
    FORCE_PULL = "pull"
    PREFER_LOCAL = "local"


def _platform_specific(identifier: str) -> bool:
    # Only images carry a platform: the same local dir, git repo or URL is the same on any platform.
    return identifier.startswith(("docker-image://", "oci-layout://"))


class SourceOp(Vertex):
    """A source vertex: an identifier plus string attrs."""

    __slots__ = ("identifier", "attrs", "constraints", "_output")
    kind = "source"

    def __init__(self, identifier: str, attrs: Mapping[str, str], constraints: Constraints) -> None:
        if not identifier:
            raise InvalidArgumentError("source: identifier can't be empty")
        self.identifier = identifier
        self.attrs: Dict[str, str] = dict(attrs)
        self.constraints = constraints
        self._output = Output(self, 0, constraints.platform)

    def output(self) -> Output:
        return self._output

    def inputs(self) -> Sequence[Output]:
        return ()

    def marshal_op(self, ctx: MarshalContext):
        attrs = dict(self.attrs)
        c = self.constraints
        if (
            self.identifier.startswith("local://")
            and ATTR_LOCAL_SESSION_ID not in attrs
            and ctx.local_unique_id is not None
        ):
            attrs[ATTR_LOCAL_UNIQUE_ID] = ctx.local_unique_id
            c = c.with_caps(_caps.SOURCE_LOCAL_UNIQUE)
        op, md = marshal_constraints(ctx.base, c)
        op.source.identifier = self.identifier
        for k, v in attrs.items():
            op.source.attrs[k] = v
        if not _platform_specific(self.identifier):
            op.ClearField("platform")
        return op, md, c.source_locations


def _source_state(identifier: str, attrs: Mapping[str, str], c: Constraints) -> State:
    return new_state(SourceOp(identifier, attrs, c).output())


def _nonempty_str(value: object, *, op: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{op}: {what} must be a non-empty string, got {value!r}")
    if "\0" in value:
        raise InvalidArgumentError(f"{op}: {what} {value!r} contains a NUL byte")
    return value


def scratch() -> State:
    """The empty filesystem. It is no op: marshaling scratch gives an empty definition."""
    return State()


def image(
    ref: str,
    *,
    platform: Optional[PlatformLike] = None,
    resolve_mode: Union[ResolveMode, str, None] = None,
    layer_limit: Optional[int] = None,
    checksum: Optional[str] = None,
    record_type: Optional[str] = None,
    custom_name: Optional[str] = None,
    ignore_cache: bool = False,
    constraints: Optional[Constraints] = None,
) -> State:
    """A registry image. ``ref`` is normalized like Docker does (``busybox`` ->
    ``docker.io/library/busybox:latest``); ``platform`` picks the variant of a multi-platform image
    (default: the marshal platform). ``layer_limit`` keeps only the first N layers; ``checksum``
    pins the manifest digest the reference must resolve to."""
    op = "image"
    normalized = normalize_image_reference(_nonempty_str(ref, op=op, what="image reference"), op=op)
    c = op_constraints(op, constraints, custom_name=custom_name, ignore_cache=ignore_cache, platform=platform)
    c = c.with_caps(_caps.SOURCE_IMAGE)
    attrs: Dict[str, str] = {}
    if resolve_mode is not None:
        mode = _resolve_mode(resolve_mode)
        if mode is not ResolveMode.DEFAULT:
            attrs[ATTR_IMAGE_RESOLVE_MODE] = mode.value
            if mode is ResolveMode.FORCE_PULL:
                c = c.with_caps(_caps.SOURCE_IMAGE_RESOLVE_MODE)
    if record_type:
        attrs[ATTR_IMAGE_RECORD_TYPE] = _nonempty_str(record_type, op=op, what="record_type")
    if layer_limit is not None:
        if not isinstance(layer_limit, int) or isinstance(layer_limit, bool) or layer_limit < 0:
            raise InvalidArgumentError(f"{op}: layer_limit must be a non-negative int, got {layer_limit!r}")
        attrs[ATTR_IMAGE_LAYER_LIMIT] = str(layer_limit)
        c = c.with_caps(_caps.SOURCE_IMAGE_LAYER_LIMIT)
    if checksum is not None:
        attrs[ATTR_IMAGE_CHECKSUM] = validate_digest(checksum, op=op)
        c = c.with_caps(_caps.SOURCE_IMAGE_CHECKSUM)
    return _source_state("docker-image://" + normalized, attrs, c)


def _resolve_mode(value: Union[ResolveMode, str]) -> ResolveMode:
    if isinstance(value, ResolveMode):
        return value
    for mode in ResolveMode:
        if value in (mode.value, mode.name.lower(), mode.name):
            return mode
    raise InvalidArgumentError(
        f"image: unknown resolve_mode {value!r} (choose one of: default, pull (force_pull), local (prefer_local))"
    )


def _patterns(value: Optional[Iterable[str]], *, op: str, what: str) -> Optional[str]:
    """Go's ``json.Marshal([]string)`` of the patterns, or ``None`` when there are none."""
    if value is None:
        return None
    if isinstance(value, str):
        raise InvalidArgumentError(f"{op}: {what} must be a list of patterns, not the string {value!r}")
    items = list(value)
    for p in items:
        _nonempty_str(p, op=op, what=f"each of {what}")
    return go_json(items) if items else None


def local(
    name: str,
    *,
    include_patterns: Optional[Iterable[str]] = None,
    exclude_patterns: Optional[Iterable[str]] = None,
    follow_paths: Optional[Iterable[str]] = None,
    shared_key_hint: Optional[str] = None,
    session_id: Optional[str] = None,
    differ: Optional[str] = None,
    differ_required: bool = False,
    metadata_only: Optional[Iterable[str]] = None,
    custom_name: Optional[str] = None,
    ignore_cache: bool = False,
    constraints: Optional[Constraints] = None,
) -> State:
    """A directory the client sends over the session (file sync) under ``name``.

    ``differ`` is ``"metadata"`` (default transfer: compare size/mtime/mode) or ``"none"``
    (resend everything). ``metadata_only`` transfers metadata only, except for the listed patterns.
    """
    op = "local"
    _nonempty_str(name, op=op, what="local name")
    c = op_constraints(op, constraints, custom_name=custom_name, ignore_cache=ignore_cache)
    attrs: Dict[str, str] = {}
    if session_id:
        attrs[ATTR_LOCAL_SESSION_ID] = session_id
        c = c.with_caps(_caps.SOURCE_LOCAL_SESSION_ID)
    for key, cap, value, what in (
        (ATTR_LOCAL_INCLUDE_PATTERNS, _caps.SOURCE_LOCAL_INCLUDE_PATTERNS, include_patterns, "include_patterns"),
        (ATTR_LOCAL_FOLLOW_PATHS, _caps.SOURCE_LOCAL_FOLLOW_PATHS, follow_paths, "follow_paths"),
        (ATTR_LOCAL_EXCLUDE_PATTERNS, _caps.SOURCE_LOCAL_EXCLUDE_PATTERNS, exclude_patterns, "exclude_patterns"),
    ):
        encoded = _patterns(value, op=op, what=what)
        if encoded is not None:
            attrs[key] = encoded
            c = c.with_caps(cap)
    if shared_key_hint:
        attrs[ATTR_LOCAL_SHARED_KEY_HINT] = shared_key_hint
        c = c.with_caps(_caps.SOURCE_LOCAL_SHARED_KEY_HINT)
    if differ is not None:
        if differ not in ("none", "metadata"):
            raise InvalidArgumentError(f"{op}: unknown differ {differ!r} (choose 'metadata' or 'none')")
        attrs[ATTR_LOCAL_DIFFER] = differ
        if differ_required:
            c = c.with_caps(_caps.SOURCE_LOCAL_DIFFER)
    elif differ_required:
        raise InvalidArgumentError(f"{op}: differ_required=True needs differ='metadata' or 'none'")
    if metadata_only is not None:
        attrs[ATTR_LOCAL_METADATA_TRANSFER] = "true"
        exceptions = _patterns(metadata_only, op=op, what="metadata_only")
        if exceptions is not None:
            attrs[ATTR_LOCAL_METADATA_TRANSFER_EXCLUDE] = exceptions
        c = c.with_caps(_caps.SOURCE_LOCAL_METADATA_TRANSFER)
    c = c.with_caps(_caps.SOURCE_LOCAL)
    return _source_state("local://" + name, attrs, c)


# -- git -----------------------------------------------------------------------------------------

_PROTO_RE = re.compile(r"^[a-zA-Z0-9]+://")
_SCP_RE = re.compile(r"^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$")
_GIT_PROTOCOLS = ("http", "https", "ssh", "git")


def _parse_git_url(url: str) -> Tuple[str, str, str, str]:
    """``(scheme, host, path, remote)`` like BuildKit's ``gitutil.ParseURL``; remote drops
    query and fragment. Raises ``InvalidReferenceError`` for an unsupported scheme."""
    m = _PROTO_RE.match(url)
    if m is not None:
        scheme = m.group(0)[:-3].lower()
        if scheme not in _GIT_PROTOCOLS:
            raise InvalidReferenceError(
                f"git: unsupported protocol {scheme!r} in {url!r} (use https://, http://, ssh:// or git://)"
            )
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        remote = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return scheme, host, parts.path, remote
    m = _SCP_RE.match(url)
    if m is not None:
        user, host, path = m.group(1), m.group(2), m.group(3)
        return "ssh", host, path, f"{user}@{host}:{path}"
    return "", "", "", ""


def git(
    url: str,
    ref: str = "",
    *,
    subdir: str = "",
    keep_git_dir: bool = False,
    auth_token_secret: Optional[str] = None,
    auth_header_secret: Optional[str] = None,
    known_ssh_hosts: Optional[str] = None,
    mount_ssh_sock: Optional[str] = None,
    checksum: Optional[str] = None,
    skip_submodules: bool = False,
    mtime: Optional[str] = None,
    fetch_by_commit: bool = False,
    custom_name: Optional[str] = None,
    ignore_cache: bool = False,
    constraints: Optional[Constraints] = None,
) -> State:
    """A git checkout. ``url`` may be https://, http://, git://, ssh:// or scp-style
    (``git@host:path``); without a scheme https:// is assumed. ``ref`` is a branch, tag or commit
    (``"ref:subdir"`` is also accepted, as in Docker's git URLs).

    Unlike Go, an ssh URL without ``known_ssh_hosts`` does not trigger a network key scan: the
    compiler never touches the network.
    """
    op = "git"
    _nonempty_str(url, op=op, what="git URL")
    if mtime is not None and mtime not in ("checkout", "commit"):
        raise InvalidArgumentError(f"{op}: mtime must be 'checkout' or 'commit', got {mtime!r}")
    scheme, host, path, remote = _parse_git_url(url)
    if not scheme:
        url = "https://" + url
        scheme, host, path, remote = _parse_git_url(url)
        if not scheme:  # pragma: no cover - https:// always parses
            raise InvalidReferenceError(f"{op}: invalid git URL {url!r}")
    if not host:
        raise InvalidReferenceError(f"{op}: git URL {url!r} has no host")
    url = remote
    ref_part, sep, sub_part = (ref or "").partition(":")
    if sep and not subdir:
        subdir = sub_part
    # Go cleans the subdir as an absolute path, then drops the leading slash.
    subdir = go_path_join("/", subdir or "").lstrip("/") if subdir else ""
    c = op_constraints(op, constraints, custom_name=custom_name, ignore_cache=ignore_cache)
    ident = host + go_path_join("/", path)
    if ref_part or subdir:
        ident += "#" + ref_part
        if subdir:
            ident += ":" + subdir
            c = c.with_caps(_caps.SOURCE_GIT_SUBDIR)
    attrs: Dict[str, str] = {}
    if keep_git_dir:
        attrs[ATTR_GIT_KEEP_DIR] = "true"
        c = c.with_caps(_caps.SOURCE_GIT_KEEP_DIR)
    attrs[ATTR_GIT_FULL_URL] = url
    c = c.with_caps(_caps.SOURCE_GIT_FULL_URL)
    attrs[ATTR_GIT_AUTH_TOKEN_SECRET] = auth_token_secret or GIT_AUTH_TOKEN_KEY
    attrs[ATTR_GIT_AUTH_HEADER_SECRET] = auth_header_secret or GIT_AUTH_HEADER_KEY
    if auth_token_secret or auth_header_secret:
        c = c.with_caps(_caps.SOURCE_GIT_HTTP_AUTH)
    if scheme == "ssh":
        if known_ssh_hosts:
            # Go's KnownSSHHosts: one trailing newline, whatever the input had.
            attrs[ATTR_GIT_KNOWN_SSH_HOSTS] = (
                known_ssh_hosts[:-1] if known_ssh_hosts.endswith("\n") else known_ssh_hosts
            ) + "\n"
        c = c.with_caps(_caps.SOURCE_GIT_KNOWN_SSH_HOSTS)
        attrs[ATTR_GIT_MOUNT_SSH_SOCK] = mount_ssh_sock or "default"
        c = c.with_caps(_caps.SOURCE_GIT_MOUNT_SSH_SOCK)
    elif known_ssh_hosts or mount_ssh_sock:
        raise InvalidArgumentError(
            f"{op}: known_ssh_hosts and mount_ssh_sock only apply to ssh URLs, not {url!r}"
        )
    if checksum:
        if not re.fullmatch(r"[0-9a-f]{4,64}", checksum):
            raise InvalidArgumentError(f"{op}: checksum must be a (prefix of a) hex commit id, got {checksum!r}")
        attrs[ATTR_GIT_CHECKSUM] = checksum
        c = c.with_caps(_caps.SOURCE_GIT_CHECKSUM)
    elif fetch_by_commit:
        raise InvalidArgumentError(f"{op}: fetch_by_commit=True needs checksum= (the commit to fetch)")
    if skip_submodules:
        attrs[ATTR_GIT_SKIP_SUBMODULES] = "true"
        c = c.with_caps(_caps.SOURCE_GIT_SKIP_SUBMODULES)
    if mtime:
        attrs[ATTR_GIT_MTIME] = mtime
        c = c.with_caps(_caps.SOURCE_GIT_MTIME)
    if fetch_by_commit:
        attrs[ATTR_GIT_FETCH_BY_COMMIT] = "true"
        c = c.with_caps(_caps.SOURCE_GIT_FETCH_BY_COMMIT)
    c = c.with_caps(_caps.SOURCE_GIT)
    return _source_state("git://" + ident, attrs, c)


# -- http ----------------------------------------------------------------------------------------


def http(
    url: str,
    *,
    checksum: Optional[str] = None,
    filename: Optional[str] = None,
    chmod: Optional[int] = None,
    uid: int = 0,
    gid: int = 0,
    auth_header_secret: Optional[str] = None,
    accept: Optional[str] = None,
    user_agent: Optional[str] = None,
    custom_name: Optional[str] = None,
    ignore_cache: bool = False,
    constraints: Optional[Constraints] = None,
) -> State:
    """A file downloaded over HTTP(S), placed at ``/<filename>`` (default: from the URL).

    ``checksum`` (``sha256:...``) makes the download verified and cacheable by content.
    """
    op = "http"
    _nonempty_str(url, op=op, what="URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidReferenceError(f"{op}: {url!r} is not an http:// or https:// URL")
    c = op_constraints(op, constraints, custom_name=custom_name, ignore_cache=ignore_cache)
    attrs: Dict[str, str] = {}
    if checksum:
        attrs[ATTR_HTTP_CHECKSUM] = validate_digest(checksum, op=op)
        c = c.with_caps(_caps.SOURCE_HTTP_CHECKSUM)
    if filename:
        if "/" in filename or filename in (".", ".."):
            raise InvalidArgumentError(f"{op}: filename must be a plain file name, got {filename!r}")
        attrs[ATTR_HTTP_FILENAME] = filename
    if chmod is not None:
        if not isinstance(chmod, int) or isinstance(chmod, bool) or not 0 <= chmod <= 0o777:
            raise InvalidArgumentError(f"{op}: chmod must be a permission mode 0..0o777, got {chmod!r}")
        if chmod:
            attrs[ATTR_HTTP_PERM] = "0" + format(chmod, "o")
            c = c.with_caps(_caps.SOURCE_HTTP_PERM)
    for label, value, key in (("uid", uid, ATTR_HTTP_UID), ("gid", gid, ATTR_HTTP_GID)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidArgumentError(f"{op}: {label} must be a non-negative int, got {value!r}")
        if value:
            attrs[key] = str(value)
            c = c.with_caps(_caps.SOURCE_HTTP_UID_GID)
    if auth_header_secret:
        attrs[ATTR_HTTP_AUTH_HEADER_SECRET] = auth_header_secret
        c = c.with_caps(_caps.SOURCE_HTTP_AUTH)
    if accept or user_agent:
        if accept:
            attrs[ATTR_HTTP_HEADER_PREFIX + "accept"] = accept
        if user_agent:
            attrs[ATTR_HTTP_HEADER_PREFIX + "user-agent"] = user_agent
        c = c.with_caps(_caps.SOURCE_HTTP_HEADER)
    c = c.with_caps(_caps.SOURCE_HTTP)
    return _source_state(url, attrs, c)


# -- oci layout ----------------------------------------------------------------------------------


def oci_layout(
    ref: str,
    *,
    session_id: Optional[str] = None,
    store_id: Optional[str] = None,
    layer_limit: Optional[int] = None,
    platform: Optional[PlatformLike] = None,
    custom_name: Optional[str] = None,
    ignore_cache: bool = False,
    constraints: Optional[Constraints] = None,
) -> State:
    """An image from an OCI layout the client exposes over the session (content store
    ``store_id``), pinned by digest: ``ref`` is ``name@sha256:...``."""
    op = "oci_layout"
    parsed = parse_reference(_nonempty_str(ref, op=op, what="reference"), op=op)
    if not parsed.digest:
        raise InvalidReferenceError(f"{op}: reference {ref!r} must be pinned by digest (name@sha256:...)")
    c = op_constraints(op, constraints, custom_name=custom_name, ignore_cache=ignore_cache, platform=platform)
    attrs: Dict[str, str] = {}
    if session_id:
        attrs[ATTR_OCI_SESSION_ID] = session_id
    if store_id:
        attrs[ATTR_OCI_STORE_ID] = store_id
    if layer_limit is not None:
        if not isinstance(layer_limit, int) or isinstance(layer_limit, bool) or layer_limit < 0:
            raise InvalidArgumentError(f"{op}: layer_limit must be a non-negative int, got {layer_limit!r}")
        attrs[ATTR_OCI_LAYER_LIMIT] = str(layer_limit)
    c = c.with_caps(_caps.SOURCE_OCI_LAYOUT)
    return _source_state("oci-layout://" + str(parsed), attrs, c)
