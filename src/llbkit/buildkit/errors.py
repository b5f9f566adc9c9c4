"""Errors raised by the BuildKit client, all subclasses of :class:`llbkit.errors.BuildKitError`.

Each message is one paragraph saying what failed, where (the daemon address, the file, the
vertex) and how to fix it, so the CLI can print it as is.
"""

from __future__ import annotations

import enum
from typing import Optional, Sequence, Tuple

from llbkit.errors import BuildKitError

__all__ = [
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
    "NoWorkerReason",
    "UnusableWorker",
]


class AddressError(BuildKitError, ValueError):
    """A daemon address that is not ``unix://PATH`` or ``tcp://HOST:PORT``."""


class ConnectionFailedError(BuildKitError):
    """The daemon could not be reached at its address."""

    def __init__(self, message: str, address: str) -> None:
        super().__init__(message)
        self.address = address


class TLSConfigError(BuildKitError):
    """A TLS file is missing, unreadable or not PEM, or TLS options contradict each other."""

    def __init__(self, message: str, path: Optional[str] = None) -> None:
        super().__init__(message)
        self.path = path


class TLSError(ConnectionFailedError):
    """The TLS handshake with the daemon failed (unknown CA, missing client certificate...)."""


class DaemonError(BuildKitError):
    """buildkitd answered a request with an error (other than a failed solve)."""

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code


class SolveError(BuildKitError):
    """A build failed on the daemon.

    ``vertex`` is the failing step's name, ``command`` the process it ran (when it was a RUN),
    ``exit_code`` the process' exit code and ``log_tail`` its last output lines; ``detail`` is
    BuildKit's own message. ``vertex_digest``, ``exit_code``, ``command`` and ``sources`` (source
    locations, :class:`~llbkit.buildkit.errdetails.SourceRange`) come from the typed error
    details the daemon sends along, when it does.
    """

    def __init__(
        self,
        message: str,
        *,
        detail: str = "",
        vertex: Optional[str] = None,
        command: Optional[str] = None,
        exit_code: Optional[int] = None,
        log_tail: Sequence[str] = (),
        vertex_digest: Optional[str] = None,
        sources: Sequence[object] = (),
    ) -> None:
        super().__init__(message)
        self.vertex_digest = vertex_digest
        self.sources: Tuple[object, ...] = tuple(sources)
        self.detail = detail
        self.vertex = vertex
        self.command = command
        self.exit_code = exit_code
        self.log_tail: Tuple[str, ...] = tuple(log_tail)


class SolveCancelledError(BuildKitError):
    """The build was cancelled by the client (interrupt or cancel event); the daemon stopped it."""


class ExportSpecError(BuildKitError, ValueError):
    """An ``--output``, ``--export-cache``, ``--import-cache`` or ``--secret`` spec is invalid."""


class NoWorkerReason(enum.Enum):
    """Why a worker of a pool cannot take a platform: what callers branch on (never the text)."""

    NOT_CHECKED = "not checked yet"
    UNREACHABLE = "unreachable"
    NO_PLATFORMS = "reports no platforms"
    WRONG_PLATFORM = "cannot build the platform"
    EMULATION_DISALLOWED = "can only emulate the platform, and emulation is disallowed"
    FAILED = "failed when tried"
    ALREADY_TRIED = "already tried"
    USABLE = "usable"


class UnusableWorker(tuple):  # type: ignore[type-arg]
    """``(worker, reason text)``, which unpacks as the pair it always was, and ``kind``, the
    :class:`NoWorkerReason`, so callers need not match the text."""

    kind: NoWorkerReason

    def __new__(cls, worker: str, reason: str, kind: NoWorkerReason = NoWorkerReason.FAILED) -> "UnusableWorker":
        self = super().__new__(cls, (worker, reason))
        self.kind = kind
        return self

    @property
    def worker(self) -> str:
        return str(self[0])

    @property
    def reason(self) -> str:
        return str(self[1])

    def __repr__(self) -> str:
        return f"UnusableWorker({self[0]!r}, {self[1]!r}, {self.kind})"


class NoWorkerError(BuildKitError):
    """No worker of a pool can build a platform (any more).

    ``platform`` is the platform; ``workers`` is one :class:`UnusableWorker` (``(worker, reason)``
    with a ``kind``) for every worker of the pool: the error it failed with when it was tried, or
    why it could not be used. Plain pairs given in are taken as :attr:`NoWorkerReason.FAILED`.
    """

    def __init__(self, platform: str, workers: Sequence[Tuple[str, str]], message: str = "") -> None:
        entries = tuple(w if isinstance(w, UnusableWorker) else UnusableWorker(w[0], w[1]) for w in workers)
        lines = "".join(f"\n  - {w}: {r}" for w, r in entries)
        super().__init__((message or f"no worker can build {platform}") + ":" + lines)
        self.platform = platform
        self.workers: Tuple[UnusableWorker, ...] = entries
