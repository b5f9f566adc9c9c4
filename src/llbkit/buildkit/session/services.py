"""The gRPC services a session serves to buildkitd: FileSync, FileSend, Auth, Secrets, Health.

Each is an :class:`llbkit.buildkit.rpc.handlers.Service`; :func:`method_paths` lists every method they serve (the
session announces them in its ``X-Docker-Expose-Session-Grpc-Method`` headers).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from llbkit.buildkit.rpc import handlers as rpc_handlers
from llbkit.buildkit.rpc.status import RpcError, StatusCode

from llbkit._proto import auth_pb2, fsutil_types_pb2 as fpb, secrets_pb2
from llbkit.buildkit.session.auth import AuthProvider
from llbkit.buildkit.session.wire import bytes_message_data
from llbkit.buildkit.session.secrets import SecretError, SecretStore

# The transfer machinery (diffcopy, walk, writers) is imported by the calls that use it: a
# session that uploads and exports nothing (`llbkit build` of a definition) starts without it.
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.buildkit.session.walk import FilterOptions
    from llbkit.buildkit.session.writers import AtomicFile
from llbkit.errors import LlbkitError

__all__ = [
    "LocalDir",
    "TransferStats",
    "FileOutput",
    "DirOutput",
    "file_sync_handler",
    "file_send_handler",
    "auth_handler",
    "secrets_handler",
    "health_handler",
    "method_paths",
]

log = logging.getLogger(__name__)

FILESYNC = "moby.filesync.v1.FileSync"
FILESEND = "moby.filesync.v1.FileSend"
AUTH = "moby.filesync.v1.Auth"
SECRETS = "moby.buildkit.secrets.v1.Secrets"
HEALTH = "grpc.health.v1.Health"

KEY_DIR_NAME = "dir-name"
KEY_INCLUDE = "include-patterns"
KEY_EXCLUDE = "exclude-patterns"
KEY_FOLLOW = "followpaths"
KEY_EXPORTER_ID = "buildkit-attachable-exporter-id"
KEY_EXPORTER_META_PREFIX = "exporter-md-"

_QUEUE_DEPTH = 8  # packets in flight per stream (x DATA_CHUNK_SIZE bytes of memory at most)
_END = object()


# ---- configuration objects -------------------------------------------------------------------


class TransferStats:
    """Counters of one local directory's uploads, summed over every sync of the session.

    ``bytes_sent``: file content bytes sent; ``packet_bytes``: every packet's encoded size
    (stats included); ``files_sent``: files whose content was requested; ``syncs``: transfers.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_sent = 0
        self.packet_bytes = 0
        self.files_sent = 0
        self.syncs = 0

    def _add(self, *, data: int = 0, packet: int = 0, files: int = 0, syncs: int = 0) -> None:
        with self._lock:
            self.bytes_sent += data
            self.packet_bytes += packet
            self.files_sent += files
            self.syncs += syncs

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return {
                "bytes_sent": self.bytes_sent,
                "packet_bytes": self.packet_bytes,
                "files_sent": self.files_sent,
                "syncs": self.syncs,
            }

    def __repr__(self) -> str:
        return f"TransferStats({self.snapshot()})"


@dataclass
class LocalDir:
    """A directory served to ``local`` sources of that name.

    ``include``/``exclude``/``follow`` filter on the client side (like a ``.dockerignore``),
    before the filters the LLB source itself asks for.
    """

    path: str
    include: Optional[List[str]] = None
    exclude: Optional[List[str]] = None
    follow: Optional[List[str]] = None
    stats: TransferStats = field(default_factory=TransferStats, repr=False, compare=False)

    def filter(self) -> FilterOptions:
        from llbkit.buildkit.session.walk import FilterOptions

        return FilterOptions(self.include, self.exclude, self.follow)


@dataclass
class FileOutput:
    """An exporter writing one file (tar, oci, docker), written atomically at ``path``.

    ``metadata`` receives the exporter's ``exporter-md-*`` values once the file is written.
    """

    path: str
    metadata: Dict[str, str] = field(default_factory=dict, compare=False)
    #: Keep the received file under its temporary name until :meth:`finish` says whether the
    #: solve succeeded: the byte stream has no end marker, so a daemon dying mid-export can look
    #: like a normal end of stream. The client sets this; without it the file is committed at
    #: the end of the stream.
    defer_commit: bool = field(default=False, compare=False)
    #: A binary stream (``sys.stdout.buffer`` for ``dest=-``) to write to as the bytes arrive,
    #: instead of the file at ``path``: nothing to commit, so a failed solve may leave part of it.
    stream: Optional[BinaryIO] = field(default=None, compare=False, repr=False)
    _pending: Optional[AtomicFile] = field(default=None, compare=False, repr=False)

    def finish(self, succeeded: bool) -> None:
        """Commit (solve succeeded) or remove (failed) a deferred file; idempotent."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.commit() if succeeded else pending.abort()


@dataclass
class DirOutput:
    """The ``local`` exporter's directory, received into a temporary dir and moved to ``path``."""

    path: str


