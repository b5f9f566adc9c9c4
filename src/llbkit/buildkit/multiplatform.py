"""Build one image for several platforms on a :class:`~llbkit.buildkit.pool.WorkerPool`.

::

    from llbkit.buildkit import PlatformJob, build_multiplatform
    from llbkit.oci import write_image_json

    jobs = [PlatformJob.from_lowered(l) for l in plan(spec, base_configs=...)]
    result = build_multiplatform(pool, jobs, "dist/app.oci.tar", log=print)
    write_image_json("dist/app.image.json", result.image_record(tags=["registry/app:1"]))

Every platform is solved in its own thread, on the worker the pool picks for it (native first),
and exported as a single-platform OCI tar with ``SOURCE_DATE_EPOCH`` and rewritten timestamps, so
any worker gives the same bytes. The results are kept by input index (never by completion order)
and assembled by :func:`llbkit.oci.assemble` into one index in the declared platform order,
written atomically. The tar is written once: each platform's export is turned into members of
the output tar as it streams in (:mod:`llbkit.oci.onepass`), with no intermediate tar.

When a worker is unreachable or dies mid-solve (the solve fails and a health check of the worker
fails too), the platform is retried on another capable worker, up to ``max_attempts`` attempts,
each reported through ``log``. A build that fails on a healthy worker (a failing ``RUN``) is not
retried. When no worker is left, :class:`~llbkit.buildkit.errors.NoWorkerError` names the
platform and every worker with its error; the other platforms' solves are then cancelled.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from llbkit.buildkit.errors import (
    BuildKitError,
    ConnectionFailedError,
    NoWorkerError,
    SolveCancelledError,
)
from llbkit.buildkit.options import Export
from llbkit.buildkit.pool import Lease, WorkerPool, normalize_platform
from llbkit.buildkit.progress import ProgressHandler
from llbkit.buildkit.solve import BuildResult, Gateway

__all__ = [
    "PlatformJob",
    "Attempt",
    "PlatformBuild",
    "MultiPlatformResult",
    "PlatformBuildError",
    "build_multiplatform",
]

LogFunc = Callable[[str], None]
ProgressFactory = Callable[[str, str], Optional[ProgressHandler]]


@dataclass(frozen=True)
class PlatformJob:
    """One platform of an image: its LLB ``definition`` and full OCI image ``config`` (JSON bytes
    or a dict; ``None``: the exporter's default), with what the solve needs from the client.
    ``base_config`` is the config of the registry image it starts from (``None``: scratch), so
    the export keeps that image's layers as the registry serves them."""

    platform: str
    definition: Any
    config: Any = None
    local_dirs: Optional[Mapping[str, Any]] = None
    secrets: Optional[Mapping[str, Any]] = None
    base_config: Any = None
    ssh: Optional[Mapping[str, Any]] = None  # agent id -> socket path, for ssh mounts
    entitlements: Tuple[str, ...] = ()  # e.g. network.host, asked of the daemon for this solve
    # A frontend to run instead of solving ``definition`` (an llbkit.builder.job.FrontendCall:
    # ``name``, ``attrs`` and ``inputs`` pairs); it makes the image config itself.
    frontend: Any = None
    # OCI layouts the definition reads through ``oci-layout://`` sources: store id -> a
    # llbkit.buildkit.session content store (e.g. an OCI layout tar served read-only).
    content_stores: Optional[Mapping[str, Any]] = None

    @classmethod
    def from_lowered(cls, lowered: Any, *, local_dirs: Optional[Mapping[str, Any]] = None,
                     secrets: Optional[Mapping[str, Any]] = None, ssh: Optional[Mapping[str, Any]] = None,
                     entitlements: Tuple[str, ...] = ()) -> "PlatformJob":
        """From a :class:`llbkit.image.Lowered` (``plan(spec, ...)`` gives one per platform)."""
        return cls(lowered.platform, lowered.definition, lowered.oci_config_bytes(), local_dirs, secrets,
                   lowered.base_config_bytes(), ssh=ssh, entitlements=tuple(entitlements))


@dataclass(frozen=True)
class Attempt:
    """One try of a platform on a worker; ``error`` is ``None`` for the one that succeeded."""

    worker: str
    emulated: bool
    ref: str
    error: Optional[str] = None


@dataclass(frozen=True)
class PlatformBuild:
    """How a platform was built: on ``worker`` (its ``address``), natively or ``emulated``, as
    build ``ref`` on that daemon (see its build history), after ``attempts``."""

    platform: str
    worker: str
    address: str
    emulated: bool
    ref: str
    seconds: float
    attempts: Tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class MultiPlatformResult:
    """The written OCI tar (``path``), its ``assembled`` index (metadata only: the blob sources
    are closed) and one :class:`PlatformBuild` per platform, in the declared order."""

    path: str
    assembled: Any
    builds: Tuple[PlatformBuild, ...]
    seconds: float = 0.0

    @property
    def digest(self) -> str:
        return self.assembled.descriptor.digest

    @property
    def workers(self) -> Dict[str, str]:
        """``{platform: worker}`` keyed like :func:`llbkit.oci.image_record` expects."""
        return {str(img.platform): b.worker for img, b in zip(self.assembled.images, self.builds)}

    def image_record(self, tags: Sequence[str] = (), extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        from llbkit.oci.metadata import image_record

        return image_record(self.assembled, tags, workers=self.workers, extra=extra)


class PlatformBuildError(BuildKitError):
    """A platform's build failed on a healthy worker (e.g. a failing step); ``cause`` is the
    client's error (a :class:`~llbkit.buildkit.errors.SolveError`...)."""

    def __init__(self, platform: str, worker: str, cause: BaseException) -> None:
        super().__init__(f"failed to solve {platform} on worker {worker}: {cause}")
        self.platform = platform
        self.worker = worker
        self.cause = cause


def build_multiplatform(
    pool: WorkerPool,
    jobs: Sequence[PlatformJob],
    dest: "str | os.PathLike[str]",
    *,
    source_date_epoch: int = 0,
    allow_emulation: bool = True,
    max_attempts: int = 3,
    ref_names: Sequence[str] = (),
    annotations: Optional[Mapping[str, str]] = None,
    export_attrs: Optional[Mapping[str, str]] = None,
    cache_imports: Sequence[Any] = (),
    cache_exports: Sequence[Any] = (),
    log: Optional[LogFunc] = None,
    progress: Optional[ProgressFactory] = None,
    cancel: Optional[threading.Event] = None,
) -> MultiPlatformResult:
    """Build every job's platform in parallel on ``pool`` and write one OCI index tar at ``dest``.

    ``log(message)`` receives one line per scheduling event (which worker builds which platform,
    each failure and retry); ``progress(platform, worker)`` may return a progress handler for
    that attempt's solve. ``max_attempts`` bounds the tries of a platform (each on another
    worker). ``export_attrs`` are added to each platform's OCI exporter (e.g. ``annotation.KEY``);
    ``cache_imports``/``cache_exports`` are :class:`~llbkit.buildkit.options.CacheOption` values
    for every solve. ``cancel`` stops every solve when set.
    """
    if not jobs:
        raise BuildKitError("nothing to build: pass one PlatformJob per platform")
    seen: Dict[str, int] = {}
    for i, j in enumerate(jobs):
        p = normalize_platform(j.platform)
        if p in seen:
            raise BuildKitError(f"platform {p} is listed twice (jobs {seen[p]} and {i}); list each platform once")
        seen[p] = i
    if max_attempts < 1:
        raise BuildKitError(f"max_attempts must be at least 1, not {max_attempts}")
    dest = os.fspath(dest)
    started = time.monotonic()
    stop = threading.Event()
    say = _locked_log(log)
    from llbkit.oci.onepass import OnePassLayoutTar

    out = OnePassLayoutTar(dest, len(jobs))
    watcher = _link_cancel(cancel, stop)
    try:
        runner = _PlatformRunner(pool, out, source_date_epoch, allow_emulation, max_attempts,
                                 say, progress, stop, dict(export_attrs or {}), list(cache_imports),
                                 list(cache_exports))
        results: List[Optional[PlatformBuild]] = [None] * len(jobs)
        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="llbkit-platform") as ex:
            futures = [ex.submit(runner.run, i, j) for i, j in enumerate(jobs)]
            for fut in futures:  # a platform failing for good stops the others at once
                fut.add_done_callback(lambda f: stop.set() if f.exception() is not None else None)
            first_error: Optional[BaseException] = None
            for i, fut in enumerate(futures):  # by input index, never completion order
                try:
                    results[i] = fut.result()
                except BaseException as e:
                    stop.set()
                    if first_error is None or isinstance(first_error, SolveCancelledError):
                        first_error = e
        if first_error is not None:
            raise first_error
        builds = tuple(r for r in results if r is not None)
        assembled = _assemble(jobs, out, ref_names, annotations)
    finally:
        stop.set()
        if watcher is not None:
            watcher.join(timeout=1)
        out.abort()  # nothing once committed
    say(f"wrote {dest}: index {assembled.descriptor.digest} "
        f"({', '.join(f'{b.platform} on {b.worker}' for b in builds)})")
    return MultiPlatformResult(dest, assembled, builds, time.monotonic() - started)


class _PlatformRunner:
    def __init__(self, pool: WorkerPool, out: Any, sde: int, allow_emulation: bool, max_attempts: int,
                 log: LogFunc, progress: Optional[ProgressFactory], stop: threading.Event,
                 export_attrs: Dict[str, str], cache_imports: List[Any], cache_exports: List[Any]) -> None:
        self.pool = pool
        self.out = out  # an llbkit.oci.onepass.OnePassLayoutTar
        self.sde = sde
        self.allow_emulation = allow_emulation
        self.max_attempts = max_attempts
        self.log = log
        self.progress = progress
        self.stop = stop
        self.export_attrs = export_attrs
        self.cache_imports = cache_imports
        self.cache_exports = cache_exports

    def run(self, index: int, job: PlatformJob) -> PlatformBuild:
        platform = normalize_platform(job.platform)
        attempts: List[Attempt] = []
        errors: Dict[str, str] = {}
        for n in range(1, self.max_attempts + 1):
            if self.stop.is_set():
                raise SolveCancelledError(f"the build of {platform} was cancelled")
            tried = [a.worker for a in attempts]
            try:
                lease = self.pool.acquire(platform, allow_emulation=self.allow_emulation, exclude=tried)
            except NoWorkerError:
                raise self._no_worker(platform, tried, errors, n - 1) from None
            with lease:
                how = "emulated" if lease.emulated else "native"
                self.log(f"{platform}: building on {lease.name} ({how})"
                         + (f", attempt {n} of at most {self.max_attempts}" if n > 1 else ""))
                sink = self.out.receiver(index)
                sink.reset()  # what an earlier attempt streamed is dropped
                t0 = time.monotonic()
                try:
                    res = self._solve(lease, job, sink)
                except SolveCancelledError:
                    raise
                except BuildKitError as e:
                    ref = getattr(e, "_llbkit_ref", "")
                    if not self._worker_failed(lease, e):
                        raise PlatformBuildError(platform, lease.name, e) from e
                    msg = " ".join(str(e).split())
                    attempts.append(Attempt(lease.name, lease.emulated, ref, msg))
                    errors[lease.name] = f"failed: {msg}"
                    left = self.max_attempts - n
                    self.log(f"{platform}: worker {lease.name} failed ({msg}); "
                             + ("trying another worker" if left else "no attempt left"))
                    continue
                attempts.append(Attempt(lease.name, lease.emulated, res.ref))
                self.log(f"{platform}: done on {lease.name} in {time.monotonic() - t0:.1f}s")
                return PlatformBuild(platform, lease.name, lease.status.address, lease.emulated, res.ref,
                                     time.monotonic() - t0, tuple(attempts))
        raise self._no_worker(platform, [a.worker for a in attempts], errors, self.max_attempts,
                              gave_up=True)

    def _no_worker(self, platform: str, tried: List[str], errors: Dict[str, str], n: int,
                   gave_up: bool = False) -> NoWorkerError:
        why = f"gave up after {n} attempts" if gave_up else (
            f"no worker left after {n} attempt{'s' if n != 1 else ''}" if n else "no usable worker")
        return NoWorkerError(platform, self.pool.explain(platform, allow_emulation=self.allow_emulation,
                                                         exclude=tried, errors=errors),
                             message=f"cannot build {platform}: {why}; workers")

    def _solve(self, lease: Lease, job: PlatformJob, sink: Any) -> Any:
        from llbkit.buildkit.solve import new_build_ref

        ref = new_build_ref()
        handler = self.progress(lease.platform, lease.name) if self.progress else None

        def fn(gw: Gateway) -> BuildResult:
            if job.frontend is not None:
                return BuildResult.forward(gw.solve_frontend(job.frontend.name, self._frontend_opts(job),
                                                             dict(job.frontend.inputs)))
            return BuildResult.of(gw.solve(job.definition), job.config, base_config=job.base_config)

        export = Export.oci("-", rewrite_timestamp=True)  # streamed into `sink`
        if self.export_attrs:
            export = Export(export.type, {**export.attrs, **self.export_attrs}, export.dest)
        try:
            return lease.client.build(
                fn, exports=[export], source_date_epoch=self.sde, progress=handler, cancel=self.stop, ref=ref,
                local_dirs=job.local_dirs, secrets=job.secrets, ssh=job.ssh, entitlements=job.entitlements,
                cache_imports=self.cache_imports, cache_exports=self.cache_exports, stdout=sink,
                content_stores=job.content_stores,
            )
        except BuildKitError as e:
            e._llbkit_ref = ref  # type: ignore[attr-defined]
            raise

    def _frontend_opts(self, job: PlatformJob) -> Dict[str, str]:
        """The frontend's options as ``buildctl build --frontend NAME --opt ...`` with
        ``$SOURCE_DATE_EPOCH`` gives them: the platform this solve is for, and the epoch as the
        ``SOURCE_DATE_EPOCH`` build arg (the frontend dates the config and history by it)."""
        opts = dict(job.frontend.attrs)
        opts.setdefault("platform", normalize_platform(job.platform))
        opts.setdefault("build-arg:SOURCE_DATE_EPOCH", str(self.sde))
        return opts

    def _worker_failed(self, lease: Lease, err: BaseException) -> bool:
        """Whether ``err`` came from the worker (unreachable, died) rather than from the build."""
        if isinstance(err, ConnectionFailedError):
            self.pool.mark_unreachable(lease.name, err)
            return True
        status = self.pool.check(lease.name)
        return not status.reachable


def _assemble(jobs: Sequence[PlatformJob], out: Any, ref_names: Sequence[str],
              annotations: Optional[Mapping[str, str]]) -> Any:
    from llbkit.oci import assemble

    images = []
    for job, found in zip(jobs, out.images()):
        want = normalize_platform(job.platform)
        got = [im for im in found if normalize_platform(str(im.platform)) == want]
        if len(found) != 1 or not got:
            raise BuildKitError(f"the export of {want} holds {', '.join(str(i.platform) for i in found)} "
                                f"instead of one {want} image")
        images.append(got[0])
    assembled = assemble(images, annotations)
    out.commit(assembled, ref_names)
    return assembled


def _locked_log(log: Optional[LogFunc]) -> LogFunc:
    lock = threading.Lock()

    def say(message: str) -> None:
        if log is not None:
            with lock:
                log(message)
    return say


def _link_cancel(cancel: Optional[threading.Event], stop: threading.Event) -> Optional[threading.Thread]:
    if cancel is None:
        return None

    def watch() -> None:
        while not stop.is_set():
            if cancel.wait(0.1):
                stop.set()
                return
    t = threading.Thread(target=watch, name="llbkit-multiplatform-cancel", daemon=True)
    t.start()
    return t
