"""Errors raised by the BuildKit client, all subclasses of :class:`llbkit.errors.BuildKitError`.

Each message is one paragraph saying what failed, where (the daemon address, the file, the
vertex) and how to fix it, so the CLI can print it as is.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from llbkit.errors import BuildKitError

__all__ = [
    "BuildKitError",
    "AddressError",
    "ConnectionFailedError",
    "TLSConfigError",
    "TLSError",
    "DaemonTimeoutError",
    "DaemonError",
    "SolveError",
    "SolveCancelledError",
    "ExportSpecError",
    "NoWorkerError",
    "NoWorkerReason",
    "UnusableWorker",
    "TLSProblem",
    "OptionNames",
    "option_names",
    "use_option_names",
]


@dataclass(frozen=True)
class OptionNames:
    """What the user calls each connection setting, so that a hint names what they can change:
    buildctl-style flags for the CLI (the default); a frontend with settings of its own (the
    Pants backend's ``[buildkit]`` options) installs its names with :func:`use_option_names`."""

    address: str = "--addr (or BUILDKIT_HOST)"
    tls_dir: str = "--tlsdir"
    tls_ca: str = "--tlscacert"
    tls_cert: str = "--tlscert"
    tls_key: str = "--tlskey"
    tls_server_name: str = "--tlsservername"
    insecure: str = "--insecure-tcp"  # "": the frontend has no way to ask for plain TCP
    timeout: str = "--timeout"
    start_hint: str = (
        "Start one with `buildkitd --addr unix:///run/buildkit/buildkitd.sock` (or `--addr "
        "tcp://0.0.0.0:1234` with --tlscacert/--tlscert/--tlskey), or point --addr / BUILDKIT_HOST "
        "at a running daemon."
    )


_names = OptionNames()


def option_names() -> OptionNames:
    return _names


def use_option_names(names: OptionNames) -> None:
    """Name the settings in every later error message as ``names`` does (process-wide: a process
    has one frontend)."""
    global _names
    _names = names


class TLSProblem(enum.Enum):
    """What went wrong in a TLS connection to a daemon (what callers branch on, never the text)."""

    CLIENT_CERT_REQUIRED = "the daemon requires a client certificate, and none was given"
    CLIENT_CERT_REJECTED = "the daemon rejected the client certificate (it is not signed by a CA the daemon trusts)"
    UNKNOWN_SERVER_CA = "the daemon's certificate is not signed by the given CA"
    SERVER_NAME_MISMATCH = "the daemon's certificate does not name this host"
    DAEMON_WITHOUT_TLS = "the daemon does not speak TLS on this port"
    DAEMON_WANTS_TLS = "the daemon speaks TLS on this port, and the connection was plain TCP"
    HANDSHAKE = "the TLS handshake failed"

    def hint(self, names: Optional[OptionNames] = None) -> str:
        n = names or _names
        return {
            TLSProblem.CLIENT_CERT_REQUIRED: f"give a client certificate and key ({n.tls_cert} and {n.tls_key}, "
                                             f"or {n.tls_dir} with cert.pem and key.pem)",
            TLSProblem.CLIENT_CERT_REJECTED: f"give a client certificate ({n.tls_cert}, {n.tls_key}) signed by "
                                             "the CA the daemon was started with (its --tlscacert)",
            TLSProblem.UNKNOWN_SERVER_CA: f"give the CA that signed the daemon's certificate ({n.tls_ca}, or "
                                          f"ca.pem in {n.tls_dir})",
            TLSProblem.SERVER_NAME_MISMATCH: f"set {n.tls_server_name} to a name the daemon's certificate holds",
            TLSProblem.DAEMON_WITHOUT_TLS: (f"check the port, or drop the TLS settings ({n.insecure}) if the "
                                            "daemon really listens without TLS" if n.insecure else
                                            "check the port, and start the daemon with TLS (--tlscacert, "
                                            "--tlscert, --tlskey): tcp:// workers are reached over TLS only"),
            TLSProblem.DAEMON_WANTS_TLS: f"give the daemon's CA and a client certificate ({n.tls_dir}, or "
                                         f"{n.tls_ca}/{n.tls_cert}/{n.tls_key})",
            TLSProblem.HANDSHAKE: f"check the CA, client certificate and key ({n.tls_ca}, {n.tls_cert}, "
                                  f"{n.tls_key})",
        }[self]


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
    """The TLS handshake with the daemon failed; ``problem`` (a :class:`TLSProblem`) says what
    the daemon refused (unknown CA, missing client certificate...)."""

    def __init__(self, message: str, address: str, problem: "TLSProblem" = TLSProblem.HANDSHAKE) -> None:
        super().__init__(message, address)
        self.problem = problem


class DaemonTimeoutError(ConnectionFailedError):
    """The daemon accepted the connection but did not answer within ``timeout`` seconds."""

    def __init__(self, message: str, address: str, timeout: Optional[float] = None) -> None:
        super().__init__(message, address)
        self.timeout = timeout


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