# ---- helpers ---------------------------------------------------------------------------------


def _metadata(context: rpc_handlers.ServicerContext) -> Dict[str, List[str]]:
    md: Dict[str, List[str]] = {}
    for k, v in context.invocation_metadata() or ():
        md.setdefault(k.lower(), []).append(v if isinstance(v, str) else v.decode("latin-1"))
    out: Dict[str, List[str]] = {}
    for k, vals in md.items():
        enc = md.get(k + "-encoded")
        if enc and enc[0].lower() in ("1", "t", "true"):
            vals = [urllib.parse.unquote_plus(v) for v in vals]
        out[k] = vals
    return out


class _Pipe:
    """A bounded queue of outgoing messages that stops blocking once the call is over.

    With the session's own server (:mod:`.h2grpc`), whose context can ``send`` from any thread,
    a message is sent at once by the thread that puts it: no queue, no hand-off."""

    def __init__(self, context: rpc_handlers.ServicerContext) -> None:
        self.q: "queue.Queue[Any]" = queue.Queue(maxsize=_QUEUE_DEPTH)
        self.stopped = threading.Event()
        self._send = getattr(context, "send", None)
        context.add_callback(self.stop)

    def stop(self) -> None:
        self.stopped.set()

    def put(self, item: Any) -> bool:
        if self._send is not None:
            if item is _END:
                self.stopped.set()
                return True
            if self.stopped.is_set():
                return False
            try:
                self._send(item)
                return True
            except Exception:  # the call is over
                self.stopped.set()
                return False
        while not self.stopped.is_set():
            try:
                self.q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def drain(self) -> Iterator[Any]:
        if self._send is not None:  # everything was sent by put(): wait for the end
            self.stopped.wait()
            return
        while True:
            try:
                item = self.q.get(timeout=0.2)
            except queue.Empty:
                if self.stopped.is_set():
                    return
                continue
            if item is _END:
                return
            yield item


def _thread(name: str, target: Callable[[], None]) -> threading.Thread:
    t = threading.Thread(target=target, name=name, daemon=True)
    t.start()
    return t


# ---- FileSync.DiffCopy: upload local directories --------------------------------------------


