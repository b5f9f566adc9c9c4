"""The worker pool a build solves on: the configured workers, or the auto-started local buildkitd.

A worker is written ``ADDRESS`` or ``ADDRESS=PLATFORM[,PLATFORM...]`` (its platforms, native
first, when they should not be learned from the daemon), e.g. ``tcp://10.0.0.5:1234=linux/arm64``;
:func:`parse_worker` turns that into a :class:`~llbkit.buildkit.pool.WorkerConfig` (TLS applies
to ``tcp://`` addresses only). Which worker builds which platform is the pool's job
(:func:`llbkit.buildkit.pool.choose_worker`: native first, then fewest builds in flight).

:class:`LazyPool` makes the :class:`~llbkit.buildkit.pool.WorkerPool` on first use only, so a
build served from the content cache connects to nothing and starts no daemon. With no workers
configured and ``auto_start``, that first use starts (or finds) the local buildkitd.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping, Optional, Sequence, Tuple

from llbkit.buildkit.connection import TLSConfig
from llbkit.buildkit.errors import BuildKitError
from llbkit.buildkit.pool import WorkerConfig, WorkerPool

__all__ = ["LazyPool", "parse_worker", "NoWorkersConfiguredError"]


class NoWorkersConfiguredError(BuildKitError):
    """There is nothing to solve on: no workers configured and auto-start is off."""


def parse_worker(text: str, tls: Optional[TLSConfig] = None) -> WorkerConfig:
    """``ADDRESS[=PLATFORM,...]`` -> :class:`WorkerConfig`; raises ``ValueError`` saying what to fix.

    ``tls`` is used for ``tcp://`` addresses (a ``unix://`` socket needs none)."""
    address, sep, plats = text.strip().partition("=")
    platforms: Tuple[str, ...] = ()
    if sep:
        platforms = tuple(p.strip() for p in plats.split(",") if p.strip())
        if not platforms:
            raise ValueError(f"invalid worker {text!r}: list platforms after '=', e.g. {address}=linux/arm64")
    try:
        return WorkerConfig(address, tls=tls if address.startswith("tcp://") else None, platforms=platforms)
    except BuildKitError as e:
        raise ValueError(f"invalid worker {text!r}: {e}") from None


class LazyPool:
    """A :class:`WorkerPool` made on first :meth:`get` (thread-safe).

    ``workers``: the configured workers (in order); empty means the local buildkitd, started on
    demand when ``auto_start`` (see :class:`llbkit.buildkit.local_daemon.LocalDaemon`).
    """

    def __init__(self, workers: Sequence[WorkerConfig] = (), *, auto_start: bool = True,
                 health_timeout: float = 5.0, env: Optional[Mapping[str, str]] = None,
                 shared_load: Any = None, max_in_flight: int = 0, entitlements: Sequence[str] = ()) -> None:
        self.workers: Tuple[WorkerConfig, ...] = tuple(workers)
        self.auto_start = auto_start
        self.health_timeout = health_timeout
        self.env = env  # where the local daemon lives ($LLBKIT_CACHE...); None: os.environ
        self.shared_load = shared_load  # see llbkit.buildkit.shared_load
        self.max_in_flight = max_in_flight  # builds per worker at once (0: no limit), see WorkerPool
        self.entitlements = tuple(entitlements)  # the local daemon allows these (see LocalDaemon)
        self._pool: Optional[WorkerPool] = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        """Whether a pool was made (so whether any worker was contacted)."""
        return self._pool is not None

    def get(self) -> WorkerPool:
        with self._lock:
            if self._pool is None:
                self._pool = WorkerPool(self._configs(), health_timeout=self.health_timeout,
                                        shared_load=self.shared_load, max_in_flight=self.max_in_flight)
            elif not self.workers:
                self._revive_local()
            return self._pool

    def _configs(self) -> Tuple[WorkerConfig, ...]:
        if self.workers:
            return self.workers
        if not self.auto_start:
            raise NoWorkersConfiguredError(
                "no buildkitd to build with: no workers are configured ([buildkit].workers is empty and "
                "BUILDKIT_HOST is unset) and starting a local buildkitd is off ([buildkit].auto_start = "
                "false): list workers in [buildkit].workers, or set [buildkit].auto_start = true")
        from llbkit.buildkit.local_daemon import LocalDaemon

        daemon = LocalDaemon(env=self.env, entitlements=self.entitlements)
        return (WorkerConfig(daemon.ensure(), name="local buildkitd"),)

    def _revive_local(self) -> None:
        # The local daemon may have been stopped since the pool was made (a long-lived process,
        # e.g. pantsd): start it again and let the pool check it at once.
        assert self._pool is not None
        (status,) = self._pool.statuses()
        if status.reachable is False:
            from llbkit.buildkit.local_daemon import LocalDaemon

            LocalDaemon(env=self.env, entitlements=self.entitlements).ensure()
            self._pool.check(status.name)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> "LazyPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
