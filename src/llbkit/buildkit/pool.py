"""A pool of buildkitd workers for multi-platform builds: which worker builds which platform.

::

    from llbkit.buildkit import TLSConfig, WorkerConfig, WorkerPool

    pool = WorkerPool([
        WorkerConfig("tcp://amd64.build:1234", tls=TLSConfig.from_dir("certs"), name="amd64-1"),
        WorkerConfig("tcp://arm64.build:1234", tls=TLSConfig.from_dir("certs"), name="arm64-1"),
    ])
    with pool.acquire("linux/arm64") as lease:      # native arm64 worker if one is reachable
        lease.client.build(...)

The pool learns each worker's platforms from ``ListWorkers`` (the first one is native, the others
are emulated) unless the configuration declares them, and checks a worker's health (``Info`` and
``ListWorkers`` with a short timeout) before it hands it out; a failed check marks the worker
unreachable with its error, and it is checked again after ``health_ttl`` seconds.

For each platform, :func:`choose_worker` ranks the reachable workers: native before emulating
(emulation can be disallowed), then fewest builds in flight, then configuration order, so several
images spread over the fleet. It is a pure function of :class:`WorkerStatus` records, and
:meth:`WorkerPool.explain` says why each worker was not usable. The pool is thread-safe.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from llbkit.buildkit.connection import TLSConfig, resolve_address
from llbkit.buildkit.errors import BuildKitError, NoWorkerError, NoWorkerReason, UnusableWorker
from llbkit.buildkit.types import BuildkitVersion
from llbkit.errors import InvalidPlatformError
from llbkit.platforms import canonical_platform

__all__ = [
    "WorkerConfig",
    "WorkerStatus",
    "WorkerPool",
    "Lease",
    "choose_worker",
    "unusable",
    "unusable_reason",
    "normalize_platform",
    "load_pool_config",
]


def normalize_platform(platform: str) -> str:
    """``os/arch[/variant]`` normalized as containerd does (``aarch64`` -> ``arm64``, default
    variants such as ``arm64/v8`` dropped): :func:`llbkit.platforms.canonical_platform`, raising
    this stage's error, which the pool's callers catch."""
    try:
        return canonical_platform(platform)
    except InvalidPlatformError:
        raise BuildKitError(
            f"invalid platform {platform!r}: expected os/arch[/variant], e.g. linux/arm64"
        ) from None


@dataclass(frozen=True)
class WorkerConfig:
    """One configured worker: ``address`` (``unix://PATH`` or ``tcp://HOST:PORT``), TLS settings
    (``tls``, or ``insecure=True`` for a plain ``tcp://``), optional declared ``platforms`` (the
    first is native; when given they replace what the daemon reports) and a ``name`` (default:
    the address)."""

    address: str
    tls: Optional[TLSConfig] = None
    insecure: bool = False
    platforms: Tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        resolve_address(self.address)  # fail early on a bad address
        object.__setattr__(self, "platforms", tuple(normalize_platform(p) for p in self.platforms))
        if not self.name:
            object.__setattr__(self, "name", self.address)


@dataclass(frozen=True)
class WorkerStatus:
    """What the pool knows of a worker: its ``platforms`` (first = native; empty until checked),
    ``version``, whether it was ``reachable`` at the last check (``error`` says why not, ``None``
    before any check) and ``in_flight`` builds."""

    name: str
    address: str
    platforms: Tuple[str, ...] = ()
    version: Optional[BuildkitVersion] = None
    reachable: Optional[bool] = None
    error: str = ""
    in_flight: int = 0
    checked_at: float = 0.0
    index: int = 0  # position in the configuration (the last tie-breaker)

    @property
    def native_platform(self) -> Optional[str]:
        return self.platforms[0] if self.platforms else None

    @property
    def emulated_platforms(self) -> Tuple[str, ...]:
        return self.platforms[1:]

    def can_build(self, platform: str, allow_emulation: bool = True) -> bool:
        return unusable_reason(self, platform, allow_emulation) is None

    def is_native(self, platform: str) -> bool:
        return self.native_platform == normalize_platform(platform)


def unusable(status: WorkerStatus, platform: str, allow_emulation: bool = True
             ) -> Optional[Tuple[NoWorkerReason, str]]:
    """Why ``status`` cannot build ``platform`` now (the kind and the text), or ``None`` when it
    can. ``status.platforms`` are canonical, so comparing text is containerd's matching."""
    p = normalize_platform(platform)
    if status.reachable is None:
        return NoWorkerReason.NOT_CHECKED, "not checked yet"
    if not status.reachable:
        return NoWorkerReason.UNREACHABLE, f"unreachable: {status.error}"
    if not status.platforms:
        return NoWorkerReason.NO_PLATFORMS, "reports no platforms"
    if status.platforms[0] == p:
        return None
    if p not in status.platforms:
        return (NoWorkerReason.WRONG_PLATFORM,
                f"cannot build {p} (native {status.platforms[0]}; it can build {', '.join(status.platforms)})")
    if not allow_emulation:
        return (NoWorkerReason.EMULATION_DISALLOWED,
                f"can only emulate {p} (native {status.platforms[0]}) and emulation is disallowed "
                f"(allow emulation, or add a worker native to {p})")
    return None


def unusable_reason(status: WorkerStatus, platform: str, allow_emulation: bool = True) -> Optional[str]:
    """The text of :func:`unusable`: why ``status`` cannot build ``platform`` now, or ``None``."""
    why = unusable(status, platform, allow_emulation)
    return None if why is None else why[1]


def choose_worker(statuses: Sequence[WorkerStatus], platform: str, *, allow_emulation: bool = True,
                  exclude: Sequence[str] = ()) -> Optional[WorkerStatus]:
    """The worker to build ``platform`` on, or ``None``: native first, then emulating (when
    allowed); ties broken by fewest builds in flight, then configuration order. Workers named in
    ``exclude`` (already tried) are skipped."""
    p = normalize_platform(platform)
    usable = [s for s in statuses
              if s.name not in exclude and unusable_reason(s, p, allow_emulation) is None]
    if not usable:
        return None
    return min(usable, key=lambda s: (0 if s.platforms[0] == p else 1, s.in_flight, s.index))


class Lease:
    """A worker handed out for one build; ``release()`` (or leaving the ``with``) frees it."""

    def __init__(self, pool: "WorkerPool", status: WorkerStatus, client: Any, platform: str,
                 slot: Any = None) -> None:
        self._pool = pool
        self._slot = slot
        self.status = status
        self.client = client
        self.platform = normalize_platform(platform)
        self.emulated = not status.is_native(platform)
        self._released = False

    @property
    def name(self) -> str:
        return self.status.name

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._pool._release(self.status.name)
            if self._slot is not None:
                self._slot.release()

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        how = "emulated" if self.emulated else "native"
        return f"<Lease {self.platform} on {self.name} ({how})>"


ClientFactory = Callable[[WorkerConfig, float], Any]


def _default_client(config: WorkerConfig, timeout: float) -> Any:
    from llbkit.buildkit.client import Client

    return Client(config.address, tls=config.tls, insecure=config.insecure, timeout=timeout)


class WorkerPool:
    """Workers from configuration, checked before use, leased per platform (thread-safe).

    ``health_timeout`` bounds each health check; a check older than ``health_ttl`` seconds is
    redone before the worker is handed out. ``client_factory(config, timeout)`` makes the
    client of a worker (default: :class:`~llbkit.buildkit.Client`); tests pass fakes.
    ``shared_load`` (a :class:`~llbkit.buildkit.shared_load.SharedLoad`) counts the builds in
    flight of other processes too, so that pools in several processes spread their builds.
    ``max_in_flight`` (0: no limit) is the most builds a worker runs at once (counting other
    processes' through ``shared_load``): :meth:`acquire` waits while the worker it would choose
    is that busy, polling every ``wait_poll`` seconds.
    """

    def __init__(self, workers: Sequence[WorkerConfig], *, health_timeout: float = 5.0,
                 health_ttl: float = 30.0, client_factory: Optional[ClientFactory] = None,
                 shared_load: Any = None, max_in_flight: int = 0, wait_poll: float = 0.2) -> None:
        if not workers:
            raise BuildKitError("a worker pool needs at least one worker: configure an address")
        names = [w.name for w in workers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise BuildKitError(f"worker names must be unique; {', '.join(dup)} appears more than once "
                                "(give each worker its own name)")
        self.configs: Tuple[WorkerConfig, ...] = tuple(workers)
        self.health_timeout = health_timeout
        self.health_ttl = health_ttl
        self._factory = client_factory or _default_client
        self._shared = shared_load
        if max_in_flight < 0:
            raise BuildKitError(f"the most builds per worker must be 0 (no limit) or more, not {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.wait_poll = wait_poll
        self._lock = threading.Lock()
        self._status: Dict[str, WorkerStatus] = {
            w.name: WorkerStatus(name=w.name, address=w.address, platforms=w.platforms, index=i)
            for i, w in enumerate(workers)
        }
        self._clients: Dict[str, Any] = {}
        self._probe_locks: Dict[str, threading.Lock] = {w.name: threading.Lock() for w in workers}

    # -- status -------------------------------------------------------------------------------
    def config(self, name: str) -> WorkerConfig:
        for c in self.configs:
            if c.name == name:
                return c
        raise KeyError(name)

    def statuses(self) -> List[WorkerStatus]:
        """A snapshot of every worker's status, in configuration order."""
        with self._lock:
            return sorted(self._status.values(), key=lambda s: s.index)

    def client(self, name: str) -> Any:
        with self._lock:
            c = self._clients.get(name)
            if c is None:
                c = self._clients[name] = self._factory(self.config(name), self.health_timeout)
            return c

    def check(self, name: str) -> WorkerStatus:
        """Check one worker now (Info and ListWorkers, short timeout) and record the result."""
        cfg = self.config(name)
        with self._probe_locks[name]:
            try:
                client = self.client(name)
                version = client.info().version
                workers = client.list_workers()
                learned: Tuple[str, ...] = ()
                for w in workers:
                    for p in w.platforms:
                        n = normalize_platform(p)
                        if n not in learned:
                            learned += (n,)
                platforms = cfg.platforms or learned
                update: Dict[str, Any] = dict(platforms=platforms, version=version, reachable=True, error="")
            except Exception as e:  # any failure to answer makes the worker unusable for now
                update = dict(reachable=False, error=_one_line(e), platforms=cfg.platforms)
            with self._lock:
                st = replace(self._status[name], checked_at=time.monotonic(), **update)
                self._status[name] = st
            return st

    def check_all(self, *, only_stale: bool = False) -> List[WorkerStatus]:
        """Check the workers (in parallel); with ``only_stale``, those not checked recently."""
        now = time.monotonic()
        with self._lock:
            names = [s.name for s in sorted(self._status.values(), key=lambda s: s.index)
                     if not only_stale or s.reachable is None or now - s.checked_at > self.health_ttl]
        threads = [threading.Thread(target=self.check, args=(n,), name=f"llbkit-check-{n}", daemon=True)
                   for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.statuses()

    def mark_unreachable(self, name: str, error: BaseException | str) -> None:
        """Record that ``name`` failed (it is checked again after ``health_ttl``)."""
        with self._lock:
            self._status[name] = replace(self._status[name], reachable=False, error=_one_line(error),
                                         checked_at=time.monotonic())

    # -- leasing --------------------------------------------------------------------------------
    def acquire(self, platform: str, *, allow_emulation: bool = True, exclude: Sequence[str] = ()) -> Lease:
        """Lease the best worker for ``platform`` (see :func:`choose_worker`), checking stale
        workers first; raise :class:`NoWorkerError` listing why each worker is unusable. With
        ``max_in_flight``, waits while the worker it would choose runs that many builds (the
        choice is made again each time: native first, then the least busy)."""
        self.check_all(only_stale=True)
        while True:
            chosen, slot, full = self._try_acquire(platform, allow_emulation, exclude)
            if not full:
                break
            time.sleep(self.wait_poll)
            self.check_all(only_stale=True)
        if chosen is None:
            raise NoWorkerError(normalize_platform(platform),
                                self.explain(platform, allow_emulation=allow_emulation, exclude=exclude))
        return Lease(self, chosen, self.client(chosen.name), platform, slot)

    def _try_acquire(self, platform: str, allow_emulation: bool, exclude: Sequence[str]) -> Tuple[Any, Any, bool]:
        """``(chosen status or None, slot or None, whether the chosen worker was full)``."""
        slot = None
        with self._choosing():
            with self._lock:
                statuses = list(self._status.values())
            if self._shared is not None:  # other processes' builds count too
                statuses = [replace(s, in_flight=s.in_flight + self._shared.count(s.address)) for s in statuses]
            with self._lock:
                chosen = choose_worker(statuses, platform, allow_emulation=allow_emulation, exclude=exclude)
                if chosen is not None and self.max_in_flight and chosen.in_flight >= self.max_in_flight:
                    return None, None, True
                if chosen is not None:
                    chosen = replace(self._status[chosen.name], in_flight=self._status[chosen.name].in_flight + 1)
                    self._status[chosen.name] = chosen
            if chosen is not None and self._shared is not None:
                slot = self._shared.take(chosen.address)
        return chosen, slot, False

    def _choosing(self) -> Any:
        import contextlib

        return self._shared.choosing() if self._shared is not None else contextlib.nullcontext()

    def _release(self, name: str) -> None:
        with self._lock:
            st = self._status[name]
            self._status[name] = replace(st, in_flight=max(0, st.in_flight - 1))

    def explain(self, platform: str, *, allow_emulation: bool = True, exclude: Sequence[str] = (),
                errors: Optional[Dict[str, str]] = None) -> List[UnusableWorker]:
        """``(worker, reason)`` with its ``kind`` for every worker that cannot take ``platform``;
        ``errors`` gives the failure of the workers already tried (in ``exclude``)."""
        out = []
        for s in self.statuses():
            if s.name in exclude:
                error = (errors or {}).get(s.name)
                why = (NoWorkerReason.FAILED, error) if error else (NoWorkerReason.ALREADY_TRIED, "already tried")
            else:
                why = unusable(s, platform, allow_emulation) or (NoWorkerReason.USABLE, "usable")
            name = s.name if s.name == s.address else f"{s.name} ({s.address})"
            out.append(UnusableWorker(name, why[1], why[0]))
        return out

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            try:
                c.close()
            except Exception:
                pass

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[WorkerStatus]:
        return iter(self.statuses())


def _one_line(e: "BaseException | str") -> str:
    text = e if isinstance(e, str) else (str(e) or type(e).__name__)
    return " ".join(text.split())


def load_pool_config(path: str) -> List[WorkerConfig]:
    """Workers from a JSON file: ``{"workers": [{"address": ..., "name": ..., "platforms": [...],
    "tlsdir": DIR | "ca_cert"/"cert"/"key": FILE, "server_name": ..., "insecure": bool}]}``.
    Relative file paths are relative to the config file's directory."""
    import json
    import os

    from llbkit.buildkit.errors import TLSConfigError

    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except OSError as e:
        raise BuildKitError(f"cannot read the worker pool config {path!r}: {e.strerror or e}") from None
    except ValueError as e:
        raise BuildKitError(f"the worker pool config {path!r} is not valid JSON: {e}") from None
    entries = doc.get("workers") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise BuildKitError(f"the worker pool config {path!r} needs a non-empty \"workers\" list, e.g. "
                            '{"workers": [{"address": "tcp://arm64.build:1234", "tlsdir": "certs"}]}')
    base = os.path.dirname(os.path.abspath(path))
    known = {"address", "name", "platforms", "tlsdir", "ca_cert", "cert", "key", "server_name", "insecure"}

    def rel(p: Optional[str]) -> Optional[str]:
        return None if p is None else os.path.join(base, os.path.expanduser(p))

    out = []
    for i, e in enumerate(entries):
        where = f"{path}: workers[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("address"), str):
            raise BuildKitError(f"{where}: each worker needs an \"address\" (unix://PATH or tcp://HOST:PORT)")
        unknown = sorted(set(e) - known)
        if unknown:
            raise BuildKitError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        tls = None
        if e.get("tlsdir"):
            if any(e.get(k) for k in ("ca_cert", "cert", "key")):
                raise TLSConfigError(f"{where}: give either tlsdir or ca_cert/cert/key, not both")
            tls = TLSConfig.from_dir(rel(e["tlsdir"]), server_name=e.get("server_name"))  # type: ignore[arg-type]
        elif any(e.get(k) for k in ("ca_cert", "cert", "key")):
            tls = TLSConfig(ca_cert=rel(e.get("ca_cert")), cert=rel(e.get("cert")), key=rel(e.get("key")),
                            server_name=e.get("server_name"))
        out.append(WorkerConfig(e["address"], tls=tls, insecure=bool(e.get("insecure", False)),
                                platforms=tuple(e.get("platforms") or ()), name=str(e.get("name") or "")))
    return out