def _send_dir(
    local: LocalDir, daemon_filter: FilterOptions, requests: Iterator["fpb.Packet"], context: rpc_handlers.ServicerContext
) -> Iterator["fpb.Packet"]:
    from llbkit.buildkit.session.diffcopy import DATA_CHUNK_SIZE, FileRequest, Sender, SenderFinished
    from llbkit.buildkit.session.walk import walk

    sender: Sender[str] = Sender()
    pipe = _Pipe(context)
    stats = local.stats
    stats._add(syncs=1)

    def out(p: "fpb.Packet | bytes", data: int = 0) -> bool:
        stats._add(data=data, packet=len(p) if isinstance(p, bytes) else p.ByteSize())
        return pipe.put(p)

    def lister() -> None:
        try:
            for entry in walk(local.path, [local.filter(), daemon_filter]):
                if not out(sender.stat(entry.stat, entry.abs_path)):
                    return
            out(sender.end_of_listing())
        except Exception as e:  # an unreadable tree: tell the receiver why
            log.debug("file sync of %s failed: %s", local.path, e)
            pipe.put(Sender.error(f"failed to walk {local.path}: {e}"))
            pipe.put(_END)

    buf = bytearray(DATA_CHUNK_SIZE)  # reused for every read of every file

    def send_file(req: FileRequest) -> bool:
        """The DATA packets of one requested file; False once the call is over or failed."""
        stats._add(files=1)
        try:
            fd: Optional[int] = os.open(req.key, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            fd = None  # gone or unreadable since the listing: sent empty, as fsutil does
        try:
            for frame, n in Sender.data_frames(req.id, fd, buf):
                if not out(frame, n):
                    return False
        except OSError as e:
            pipe.put(Sender.error(f"failed to read {req.key}: {e}"))
            pipe.put(_END)
            return False
        finally:
            if fd is not None:
                os.close(fd)
        return True

    def reader() -> None:
        # Files are sent by the thread that reads the requests: a hand-off to another thread per
        # file cost more than the read itself with many small files. While it sends, requests wait
        # in gRPC's buffers; the receiver asks ahead, so the sends never stall on them.
        try:
            for p in requests:
                ev = sender.receive(p)
                if isinstance(ev, FileRequest):
                    if not send_file(ev):
                        return
                elif isinstance(ev, SenderFinished):
                    pipe.put(Sender.fin())
                    pipe.put(_END)
                    return
        except RpcError:
            pass
        except LlbkitError as e:
            pipe.put(Sender.error(str(e)))
        pipe.stop()  # the call ended without FIN

    _thread("llbkit-filesync-list", lister)
    _thread("llbkit-filesync-recv", reader)
    yield from pipe.drain()


def file_sync_handler(dirs: Mapping[str, LocalDir]) -> rpc_handlers.Service:
    def diff_copy(requests: Iterator["fpb.Packet"], context: rpc_handlers.ServicerContext) -> Iterator["fpb.Packet"]:
        md = _metadata(context)
        name = (md.get(KEY_DIR_NAME) or [""])[0]
        local = dirs.get(name)
        if local is None:
            context.abort(StatusCode.NOT_FOUND, f"no access allowed to dir {name!r}")
        from llbkit.buildkit.session.walk import FilterOptions

        daemon_filter = FilterOptions(md.get(KEY_INCLUDE), md.get(KEY_EXCLUDE), md.get(KEY_FOLLOW))
        return _send_dir(local, daemon_filter, requests, context)  # type: ignore[arg-type]

    handler = rpc_handlers.stream_stream(
        diff_copy,
        request_deserializer=fpb.Packet.FromString,
        response_serializer=_serialize_packet,
    )
    return rpc_handlers.Service(FILESYNC, {"DiffCopy": handler})


def _serialize_packet(p: "fpb.Packet | bytes") -> bytes:
    # DATA packets arrive already serialized (wire.data_packet): no second copy of the data.
    return p if isinstance(p, bytes) else p.SerializeToString()


# ---- FileSend.DiffCopy: receive exports -------------------------------------------------------


def _receive_file(
    output: FileOutput, md: Mapping[str, List[str]], requests: Iterator[bytes], context: rpc_handlers.ServicerContext
) -> Iterator[bytes]:
    if output.stream is not None:
        for raw in requests:
            output.stream.write(bytes_message_data(raw))
        output.stream.flush()
        _exporter_metadata(output, md)
        return iter(())
    from llbkit.buildkit.session.writers import AtomicFile

    writer = AtomicFile(output.path)
    try:
        for raw in requests:
            writer.write(bytes_message_data(raw))  # a view: no copy
        if not context.is_active():
            raise LlbkitError(f"the export to {output.path} was cut off: the daemon went away")
        if output.defer_commit:
            output.finish(False)  # a file left from an earlier stream of this output
            output._pending = writer
        else:
            writer.commit()
    except BaseException:
        writer.abort()
        raise
    _exporter_metadata(output, md)
    return iter(())


def _exporter_metadata(output: FileOutput, md: Mapping[str, List[str]]) -> None:
    output.metadata.clear()
    for k, v in md.items():
        if k.startswith(KEY_EXPORTER_META_PREFIX):
            output.metadata[k[len(KEY_EXPORTER_META_PREFIX):]] = ",".join(v)


def _receive_dir(output: DirOutput, requests: Iterator[bytes], context: rpc_handlers.ServicerContext) -> Iterator[bytes]:
    from llbkit.buildkit.session.diffcopy import Receiver
    from llbkit.buildkit.session.writers import AtomicDir

    target = AtomicDir(output.path)
    receiver = Receiver(target.sink)
    pipe = _Pipe(context)

    def reader() -> None:
        try:
            for raw in requests:
                replies = receiver.receive(fpb.Packet.FromString(raw))
                if receiver.fin_sent and replies and replies[-1].type == fpb.Packet.PACKET_FIN:
                    target.commit()  # before FIN: the export is complete once the daemon sees it
                for p in replies:
                    pipe.put(p.SerializeToString())
                if receiver.done:
                    break
            if not receiver.fin_sent:
                raise LlbkitError("the export stream ended before the transfer completed")
        except RpcError:
            target.abort()
        except Exception as e:
            target.abort()
            pipe.put(Receiver.error(f"failed to receive into {output.path}: {e}").SerializeToString())
        pipe.put(_END)

    _thread("llbkit-filesend-recv", reader)
    return pipe.drain()


def file_send_handler(outputs: Mapping[int, "FileOutput | DirOutput"]) -> rpc_handlers.Service:
    def diff_copy(requests: Iterator[bytes], context: rpc_handlers.ServicerContext) -> Iterator[bytes]:
        md = _metadata(context)
        try:
            exporter_id = int((md.get(KEY_EXPORTER_ID) or ["0"])[0])
        except ValueError:
            exporter_id = 0
        output = outputs.get(exporter_id)
        if output is None:
            context.abort(StatusCode.NOT_FOUND, f"exporter {exporter_id} not found")
        if isinstance(output, DirOutput):
            return _receive_dir(output, requests, context)
        return _receive_file(output, md, requests, context)  # type: ignore[arg-type]

    handler = rpc_handlers.stream_stream(diff_copy)  # raw bytes: two message types
    return rpc_handlers.Service(FILESEND, {"DiffCopy": handler})


# ---- Auth ------------------------------------------------------------------------------------


def auth_handler(provider: AuthProvider) -> rpc_handlers.Service:
    def credentials(req: "auth_pb2.CredentialsRequest", context: rpc_handlers.ServicerContext) -> "auth_pb2.CredentialsResponse":
        try:
            creds = provider.credentials(req.Host)
        except LlbkitError as e:
            context.abort(StatusCode.INTERNAL, str(e))
        # BuildKit's protocol: an identity token goes in Secret with an empty Username.
        if creds.identity_token:
            return auth_pb2.CredentialsResponse(Username="", Secret=creds.identity_token)
        return auth_pb2.CredentialsResponse(Username=creds.username, Secret=creds.password)

    def unimplemented(name: str) -> Callable[[Any, rpc_handlers.ServicerContext], Any]:
        def fn(req: Any, context: rpc_handlers.ServicerContext) -> Any:
            # buildkitd then falls back to Credentials and fetches tokens itself
            context.abort(StatusCode.UNIMPLEMENTED, f"{name} is not implemented")

        return fn

    def unary(fn: Callable[..., Any], req_type: Any, resp_type: Any) -> rpc_handlers.MethodHandler:
        return rpc_handlers.unary_unary(
            fn, request_deserializer=req_type.FromString, response_serializer=resp_type.SerializeToString
        )

    return rpc_handlers.Service(
        AUTH,
        {
            "Credentials": unary(credentials, auth_pb2.CredentialsRequest, auth_pb2.CredentialsResponse),
            "FetchToken": unary(unimplemented("FetchToken"), auth_pb2.FetchTokenRequest, auth_pb2.FetchTokenResponse),
            "GetTokenAuthority": unary(
                unimplemented("GetTokenAuthority"), auth_pb2.GetTokenAuthorityRequest, auth_pb2.GetTokenAuthorityResponse
            ),
            "VerifyTokenAuthority": unary(
                unimplemented("VerifyTokenAuthority"),
                auth_pb2.VerifyTokenAuthorityRequest,
                auth_pb2.VerifyTokenAuthorityResponse,
            ),
        },
    )


# ---- Secrets ---------------------------------------------------------------------------------


def secrets_handler(store: SecretStore) -> rpc_handlers.Service:
    def get_secret(req: "secrets_pb2.GetSecretRequest", context: rpc_handlers.ServicerContext) -> "secrets_pb2.GetSecretResponse":
        try:
            value = store.get(req.ID)
        except SecretError as e:
            context.abort(StatusCode.INTERNAL, str(e))  # the message names the source, not the value
        if value is None:
            context.abort(StatusCode.NOT_FOUND, f"secret {req.ID} not found")
        return secrets_pb2.GetSecretResponse(data=value)

    handler = rpc_handlers.unary_unary(
        get_secret,
        request_deserializer=secrets_pb2.GetSecretRequest.FromString,
        response_serializer=secrets_pb2.GetSecretResponse.SerializeToString,
    )
    return rpc_handlers.Service(SECRETS, {"GetSecret": handler})


# ---- Health ----------------------------------------------------------------------------------

# grpc.health.v1.HealthCheckResponse{status: SERVING}: field 1, varint 1.
_SERVING = b"\x08\x01"


def health_handler() -> rpc_handlers.Service:
    """buildkitd checks the session every few seconds and drops it after failed checks."""

    def check(req: bytes, context: rpc_handlers.ServicerContext) -> bytes:
        return _SERVING

    return rpc_handlers.Service(HEALTH, {"Check": rpc_handlers.unary_unary(check)})


def method_paths(services: Iterable[Tuple[str, Iterable[str]]]) -> List[str]:
    """``/<service>/<method>`` for each (service, methods) pair, in order."""
    return [f"/{svc}/{m}" for svc, methods in services for m in methods]


SERVICE_METHODS = {
    FILESYNC: ("DiffCopy",),
    FILESEND: ("DiffCopy",),
    AUTH: ("Credentials", "FetchToken", "GetTokenAuthority", "VerifyTokenAuthority"),
    SECRETS: ("GetSecret",),
    HEALTH: ("Check",),
}
