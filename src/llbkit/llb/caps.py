"""LLB capability IDs (BuildKit v0.32 ``solver/pb`` caps), and the check a client runs against them.

Every op lists in its metadata the caps it relies on; buildkitd refuses a definition naming a cap it
does not know, and a client can compare :func:`required_caps` of a definition with the LLB caps a
worker advertises (gateway ``Ping``) before solving, to fail early with a clear message.

The strings are wire facts, typos included (``soruce.http.uidgid``).
"""

from __future__ import annotations

from typing import AbstractSet, Iterable

__all__ = ["ALL_CAPS", "SUPPORTED_CAPS", "missing_caps"]

# Sources.
SOURCE_IMAGE = "source.image"
SOURCE_IMAGE_RESOLVE_MODE = "source.image.resolvemode"
SOURCE_IMAGE_LAYER_LIMIT = "source.image.layerlimit"
SOURCE_IMAGE_CHECKSUM = "source.image.checksum"
SOURCE_LOCAL = "source.local"
SOURCE_LOCAL_UNIQUE = "source.local.unique"
SOURCE_LOCAL_SESSION_ID = "source.local.sessionid"
SOURCE_LOCAL_INCLUDE_PATTERNS = "source.local.includepatterns"
SOURCE_LOCAL_FOLLOW_PATHS = "source.local.followpaths"
SOURCE_LOCAL_EXCLUDE_PATTERNS = "source.local.excludepatterns"
SOURCE_LOCAL_SHARED_KEY_HINT = "source.local.sharedkeyhint"
SOURCE_LOCAL_DIFFER = "source.local.differ"
SOURCE_LOCAL_METADATA_TRANSFER = "source.local.metadatatransfer"
SOURCE_GIT = "source.git"
SOURCE_GIT_KEEP_DIR = "source.git.keepgitdir"
SOURCE_GIT_FULL_URL = "source.git.fullurl"
SOURCE_GIT_HTTP_AUTH = "source.git.httpauth"
SOURCE_GIT_KNOWN_SSH_HOSTS = "source.git.knownsshhosts"
SOURCE_GIT_MOUNT_SSH_SOCK = "source.git.mountsshsock"
SOURCE_GIT_SUBDIR = "source.git.subdir"
SOURCE_GIT_CHECKSUM = "source.git.checksum"
SOURCE_GIT_SKIP_SUBMODULES = "source.git.skipsubmodules"
SOURCE_GIT_SIGNATURE_VERIFY = "source.git.signatureverify"
SOURCE_GIT_MTIME = "source.git.mtime"
SOURCE_GIT_FETCH_BY_COMMIT = "source.git.fetchbycommit"
SOURCE_GIT_BUNDLE = "source.git.bundle"
SOURCE_GIT_CHECKOUT_BUNDLE = "source.git.checkoutbundle"
SOURCE_HTTP = "source.http"
SOURCE_HTTP_AUTH = "source.http.auth"
SOURCE_HTTP_CHECKSUM = "source.http.checksum"
SOURCE_HTTP_PERM = "source.http.perm"
SOURCE_HTTP_UID_GID = "soruce.http.uidgid"  # sic: the misspelling is the wire value
SOURCE_HTTP_HEADER = "source.http.header"
SOURCE_HTTP_SIGNATURE_VERIFY = "source.http.signatureverify"
SOURCE_IMAGE_BLOB = "source.imageblob"
SOURCE_OCI_LAYOUT = "source.ocilayout"
BUILD_OP_LLB_FILENAME = "source.buildop.llbfilename"

