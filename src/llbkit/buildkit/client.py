"""``Client``: a pure-Python BuildKit client (the Control API and a client-side gateway frontend).

::

    from llbkit import llb
    from llbkit.buildkit import Client, Export, ImageConfig

    with Client("unix:///run/buildkit/buildkitd.sock") as c:
        print(c.list_workers()[0].platforms)
        state = llb.image("busybox").run(["sh", "-c", "echo hi > /hi"]).root()
        res = c.build_image(
            {"linux/amd64": state.marshal(platform="linux/amd64")},
            config=ImageConfig(entrypoint=["cat", "/hi"]), base="busybox",
            exports=[Export.image("registry.example/hi:1", push=True)],
        )
        print(res.image_digest)
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from llbkit.buildkit.connection import (
    Address,
    TLSConfig,
    open_channel,
    resolve_address,
    translate_rpc_error,
)
from llbkit.buildkit.errors import BuildKitError, ExportSpecError
from llbkit.buildkit.rpc.status import RpcError
from llbkit.buildkit.types import (
    BuildkitVersion,
    DaemonInfo,
    GCPolicy,
    SolveResult,
    UsageRecord,
    WorkerInfo,
    timestamp_to_datetime,
)

# The solve machinery is imported where a solve starts: `llbkit workers`, `du` and `prune` (and
# any program that only asks the daemon questions) start faster without it.
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.oci.imageconfig import ImageConfig
    from llbkit.buildkit.options import CacheOption, Export
    from llbkit.buildkit.progress import ProgressHandler
    from llbkit.buildkit.solve import BuildFunc, BuildResult, Gateway, SolveRun

__all__ = ["Client"]

_NS = 1_000_000_000


def _platform_str(p: Any) -> str:
    parts = [p.OS, p.Architecture] + ([p.Variant] if p.Variant else [])
    return "/".join(parts)


def control_stub(channel: Any) -> Any:
    """``moby.buildkit.v1.Control``'s methods on ``channel``."""
    from llbkit._proto import control_pb2
    from llbkit.buildkit.rpc.stubs import Stub

    return Stub(channel, control_pb2.DESCRIPTOR.services_by_name["Control"])


def _version(v: Any) -> BuildkitVersion:
    return BuildkitVersion(package=v.package, version=v.version, revision=v.revision)


def _usage(r: Any) -> UsageRecord:
    return UsageRecord(
        id=r.ID, size=r.Size, mutable=r.Mutable, in_use=r.InUse, shared=r.Shared,
        parents=tuple(r.Parents) or ((r.Parent,) if r.Parent else ()),
        created_at=timestamp_to_datetime(r.CreatedAt) if r.HasField("CreatedAt") else None,
        last_used_at=timestamp_to_datetime(r.LastUsedAt) if r.HasField("LastUsedAt") else None,
        usage_count=r.UsageCount, description=r.Description, record_type=r.RecordType,
    )


