"""llbkit's BuildKit client: pure Python (grpcio + protobuf), no Go binary on the client side.

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
from llbkit.buildkit.imageconfig import HistoryEntry, ImageConfig
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