# Exec.
EXEC_META_BASE = "exec.meta.base"
EXEC_META_CGROUP_PARENT = "exec.meta.cgroup.parent"
EXEC_META_NETWORK = "exec.meta.network"
EXEC_META_NETWORK_PROXY = "exec.meta.network.proxy"
EXEC_META_PROXY = "exec.meta.proxyenv"
EXEC_META_SECURITY = "exec.meta.security"
EXEC_META_SECURITY_DEVICE_WHITELIST_V1 = "exec.meta.security.devices.v1"
EXEC_META_SETS_DEFAULT_PATH = "exec.meta.setsdefaultpath"
EXEC_META_ULIMIT = "exec.meta.ulimit"
EXEC_META_CDI = "exec.meta.cdi"
EXEC_META_REMOVE_MOUNT_STUBS_RECURSIVE = "exec.meta.removemountstubs.recursive"
EXEC_META_LINUX_RESOURCES = "exec.meta.linux.resources"
EXEC_MOUNT_BIND = "exec.mount.bind"
EXEC_MOUNT_BIND_READWRITE_NO_OUTPUT = "exec.mount.bind.readwrite-nooutput"
EXEC_MOUNT_CACHE = "exec.mount.cache"
EXEC_MOUNT_CACHE_SHARING = "exec.mount.cache.sharing"
EXEC_MOUNT_SELECTOR = "exec.mount.selector"
EXEC_MOUNT_TMPFS = "exec.mount.tmpfs"
EXEC_MOUNT_TMPFS_SIZE = "exec.mount.tmpfs.size"
EXEC_MOUNT_SECRET = "exec.mount.secret"
EXEC_MOUNT_SSH = "exec.mount.ssh"
EXEC_MOUNT_CONTENT_CACHE = "exec.mount.cache.content"
EXEC_CGROUPS_MOUNTED = "exec.cgroup"
EXEC_SECRET_ENV = "exec.secretenv"
EXEC_VALID_EXIT_CODE = "exec.validexitcode"

# File.
FILE_BASE = "file.base"
FILE_RM_WILDCARD = "file.rm.wildcard"
FILE_COPY_INCLUDE_EXCLUDE_PATTERNS = "file.copy.includeexcludepatterns"
FILE_COPY_REQUIRED_PATHS = "file.copy.requiredpaths"
FILE_RM_NO_FOLLOW_SYMLINK = "file.rm.nofollowsymlink"
FILE_COPY_ALWAYS_REPLACE_EXISTING_DEST_PATHS = "file.copy.alwaysreplaceexistingdestpaths"
FILE_COPY_MODE_STRING = "file.copy.modestring"
FILE_SYMLINK_CREATE = "file.symlink.create"

# Definition-wide (declared on the terminal op).
CONSTRAINTS = "constraints"
PLATFORM = "platform"
META_IGNORE_CACHE = "meta.ignorecache"
META_DESCRIPTION = "meta.description"
META_EXPORT_CACHE = "meta.exportcache"

# Other ops.
MERGE_OP = "mergeop"
DIFF_OP = "diffop"
PASSTHROUGH_OP = "passthroughop"

# Not LLB ops, but in the same cap list (cache backends, exporters, policy, GC, history).
REMOTE_CACHE_GHA = "cache.gha"
REMOTE_CACHE_S3 = "cache.s3"
REMOTE_CACHE_AZBLOB = "cache.azblob"
EXPORTER_IMAGE_ANNOTATIONS = "exporter.image.annotations"
EXPORTER_IMAGE_ATTESTATIONS = "exporter.image.attestations"
EXPORTER_SOURCE_DATE_EPOCH = "exporter.sourcedateepoch"
EXPORTER_MULTIPLE = "exporter.multiple"
EXPORTER_SESSION = "exporter.session"
SOURCE_POLICY = "source.policy"
SOURCE_POLICY_SESSION = "source.policy.session"
GC_FREE_SPACE_FILTER = "gc.freespacefilter"
HISTORY_FILTERS = "history.filter"

ALL_CAPS: AbstractSet[str] = frozenset(
    v for k, v in list(globals().items()) if k.isupper() and isinstance(v, str)
)
"""Every cap ID BuildKit v0.32 names in its source."""

# Two IDs are declared upstream but never registered in buildkitd's cap list, so a definition
# naming them is rejected ("unknown cap") even by v0.32.2. Go's client never emits them (its file
# op cap hook is never reached); llbkit must not emit them either.
UNREGISTERED_CAPS: AbstractSet[str] = frozenset(
    {EXEC_META_REMOVE_MOUNT_STUBS_RECURSIVE, FILE_COPY_MODE_STRING}
)

SUPPORTED_CAPS: AbstractSet[str] = ALL_CAPS - UNREGISTERED_CAPS
"""The caps buildkitd v0.32.2 accepts in op metadata (all registered caps are enabled)."""


def missing_caps(required: Iterable[str], supported: Iterable[str]) -> list:
    """The caps in ``required`` that ``supported`` lacks, sorted (empty when all are there)."""
    have = set(supported)
    return sorted(set(required) - have)