class Client:
    """A connection to one buildkitd.

    ``address`` is ``unix://PATH`` or ``tcp://HOST:PORT`` (default ``$BUILDKIT_HOST``, then
    ``unix:///run/buildkit/buildkitd.sock``). ``tcp://`` needs ``tls`` unless ``insecure=True``.
    ``timeout`` bounds the short requests (info, workers, du, prune), not solves.
    """

    def __init__(self, address: Optional[str] = None, *, tls: Optional[TLSConfig] = None,
                 insecure: bool = False, timeout: float = 30.0) -> None:
        self.address: Address = resolve_address(address)
        self.tls = tls
        self.timeout = timeout
        self._channel = open_channel(self.address, tls, insecure=insecure)
        self._control = control_stub(self._channel)

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({str(self.address)!r}{', tls' if self.tls else ''})"

    @property
    def channel(self) -> Any:
        """The underlying gRPC channel (:class:`llbkit.buildkit.rpc.channel.Channel`; the session
        runs over its ``Control.Session``)."""
        return self._channel

    def _unary(self, method: str, req: Any, what: str) -> Any:
        try:
            return getattr(self._control, method)(req, timeout=self.timeout)
        except RpcError as e:
            raise translate_rpc_error(e, self.address, tls=self.tls, what=what, timeout=self.timeout) from None

    # -- Control API --------------------------------------------------------------------------
    def info(self) -> DaemonInfo:
        from llbkit._proto import control_pb2

        resp = self._unary("Info", control_pb2.InfoRequest(), "info request")
        return DaemonInfo(version=_version(resp.buildkitVersion))

    def list_workers(self, filters: Sequence[str] = ()) -> List[WorkerInfo]:
        """The daemon's workers; each one's first platform is its native one."""
        from llbkit._proto import control_pb2

        resp = self._unary("ListWorkers", control_pb2.ListWorkersRequest(filter=list(filters)), "list of workers")
        out = []
        for w in resp.record:
            out.append(WorkerInfo(
                id=w.ID,
                labels=dict(sorted(w.Labels.items())),
                platforms=tuple(_platform_str(p) for p in w.platforms),
                gc_policy=tuple(
                    GCPolicy(all=g.all, filters=tuple(g.filters), keep_duration=g.keepDuration / _NS,
                             reserved_space=g.reservedSpace, max_used_space=g.maxUsedSpace,
                             min_free_space=g.minFreeSpace)
                    for g in w.GCPolicy
                ),
                version=_version(w.BuildkitVersion),
            ))
        return out

    def disk_usage(self, filters: Sequence[str] = (), age_limit: float = 0.0) -> List[UsageRecord]:
        """Build-cache records, largest first."""
        from llbkit._proto import control_pb2

        req = control_pb2.DiskUsageRequest(filter=list(filters), ageLimit=int(age_limit * _NS))
        resp = self._unary("DiskUsage", req, "disk usage request")
        return sorted((_usage(r) for r in resp.record), key=lambda r: (-r.size, r.id))

    def prune(self, *, all: bool = False, filters: Sequence[str] = (), keep_duration: float = 0.0,
              reserved_space: int = 0, max_used_space: int = 0, min_free_space: int = 0,
              on_record: Optional[Callable[[UsageRecord], None]] = None) -> List[UsageRecord]:
        """Remove build cache; returns (and streams to ``on_record``) the removed records."""
        from llbkit._proto import control_pb2

        req = control_pb2.PruneRequest(
            filter=list(filters), all=all, keepDuration=int(keep_duration * _NS),
            reservedSpace=reserved_space, maxUsedSpace=max_used_space, minFreeSpace=min_free_space,
        )
        out = []
        try:
            for r in self._control.Prune(req, timeout=max(self.timeout, 600.0)):
                rec = _usage(r)
                out.append(rec)
                if on_record is not None:
                    on_record(rec)
        except RpcError as e:
            raise translate_rpc_error(e, self.address, tls=self.tls, what="prune") from None
        return out

    # -- solves -------------------------------------------------------------------------------
    # Every solve takes these keyword arguments:
    #   exports: [Export], cache_exports / cache_imports: [CacheOption], frontend_attrs: {k: v},
    #   source_date_epoch: int (sent as build-arg:SOURCE_DATE_EPOCH; the daemon applies it to the
    #   exporters, like buildctl with $SOURCE_DATE_EPOCH), entitlements, progress: a handler of
    #   SolveStatus events, cancel: threading.Event, ref: the build reference,
    #   local_dirs: {name: dir or session.LocalDir}, secrets: {id: session.SecretSource},
    #   ssh: {id: agent socket path or session.SshAgent} (forwarded to runs with ssh mounts),
    #   session: a session.Session of your own (None: one is made from local_dirs, secrets,
    #   the exporters' dest and the docker config.json credentials; False: no session),
    #   stdout: the binary stream a dest="-" export is written to (default sys.stdout.buffer),
    #   content_stores: {store id: session content store} read by oci-layout:// sources.

    @staticmethod
    def new_session(exports: Sequence[Export] = (), *, local_dirs: Optional[Mapping[str, Any]] = None,
                    secrets: Optional[Mapping[str, Any]] = None, auth: Any = True,
                    content_stores: Optional[Mapping[str, Any]] = None, stdout: Any = None,
                    ssh: Optional[Mapping[str, Any]] = None) -> Any:
        """A session serving ``local_dirs``, ``secrets``, registry credentials (``auth``: the docker
        config.json by default), the file outputs of ``exports`` (by exporter index; ``dest="-"``
        streams to ``stdout``, default ``sys.stdout.buffer``) and OCI ``content_stores`` by id."""
        from llbkit.buildkit.session import DirOutput, FileOutput, Session

        outputs: Dict[int, Any] = {}
        for i, e in enumerate(exports):
            if e.dest is None or e.is_layout_dir:  # a layout directory is a content store
                continue
            if e.type == "local":
                outputs[i] = DirOutput(e.dest)
            elif e.to_stdout:
                import sys

                outputs[i] = FileOutput(e.dest, stream=stdout if stdout is not None else sys.stdout.buffer)
            else:
                outputs[i] = FileOutput(e.dest, defer_commit=True)
        return Session(local_dirs=local_dirs, secrets=secrets, outputs=outputs, auth=auth,
                       content_stores=content_stores, ssh=ssh)

    def solve(self, definition: Any, **kwargs: Any) -> SolveResult:
        """Plain ``Control.Solve`` of a definition (``llb.Definition`` or its bytes): what
        ``buildctl build`` does with a definition on stdin. Exported images get no config."""
        from llbkit.buildkit.solve import _definition_pb

        req, run, stores = self._prepare(gateway=False, **kwargs)
        req.Definition.CopyFrom(_definition_pb(definition))
        res = run.run(req)
        stores.update_indexes(res.exporter_response)
        return res

    def build(self, fn: BuildFunc, **kwargs: Any) -> SolveResult:
        """A gateway build: ``fn(gateway)`` solves definitions, resolves base images and returns a
        :class:`BuildResult` (refs and image configs), which the exporters then export."""
        req, run, stores, gw_opts = self._prepare(gateway=True, **kwargs)
        res = run.run(req, fn, gw_opts)
        stores.update_indexes(res.exporter_response)
        return res

    def build_image(
        self,
        definitions: Union[Any, Mapping[str, Any]],
        *,
        config: Union[None, ImageConfig, Mapping[str, ImageConfig]] = None,
        base: Optional[str] = None,
        platform: Optional[str] = None,
        **kwargs: Any,
    ) -> SolveResult:
        """Build an image from one definition, or from ``{platform: definition}`` (multi-platform,
        exported as one index in the given order), with an image config per platform.

        ``base`` names the base image whose config (env, entrypoint, history...) is inherited,
        resolved per platform by the daemon. With a single definition, ``platform`` says which
        platform it is for (default: the config's own or the daemon's).
        """
        if isinstance(definitions, Mapping):
            items = list(definitions.items())
            multi = True
        else:
            items = [(platform, definitions)]
            multi = False

        from llbkit.oci.imageconfig import ImageConfig
        from llbkit.buildkit.solve import BASE_CONFIG_METADATA, BuildResult

        def cfg_for(p: Optional[str]) -> Optional[ImageConfig]:
            if isinstance(config, Mapping):
                return config.get(p) if p is not None else None
            return config

        def fn(gw: Gateway) -> BuildResult:
            results = []
            base_raw: Dict[Optional[str], bytes] = {}
            for p, d in items:
                ref = gw.solve(d)
                p = p or _definition_platform(d)
                cfg = cfg_for(p)
                data = None
                if cfg is not None or base is not None:
                    if p is None:
                        raise BuildKitError("an image config needs the target platform: pass platform='os/arch'")
                    resolved = gw.resolve_image_config(base, platform=p) if base else None
                    if resolved is not None:
                        base_raw[p] = resolved.raw_config
                    data = (cfg or ImageConfig()).to_oci(p, resolved.config if resolved else None)
                results.append((p, ref, data))
            if multi:
                res = BuildResult.multi([(p, r, c) for p, r, c in results])  # type: ignore[misc]
                for p, raw in base_raw.items():  # keep the base's layers as the registry has them
                    res.metadata[f"{BASE_CONFIG_METADATA}/{p}"] = raw
                return res
            return BuildResult.of(results[0][1], results[0][2], base_config=base_raw.get(results[0][0]))

        return self.build(fn, **kwargs)

    def _prepare(
        self,
        *,
        gateway: bool,
        exports: Sequence[Export] = (),
        cache_exports: Sequence[CacheOption] = (),
        cache_imports: Sequence[CacheOption] = (),
        frontend_attrs: Optional[Mapping[str, str]] = None,
        source_date_epoch: Optional[int] = None,
        entitlements: Sequence[str] = (),
        session: Any = None,
        local_dirs: Optional[Mapping[str, Any]] = None,
        secrets: Optional[Mapping[str, Any]] = None,
        ssh: Optional[Mapping[str, Any]] = None,
        progress: Optional[ProgressHandler] = None,
        cancel: Optional[threading.Event] = None,
        ref: Optional[str] = None,
        stdout: Any = None,
        content_stores: Optional[Mapping[str, Any]] = None,
    ) -> Any:
        from llbkit._proto import control_pb2
        from llbkit.buildkit.localstores import plan_local_stores
        from llbkit.buildkit.solve import SolveRun

        stores = plan_local_stores(exports, cache_exports, cache_imports)
        cache_exports, cache_imports = stores.cache_exports, stores.cache_imports
        if content_stores:  # oci-layout:// sources read these (store id -> content store)
            clash = sorted(set(content_stores) & set(stores.stores))
            if clash:
                raise ExportSpecError(f"content store id {clash[0]!r} is used by a local cache or export too")
            stores.stores.update(content_stores)
        if session is None:
            session = self.new_session(exports, local_dirs=local_dirs, secrets=secrets,
                                       content_stores=stores.stores, stdout=stdout, ssh=ssh)
        elif session is False:
            session = None
            if local_dirs or secrets or ssh or stores.stores or any(e.needs_session for e in exports):
                raise ExportSpecError("local directories, secrets, local caches and exporters with dest= "
                                      "need a session (session=False was given)")
        else:
            if local_dirs or secrets or ssh:
                raise ExportSpecError("pass local_dirs/secrets/ssh to the Session you give, not to the solve")
            session.content_stores.update(stores.stores)
        attrs: Dict[str, str] = dict(frontend_attrs or {})
        if source_date_epoch is not None:
            if int(source_date_epoch) < 0:
                raise BuildKitError(f"invalid SOURCE_DATE_EPOCH {source_date_epoch}: must be >= 0")
            attrs["build-arg:SOURCE_DATE_EPOCH"] = str(int(source_date_epoch))
        if gateway and cache_imports:
            attrs["cache-imports"] = json.dumps([{"Type": c.type, "Attrs": dict(c.attrs)} for c in cache_imports])
        req = control_pb2.SolveRequest(Frontend="", Entitlements=list(entitlements))
        for k, v in attrs.items():
            req.FrontendAttrs[k] = v
        for i, e in enumerate(exports):
            req.Exporters.add(Type=e.type, Attrs=dict(e.attrs))
            if i == 0:
                req.ExporterDeprecated = e.type
                for k, v in e.attrs.items():
                    req.ExporterAttrsDeprecated[k] = v
        for c in cache_exports:
            req.Cache.Exports.add(Type=c.type, Attrs=dict(c.attrs))
        for c in cache_imports:
            req.Cache.Imports.add(Type=c.type, Attrs=dict(c.attrs))
        run = SolveRun(self._channel, self.address, tls=self.tls, ref=ref,
                       session=session, progress=progress, cancel=cancel)
        if gateway:
            gw_opts = {"frontend_opts": {k: v for k, v in attrs.items() if k == "cache-imports"},
                       "cache_imports": list(cache_imports)}
            return req, run, stores, gw_opts
        return req, run, stores


def _definition_platform(definition: Any) -> Optional[str]:
    """The one platform every op of an llb Definition is built for, or None (raw bytes, mixed)."""
    from llbkit.platforms import format_platform

    platforms = {format_platform(op.platform) for op in getattr(definition, "ops", ()) if op.platform}
    return platforms.pop() if len(platforms) == 1 else None
