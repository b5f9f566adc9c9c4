"""Running one solve: ``Control.Solve``, the Status stream, the session and the gateway, together.

Two flows, as in Go's ``client.Solve`` and ``client.Build``:

- a plain solve sends the definition in ``Control.Solve`` (no image config possible);
- a gateway build sends ``Control.Solve`` with an empty frontend and acts as the frontend
  itself: it calls ``LLBBridge.Solve`` / ``ResolveImageConfig`` with gRPC metadata
  ``buildkit-controlapi-buildid: <ref>`` and ends with ``LLBBridge.Return`` of a result carrying
  ``containerimage.config`` (per platform) and ``refs.platforms``.

Either way the Status stream is read in a thread (feeding the progress handlers), the session
(if any) runs beside it, and the wait for the result can be interrupted: Ctrl-C or a cancel event
cancels the ``Solve`` RPC, which makes buildkitd stop the build.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from llbkit.buildkit.connection import translate_rpc_error
from llbkit.buildkit.errors import BuildKitError, ConnectionFailedError, SolveCancelledError, SolveError
from llbkit.oci.imageconfig import platform_fields
from llbkit.buildkit.rpc.status import RpcError, StatusCode
from llbkit.buildkit.progress import ProgressHandler, ProgressTracker, combine, status_from_pb
from llbkit.buildkit.types import SolveResult

__all__ = [
    "BUILD_ID_METADATA",
    "Gateway",
    "GatewayRef",
    "ResolvedImage",
    "BuildResult",
    "FrontendResult",
    "new_build_ref",
]

BUILD_ID_METADATA = "buildkit-controlapi-buildid"

# The exporter keeps the layers a result shares with its base image as the registry has them
# (blob and diff_id) when told the base's config under this key: with ``rewrite-timestamp``, only
# layers past the base's ``rootfs.diff_ids`` are rewritten to the epoch. BuildKit's Dockerfile
# frontend sets it for its FROM image the same way (exptypes.ExporterImageBaseConfigKey).
BASE_CONFIG_METADATA = "containerimage.base.config"

ConfigLike = Union[None, bytes, Mapping[str, Any]]


def new_build_ref() -> str:
    """A fresh build reference (25 lowercase base36 characters, like BuildKit's identity.NewID)."""
    n = int.from_bytes(secrets.token_bytes(16), "big")
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(25):
        n, r = divmod(n, 36)
        out.append(chars[r])
    return "".join(out)


def _config_bytes(config: ConfigLike) -> Optional[bytes]:
    if config is None:
        return None
    if isinstance(config, (bytes, bytearray)):
        return bytes(config)
    return json.dumps(dict(config), separators=(",", ":")).encode()


@dataclass(frozen=True)
class GatewayRef:
    """A solved result on the daemon, usable in a :class:`BuildResult` (valid during the build)."""

    id: str
    _def: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ResolvedImage:
    """A base image resolved by the daemon: canonical ``ref``, manifest ``digest``, ``config``."""

    ref: str
    digest: str
    config: Mapping[str, Any]
    raw_config: bytes = field(default=b"", repr=False)


class BuildResult:
    """What a gateway build returns: one ref (single platform) or one per platform, each with the
    image config JSON for it (as bytes or a dict)."""

    def __init__(self) -> None:
        self.single: Optional[Tuple[Optional[GatewayRef], Optional[bytes]]] = None
        self.platforms: List[Tuple[str, Optional[GatewayRef], Optional[bytes]]] = []
        self.metadata: Dict[str, bytes] = {}
        self.forwarded: Any = None  # a frontend's own gateway Result, returned as it came

    @classmethod
    def forward(cls, result: "FrontendResult") -> "BuildResult":
        """Return what a frontend returned (its refs, its image config and every other metadata
        key, e.g. the base image's config), so the exporters write what they write when that
        frontend is the build's own frontend (``buildctl build --frontend ...``)."""
        r = cls()
        r.forwarded = result.pb
        return r

    @classmethod
    def of(cls, ref: Optional[GatewayRef], config: ConfigLike = None, *,
           base_config: ConfigLike = None) -> "BuildResult":
        """``base_config``: the config of the registry image the result starts from, so that the
        exporter keeps that image's layers as they are (see :data:`BASE_CONFIG_METADATA`)."""
        r = cls()
        r.single = (ref, _config_bytes(config))
        base = _config_bytes(base_config)
        if base:
            r.metadata[BASE_CONFIG_METADATA] = base
        return r

    @classmethod
    def multi(cls, items: Sequence[Tuple[str, Optional[GatewayRef], ConfigLike]]) -> "BuildResult":
        """Per-platform results, kept in the given order (the order of the exported index)."""
        r = cls()
        seen = set()
        for platform, ref, config in items:
            platform_fields(platform)
            if platform in seen:
                raise BuildKitError(f"platform {platform} appears twice in a multi-platform result")
            seen.add(platform)
            r.platforms.append((platform, ref, _config_bytes(config)))
        if not r.platforms:
            raise BuildKitError("a multi-platform result needs at least one platform")
        return r

    def _to_pb(self, gw_pb: Any) -> Any:
        res = gw_pb.Result()
        if self.forwarded is not None:
            res.CopyFrom(self.forwarded)
            for k, v in self.metadata.items():
                res.metadata[k] = v
            return res
        for k, v in self.metadata.items():
            res.metadata[k] = v
        if self.single is not None:
            ref, config = self.single
            res.ref.CopyFrom(_pb_ref(gw_pb, ref))
            if config is not None:
                res.metadata["containerimage.config"] = config
            return res
        entries = []
        for platform, ref, config in self.platforms:
            res.refs.refs[platform].CopyFrom(_pb_ref(gw_pb, ref))
            if config is not None:
                res.metadata[f"containerimage.config/{platform}"] = config
            entries.append({"id": platform, "platform": platform_fields(platform)})
        res.metadata["refs.platforms"] = json.dumps({"platforms": entries}).encode()
        return res


def _pb_ref(gw_pb: Any, ref: Optional[GatewayRef]) -> Any:
    r = gw_pb.Ref()
    if ref is not None:
        r.id = ref.id
        if ref._def is not None:
            getattr(r, "def").CopyFrom(ref._def)
    return r


def _definition_pb(definition: Any) -> Any:
    """A ``llbkit.llb.Definition`` (or its bytes) as a ``pb.Definition`` message."""
    from llbkit._proto import ops_pb2

    data = definition if isinstance(definition, (bytes, bytearray)) else definition.to_bytes()
    msg = ops_pb2.Definition()
    msg.ParseFromString(bytes(data))
    return msg


@dataclass(frozen=True)
class FrontendResult:
    """What a frontend run through :meth:`Gateway.solve_frontend` returned: its refs and its
    ``metadata`` (``containerimage.config``, ``containerimage.base.config``...), and the gateway
    message itself (``pb``), which :meth:`BuildResult.forward` returns unchanged."""

    pb: Any = field(repr=False)

    @property
    def metadata(self) -> Dict[str, bytes]:
        return {k: bytes(v) for k, v in self.pb.metadata.items()}

    @property
    def ref(self) -> Optional[GatewayRef]:
        """The single ref, or ``None`` for a per-platform result (see :attr:`refs`)."""
        if self.pb.WhichOneof("result") != "ref":
            return None
        r = self.pb.ref
        return GatewayRef(r.id, getattr(r, "def") if r.HasField("def") else None)

    @property
    def refs(self) -> Dict[str, GatewayRef]:
        if self.pb.WhichOneof("result") != "refs":
            return {}
        return {k: GatewayRef(r.id, getattr(r, "def") if r.HasField("def") else None)
                for k, r in self.pb.refs.refs.items()}


class Gateway:
    """The frontend side of a gateway build: calls tagged with the build's id."""

    def __init__(self, channel: Any, build_ref: str, address: object, *,
                 frontend_opts: Optional[Mapping[str, str]] = None, cache_imports: Sequence[Any] = ()) -> None:
        from llbkit._proto import gateway_pb2
        from llbkit.buildkit.rpc.stubs import Stub

        self._pb = gateway_pb2
        self._stub = Stub(channel, gateway_pb2.DESCRIPTOR.services_by_name["LLBBridge"])
        self._md = ((BUILD_ID_METADATA, build_ref),)
        self._address = address
        self._frontend_opts = dict(frontend_opts or {})
        self._cache_imports = list(cache_imports)
        self.build_ref = build_ref

    def _call(self, method: str, req: Any, what: str) -> Any:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                return getattr(self._stub, method)(req, metadata=self._md)
            except RpcError as e:
                # The daemon registers the build a moment after Control.Solve arrives.
                if (e.code() == StatusCode.NOT_FOUND or "no such job" in (e.details() or "")) \
                        and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise _RpcFailure(e, what) from None

    def ping(self) -> Dict[str, bool]:
        """The daemon's LLB capabilities: ``{cap id: enabled}`` (the list BuildKit registers)."""
        pong = self._call("Ping", self._pb.PingRequest(), "gateway ping")
        return {c.ID: c.Enabled for c in getattr(pong, "LLBCaps", ())}

    def solve(self, definition: Any, *, evaluate: bool = False) -> GatewayRef:
        """Solve a definition (``llb.Definition`` or its bytes) as part of this build."""
        req = self._pb.SolveRequest(allowResultReturn=True, allowResultArrayRef=True, Evaluate=evaluate)
        req.Definition.CopyFrom(_definition_pb(definition))
        for k, v in self._frontend_opts.items():
            req.FrontendOpt[k] = v
        for c in self._cache_imports:
            req.CacheImports.add(Type=c.type, Attrs=dict(c.attrs))
        resp = self._call("Solve", req, "solve")
        if resp.HasField("result") and resp.result.WhichOneof("result") == "ref":
            pb_ref = resp.result.ref
            return GatewayRef(pb_ref.id, getattr(pb_ref, "def") if pb_ref.HasField("def") else None)
        return GatewayRef(resp.ref)

    def solve_frontend(self, frontend: str, opts: Optional[Mapping[str, str]] = None,
                       inputs: Optional[Mapping[str, Any]] = None) -> FrontendResult:
        """Run ``frontend`` (``dockerfile.v0``, ``gateway.v0``...) with options ``opts`` and
        ``inputs`` (name -> ``llb.Definition`` or its bytes) as part of this build, on the
        build's session (its local dirs, secrets, ssh agents): what Go's ``client.Build``
        callers (buildx) do with ``c.Solve(ctx, SolveRequest{Frontend: ...})``. The frontend's
        errors (a Dockerfile syntax error at its file and line...) are BuildKit's own."""
        req = self._pb.SolveRequest(Frontend=frontend, allowResultReturn=True, allowResultArrayRef=True)
        for k, v in {**self._frontend_opts, **dict(opts or {})}.items():
            req.FrontendOpt[k] = v
        for name, definition in (inputs or {}).items():
            req.FrontendInputs[name].CopyFrom(_definition_pb(definition))
        for c in self._cache_imports:
            req.CacheImports.add(Type=c.type, Attrs=dict(c.attrs))
        resp = self._call("Solve", req, f"frontend {frontend}")
        if not resp.HasField("result"):
            raise BuildKitError(f"frontend {frontend} returned no result (buildkitd too old for "
                                "allowResultReturn?)")
        return FrontendResult(resp.result)

    def resolve_image_config(self, ref: str, *, platform: Optional[str] = None,
                             resolve_mode: str = "default") -> ResolvedImage:
        """The manifest digest and config of image ``ref`` (for ``platform``), via the daemon."""
        req = self._pb.ResolveImageConfigRequest(Ref=ref, ResolveMode=resolve_mode, ResolverType=0,
                                                 LogName=f"[internal] load metadata for {ref}")
        if platform:
            f = platform_fields(platform)
            req.Platform.OS = f["os"]
            req.Platform.Architecture = f["architecture"]
            if "variant" in f:
                req.Platform.Variant = f["variant"]
        resp = self._call("ResolveImageConfig", req, f"resolve of image {ref}")
        from llbkit.oci.imageconfig import parse_config

        return ResolvedImage(ref=resp.Ref or ref, digest=resp.Digest,
                             config=parse_config(resp.Config), raw_config=bytes(resp.Config))

    def _return(self, result: Optional[BuildResult], error: Optional[BaseException]) -> None:
        req = self._pb.ReturnRequest()
        if error is None and result is not None:
            req.result.CopyFrom(result._to_pb(self._pb))
        elif error is not None:
            req.error.code = 2  # UNKNOWN
            req.error.message = str(error) or type(error).__name__
            if isinstance(error, _RpcFailure):  # the daemon's own words, for its build history
                req.error.message = error.err.details() or error.what
        else:
            req.result.CopyFrom(self._pb.Result())
        self._call("Return", req, "return of the result")


class _RpcFailure(Exception):
    def __init__(self, err: Any, what: str) -> None:
        super().__init__(what)
        self.err = err
        self.what = what


BuildFunc = Callable[[Gateway], Optional[BuildResult]]

_EXIT_RE = re.compile(r"exit code: (\d+)")
_PROC_RE = re.compile(r'process "(.*?)" did not complete successfully')


class SolveRun:
    """One solve, start to end. Use :meth:`run` once."""

    def __init__(self, channel: Any, address: object, *, tls: Any, ref: Optional[str] = None,
                 session: Any = None, progress: Optional[ProgressHandler] = None,
                 cancel: Optional[threading.Event] = None, log_tail: int = 20) -> None:
        from llbkit.buildkit.client import control_stub

        self.channel = channel
        self.address = address
        self.tls = tls
        self.ref = ref or new_build_ref()
        self.session = session
        self.tracker = ProgressTracker(tail=log_tail)
        self.progress = combine([self.tracker, progress])
        self._printer = progress
        self.cancel_event = cancel or threading.Event()
        self._control = control_stub(channel)
        self._status_call: Any = None
        self._status_error: Optional[BaseException] = None
        self._status_seen = False  # the daemon answered: a later UNAVAILABLE is a lost connection
        self._gateway_error: Optional[BaseException] = None

    # -- threads ------------------------------------------------------------------------------
    def _read_status(self) -> None:
        from llbkit._proto import control_pb2

        try:
            self._status_call = self._control.Status(control_pb2.StatusRequest(Ref=self.ref))
            for resp in self._status_call:
                self._status_seen = True
                self.progress(status_from_pb(resp))
        except RpcError as e:
            if e.code() != StatusCode.CANCELLED:
                self._status_error = e
        except Exception as e:  # a progress handler failed: keep the build going, report later
            self._status_error = e

    def _run_gateway(self, fn: BuildFunc, gateway: Gateway, solve_future: Any) -> None:
        result: Optional[BuildResult] = None
        error: Optional[BaseException] = None
        try:
            gateway.ping()
            result = fn(gateway)
        except BaseException as e:  # reported through Return and re-raised by run()
            error = e
            self._gateway_error = e
        try:
            gateway._return(result, error)
        except _RpcFailure as e:
            if self._gateway_error is None and not solve_future.done():
                self._gateway_error = e
        if error is not None:
            # The daemon fails Control.Solve on a Return with an error; cancel it if it does not.
            deadline = time.monotonic() + 5.0
            while not solve_future.done() and time.monotonic() < deadline:
                time.sleep(0.05)
            solve_future.cancel()

    # -- main ---------------------------------------------------------------------------------
    def run(self, request: Any, build: Optional[BuildFunc] = None,
            gateway_opts: Optional[Mapping[str, Any]] = None) -> SolveResult:
        request.Ref = self.ref
        if self.session is not None:
            request.Session = self.session.id
            self.session.run(self.channel)
        status_thread = threading.Thread(target=self._read_status, name=f"llbkit-status-{self.ref}", daemon=True)
        status_thread.start()
        future = self._control.Solve.future(request)
        gw_thread = None
        if build is not None:
            gateway = Gateway(self.channel, self.ref, self.address, **dict(gateway_opts or {}))
            gw_thread = threading.Thread(target=self._run_gateway, args=(build, gateway, future),
                                         name=f"llbkit-gateway-{self.ref}", daemon=True)
            gw_thread.start()
        succeeded = False
        try:
            try:
                while not future.wait(0.1):
                    if self.cancel_event.is_set():
                        raise SolveCancelledError(f"build {self.ref} was cancelled; buildkitd stopped it")
                resp = future.result()
            except (KeyboardInterrupt, SolveCancelledError):
                future.cancel()
                raise
            except RpcError as e:
                # cancelled here (by the gateway thread, after a failed build function): no RpcError
                raise self._failure(None if future.cancelled() else e) from None
            succeeded = True
        finally:
            self._finish(status_thread, gw_thread, future)
            if self.session is not None:
                # Exported files are kept only when the whole solve succeeded.
                self.session.finish_outputs(succeeded and (gw_thread is None or self._gateway_error is None))
        if gw_thread is not None and self._gateway_error is not None:
            raise self._failure(None)
        return SolveResult(ref=self.ref, exporter_response=dict(resp.ExporterResponse))

    def _finish(self, status_thread: threading.Thread, gw_thread: Optional[threading.Thread], future: Any) -> None:
        if not future.done():
            future.cancel()
        if gw_thread is not None:
            gw_thread.join(timeout=10)
        # The status stream ends when the daemon closes the job; give it a moment, then stop it.
        status_thread.join(timeout=5)
        if status_thread.is_alive() and self._status_call is not None:
            self._status_call.cancel()
            status_thread.join(timeout=2)
        if self.session is not None:
            try:
                self.session.close()
            except Exception:  # closing must not hide the build's own outcome
                pass
        close = getattr(self._printer, "close", None)
        if close is not None:
            close()

    def _failure(self, err: Any) -> BaseException:
        """The error to raise for a failed Solve (``err`` is the RpcError, if any)."""
        gw = self._gateway_error
        if gw is not None and not isinstance(gw, _RpcFailure):
            if isinstance(gw, (KeyboardInterrupt, BuildKitError)):
                return gw
            wrapped = BuildKitError(f"the build function failed: {type(gw).__name__}: {gw}")
            wrapped.__cause__ = gw
            return wrapped
        what = "solve"
        # A gateway call that failed (a frontend run through it, its Dockerfile wrong) carries
        # the real error and its typed details; the Solve then fails only with what Return said.
        if isinstance(gw, _RpcFailure) and (err is None or gw.err.code() != StatusCode.UNAVAILABLE):
            err, what = gw.err, gw.what
        if err is None:
            return SolveCancelledError(f"build {self.ref} was cancelled")
        if err.code() == StatusCode.UNAVAILABLE:
            if self._status_seen:
                return ConnectionFailedError(
                    f"lost the connection to buildkitd at {self.address} during build {self.ref} "
                    f"({' '.join((err.details() or 'unavailable').split())}): the daemon stopped or "
                    "crashed while building (its log says why). The build did not finish and "
                    "nothing was exported; run it again once the daemon is back.",
                    str(self.address),
                )
            return translate_rpc_error(err, self.address, tls=self.tls, what=what)
        from llbkit.buildkit.errdetails import details_from_rpc_error

        return self._solve_error(err.details() or err.code().name, details_from_rpc_error(err))

    def _solve_error(self, detail: str, typed: Any = None) -> SolveError:
        from llbkit.buildkit.errdetails import ErrorDetails

        typed = typed if typed is not None else ErrorDetails()
        # Some daemon messages end in a line holding only "."; keep the words.
        detail = "\n".join(l for l in detail.strip().splitlines() if l.strip() not in ("", "."))
        vertex = command = None
        exit_code = typed.exit_code
        tail: List[str] = []
        # The daemon's typed details name the failing vertex; the progress stream has its name and
        # output. Without them (older daemons), the last vertex that reported an error.
        found = self.tracker.get(typed.vertex) if typed.vertex else None
        if found is None:
            failed = self.tracker.failed()
            found = failed[-1] if failed else None
        if found is not None:
            v, tail = found
            vertex = v.name or None
            m = _PROC_RE.search(v.error)
            command = m.group(1) if m else None
        if typed.op_args:
            command = " ".join(typed.op_args)
        if exit_code is None:
            m = _EXIT_RE.search(detail)
            exit_code = int(m.group(1)) if m else None
        if command is None:
            m = _PROC_RE.search(detail)
            command = m.group(1) if m else None
        if vertex is None and typed.description.get("llb.customname"):
            vertex = typed.description["llb.customname"]
        if vertex and exit_code is not None:
            msg = f"failed to solve: step {vertex!r} exited with code {exit_code}"
            if command and command != vertex:
                msg += f" (command: {command})"
        elif vertex:
            msg = f"failed to solve: step {vertex!r} failed: {detail}"
        else:
            msg = f"failed to solve: {detail}"
        for src in typed.sources:
            msg += f"\n  at {src}" + "".join(f"\n    | {line}" for line in src.lines)
        if tail:
            msg += ("\n" if typed.sources else ". ") + "Last output lines:\n" + "\n".join(f"  {l}" for l in tail)
        return SolveError(msg, detail=detail, vertex=vertex, command=command, exit_code=exit_code,
                          log_tail=tail, vertex_digest=typed.vertex, sources=typed.sources)
