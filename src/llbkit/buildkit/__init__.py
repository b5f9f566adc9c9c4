"""llbkit's BuildKit client: pure Python (protobuf, and gRPC on its own HTTP/2: :mod:`.rpc`), no Go
binary on the client side.

- :class:`Client` talks to one buildkitd (``unix://`` or ``tcp://`` with mutual TLS):
  ``info()``, ``list_workers()``, ``disk_usage()``, ``prune()``, and builds: ``solve()`` (a plain
  definition), ``build()`` (a client-side gateway frontend) and ``build_image()`` (definitions
  per platform plus an :class:`ImageConfig`, inheriting the base image's config);
- :class:`Export` and :class:`CacheOption` describe exporters and cache imports/exports
  (``parse_output``... read buildctl-style CSV specs);
- progress comes as :class:`SolveStatus` events, rendered by :class:`PlainPrinter`,
  :class:`TtyPrinter` or :class:`JsonPrinter`;
- :class:`WorkerPool` (:mod:`.pool`) schedules platforms on a fleet of workers (native first,
  emulation as fallback, load-balanced, health-checked) and :func:`build_multiplatform`
  (:mod:`.multiplatform`) builds one image's platforms in parallel on it, with failover, into one
  OCI index;
- failures raise subclasses of :class:`llbkit.errors.BuildKitError` (see :mod:`.errors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The names below are imported on first use (PEP 562), so that `import llbkit.buildkit` (and the
# CLI's light commands) do not pay for gRPC, protobuf and every module of the client at start-up.
# The imports under TYPE_CHECKING are what type checkers and Pants' dependency inference read.
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.buildkit.client import Client
    from llbkit.buildkit.connection import DEFAULT_ADDRESS, Address, TLSConfig, parse_address
    from llbkit.buildkit.errors import (
        AddressError,
        BuildKitError,
        ConnectionFailedError,
        DaemonError,
        ExportSpecError,
        NoWorkerError,
        SolveCancelledError,
        SolveError,
        TLSConfigError,
        TLSError,
    )
    from llbkit.oci.imageconfig import HistoryEntry, ImageConfig
    from llbkit.buildkit.multiplatform import (
        Attempt,
        MultiPlatformResult,
        PlatformBuild,
        PlatformBuildError,
        PlatformJob,
        build_multiplatform,
    )
    from llbkit.buildkit.options import (
        CacheOption,
        Export,
        parse_cache_export,
        parse_cache_import,
        parse_output,
    )
    from llbkit.buildkit.pool import Lease, WorkerConfig, WorkerPool, WorkerStatus, choose_worker
    from llbkit.buildkit.progress import (
        JsonPrinter,
        PlainPrinter,
        ProgressTracker,
        SolveStatus,
        TtyPrinter,
        Vertex,
        VertexLog,
        VertexStatus,
        VertexWarning,
        make_printer,
    )
    from llbkit.buildkit.solve import BuildResult, Gateway, GatewayRef, ResolvedImage
    from llbkit.buildkit.types import (
        BuildkitVersion,
        DaemonInfo,
        GCPolicy,
        SolveResult,
        UsageRecord,
        WorkerInfo,
    )

_LAZY = {
    "Client": "llbkit.buildkit.client",
    "DEFAULT_ADDRESS": "llbkit.buildkit.connection",
    "Address": "llbkit.buildkit.connection",
    "TLSConfig": "llbkit.buildkit.connection",
    "parse_address": "llbkit.buildkit.connection",
    "AddressError": "llbkit.buildkit.errors",
    "BuildKitError": "llbkit.buildkit.errors",
    "ConnectionFailedError": "llbkit.buildkit.errors",
    "DaemonError": "llbkit.buildkit.errors",
    "ExportSpecError": "llbkit.buildkit.errors",
    "NoWorkerError": "llbkit.buildkit.errors",
    "SolveCancelledError": "llbkit.buildkit.errors",
    "SolveError": "llbkit.buildkit.errors",
    "TLSConfigError": "llbkit.buildkit.errors",
    "TLSError": "llbkit.buildkit.errors",
    "HistoryEntry": "llbkit.oci.imageconfig",
    "ImageConfig": "llbkit.oci.imageconfig",
    "Attempt": "llbkit.buildkit.multiplatform",
    "MultiPlatformResult": "llbkit.buildkit.multiplatform",
    "PlatformBuild": "llbkit.buildkit.multiplatform",
    "PlatformBuildError": "llbkit.buildkit.multiplatform",
    "PlatformJob": "llbkit.buildkit.multiplatform",
    "build_multiplatform": "llbkit.buildkit.multiplatform",
    "CacheOption": "llbkit.buildkit.options",
    "Export": "llbkit.buildkit.options",
    "parse_cache_export": "llbkit.buildkit.options",
    "parse_cache_import": "llbkit.buildkit.options",
    "parse_output": "llbkit.buildkit.options",
    "Lease": "llbkit.buildkit.pool",
    "WorkerConfig": "llbkit.buildkit.pool",
    "WorkerPool": "llbkit.buildkit.pool",
    "WorkerStatus": "llbkit.buildkit.pool",
    "choose_worker": "llbkit.buildkit.pool",
    "JsonPrinter": "llbkit.buildkit.progress",
    "PlainPrinter": "llbkit.buildkit.progress",
    "ProgressTracker": "llbkit.buildkit.progress",
    "SolveStatus": "llbkit.buildkit.progress",
    "TtyPrinter": "llbkit.buildkit.progress",
    "Vertex": "llbkit.buildkit.progress",
    "VertexLog": "llbkit.buildkit.progress",
    "VertexStatus": "llbkit.buildkit.progress",
    "VertexWarning": "llbkit.buildkit.progress",
    "make_printer": "llbkit.buildkit.progress",
    "BuildResult": "llbkit.buildkit.solve",
    "Gateway": "llbkit.buildkit.solve",
    "GatewayRef": "llbkit.buildkit.solve",
    "ResolvedImage": "llbkit.buildkit.solve",
    "BuildkitVersion": "llbkit.buildkit.types",
    "DaemonInfo": "llbkit.buildkit.types",
    "GCPolicy": "llbkit.buildkit.types",
    "SolveResult": "llbkit.buildkit.types",
    "UsageRecord": "llbkit.buildkit.types",
    "WorkerInfo": "llbkit.buildkit.types",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Client",
    "Address",
    "TLSConfig",
    "DEFAULT_ADDRESS",
    "parse_address",
    "Export",
    "CacheOption",
    "parse_output",
    "parse_cache_export",
    "parse_cache_import",
    "ImageConfig",
    "HistoryEntry",
    "Gateway",
    "GatewayRef",
    "BuildResult",
    "ResolvedImage",
    "SolveResult",
    "WorkerInfo",
    "GCPolicy",
    "BuildkitVersion",
    "DaemonInfo",
    "UsageRecord",
    "SolveStatus",
    "Vertex",
    "VertexStatus",
    "VertexLog",
    "VertexWarning",
    "ProgressTracker",
    "PlainPrinter",
    "TtyPrinter",
    "JsonPrinter",
    "make_printer",
    "BuildKitError",
    "AddressError",
    "ConnectionFailedError",
    "TLSConfigError",
    "TLSError",
    "DaemonError",
    "SolveError",
    "SolveCancelledError",
    "ExportSpecError",
    "NoWorkerError",
    "WorkerConfig",
    "WorkerPool",
    "WorkerStatus",
    "Lease",
    "choose_worker",
    "PlatformJob",
    "PlatformBuild",
    "Attempt",
    "MultiPlatformResult",
    "PlatformBuildError",
    "build_multiplatform",
]
