"""The session's content service: client-side OCI content stores that buildkitd reads and writes.

buildkitd calls ``containerd.services.content.v1.Content`` over the session for the local cache
(``--export-cache type=local,dest=DIR`` writes blobs, ``--import-cache type=local,src=DIR`` reads
them) and for the ``oci``/``docker`` exporters with ``tar=false``. Each call names its store in
the ``buildkit-attachable-store-id`` metadata (``local:<dir>`` or ``export``), as BuildKit's
``session/content`` attachable expects; the stores are :class:`~llbkit.oci.store.OCIStore`.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterator, Mapping

from llbkit.buildkit.rpc import handlers as rpc_handlers
from llbkit.buildkit.rpc.status import StatusCode
from google.protobuf import empty_pb2

from llbkit._proto import content_pb2 as cpb
from llbkit.oci.store import (
    AlreadyExists,
    ContentError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OCIStore,
    Unavailable,
)

__all__ = ["CONTENT", "CONTENT_METHODS", "STORE_ID_HEADER", "content_handler"]

log = logging.getLogger(__name__)

CONTENT = "containerd.services.content.v1.Content"
CONTENT_METHODS = ("Info", "Update", "List", "Delete", "Read", "Status", "ListStatuses", "Write", "Abort")
STORE_ID_HEADER = "buildkit-attachable-store-id"

_CODES = {
    NotFound: StatusCode.NOT_FOUND,
    AlreadyExists: StatusCode.ALREADY_EXISTS,
    Unavailable: StatusCode.UNAVAILABLE,
    InvalidArgument: StatusCode.INVALID_ARGUMENT,
    FailedPrecondition: StatusCode.FAILED_PRECONDITION,
}


def _ts(msg: Any, seconds: float) -> None:
    msg.seconds = int(seconds)
    msg.nanos = int((seconds - int(seconds)) * 1e9)


def _info_pb(info: Any) -> "cpb.Info":
    out = cpb.Info(digest=info.digest, size=info.size, labels=dict(info.labels))
    _ts(out.created_at, info.created_at)
    _ts(out.updated_at, info.updated_at)
    return out


def _status_pb(st: Any) -> "cpb.Status":
    out = cpb.Status(ref=st.ref, offset=st.offset, total=st.total, expected=st.expected)
    _ts(out.started_at, st.started_at)
    _ts(out.updated_at, st.updated_at)
    return out


def _abort(context: rpc_handlers.ServicerContext, e: ContentError) -> None:
    code = next((c for t, c in _CODES.items() if isinstance(e, t)), StatusCode.UNKNOWN)
    context.abort(code, str(e))


def content_handler(stores: Mapping[str, OCIStore]) -> rpc_handlers.Service:
    """Serve ``stores`` (by store id) as containerd's content service."""

    def choose(context: rpc_handlers.ServicerContext) -> OCIStore:
        ids = [v for k, v in (context.invocation_metadata() or ()) if k.lower() == STORE_ID_HEADER]
        if not ids:
            context.abort(StatusCode.INVALID_ARGUMENT, f"request lacks metadata {STORE_ID_HEADER!r}")
        store = stores.get(ids[0] if isinstance(ids[0], str) else ids[0].decode())
        if store is None:
            context.abort(StatusCode.NOT_FOUND, f"unknown store {ids[0]}")
        return store  # type: ignore[return-value]

    def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(req: Any, context: rpc_handlers.ServicerContext) -> Any:
            try:
                return fn(choose(context), req, context)
            except ContentError as e:
                _abort(context, e)

        return call

    def guarded_stream(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        def call(req: Any, context: rpc_handlers.ServicerContext) -> Iterator[Any]:
            try:
                yield from fn(choose(context), req, context)
            except ContentError as e:
                _abort(context, e)

        return call

    def info(store: OCIStore, req: "cpb.InfoRequest", context: Any) -> "cpb.InfoResponse":
        return cpb.InfoResponse(info=_info_pb(store.info(req.digest)))

    def update(store: OCIStore, req: "cpb.UpdateRequest", context: Any) -> "cpb.UpdateResponse":
        # Like containerd's local store without a label store (buildctl's): labels are not kept.
        raise FailedPrecondition("update not supported on immutable content store")

    def list_(store: OCIStore, req: "cpb.ListContentRequest", context: Any) -> Iterator["cpb.ListContentResponse"]:
        batch = []
        for info in store.walk():
            batch.append(_info_pb(info))
            if len(batch) == 100:
                yield cpb.ListContentResponse(info=batch)
                batch = []
        if batch:
            yield cpb.ListContentResponse(info=batch)

    def delete(store: OCIStore, req: "cpb.DeleteContentRequest", context: Any) -> Any:
        store.delete(req.digest)
        return empty_pb2.Empty()

    def read(store: OCIStore, req: "cpb.ReadContentRequest", context: Any) -> Iterator["cpb.ReadContentResponse"]:
        for offset, data in store.read(req.digest, req.offset, req.size):
            yield cpb.ReadContentResponse(offset=offset, data=data)

    def status(store: OCIStore, req: "cpb.StatusRequest", context: Any) -> "cpb.StatusResponse":
        return cpb.StatusResponse(status=_status_pb(store.status(req.ref)))

    def list_statuses(store: OCIStore, req: "cpb.ListStatusesRequest", context: Any) -> "cpb.ListStatusesResponse":
        return cpb.ListStatusesResponse(statuses=[_status_pb(s) for s in store.statuses()])

    def abort(store: OCIStore, req: "cpb.AbortRequest", context: Any) -> Any:
        store.abort(req.ref)
        return empty_pb2.Empty()

    def write(requests: Iterator["cpb.WriteContentRequest"], context: rpc_handlers.ServicerContext) -> Iterator["cpb.WriteContentResponse"]:
        store = choose(context)
        ing = None
        committed = False
        try:
            first = next(requests, None)
            if first is None:
                return
            if not first.ref:
                raise InvalidArgument("first message must have a reference")
            ing = store.open_writer(first.ref, first.total, first.expected)
            req = first
            while True:
                if req.expected and req.expected != ing.expected:
                    ing.expected = req.expected
                    if store.has(req.expected):
                        store.abort(ing.ref)
                        ing = None
                        raise AlreadyExists(f"blob with expected digest {req.expected} exists")
                if req.total > 0:
                    ing.total = req.total
                resp = cpb.WriteContentResponse(action=req.action, offset=ing.offset)
                if req.action == cpb.STAT:
                    resp.digest = ing.digest()
                    resp.total = ing.total
                    _ts(resp.started_at, ing.started_at)
                    _ts(resp.updated_at, ing.updated_at)
                else:
                    if req.offset > 0 and req.offset != ing.offset:
                        raise ContentError(f"write @{req.offset} must occur at current offset {ing.offset}")
                    if req.offset == 0 and ing.offset > 0:
                        ing.truncate()
                    if req.data:
                        ing.write(req.data)
                    resp.offset = ing.offset
                    if req.action == cpb.COMMIT:
                        digest = store.commit(ing, ing.total, ing.expected)
                        committed = True
                        resp.digest = digest
                        resp.total = resp.offset
                        yield resp
                        return
                    resp.digest = ing.digest()
                yield resp
                req = next(requests, None)
                if req is None:
                    return
        except ContentError as e:
            if not isinstance(e, AlreadyExists):
                log.debug("content write to %s failed: %s", store.root, e)
            _abort(context, e)
        finally:
            if ing is not None and not committed:
                store.release(ing)

    def unary(fn: Callable[..., Any], req_type: Any, resp_type: Any) -> rpc_handlers.MethodHandler:
        return rpc_handlers.unary_unary(
            guarded(fn), request_deserializer=req_type.FromString, response_serializer=resp_type.SerializeToString)

    def server_stream(fn: Callable[..., Any], req_type: Any, resp_type: Any) -> rpc_handlers.MethodHandler:
        return rpc_handlers.unary_stream(
            guarded_stream(fn), request_deserializer=req_type.FromString, response_serializer=resp_type.SerializeToString)

    empty = empty_pb2.Empty
    handlers: Dict[str, rpc_handlers.MethodHandler] = {
        "Info": unary(info, cpb.InfoRequest, cpb.InfoResponse),
        "Update": unary(update, cpb.UpdateRequest, cpb.UpdateResponse),
        "List": server_stream(list_, cpb.ListContentRequest, cpb.ListContentResponse),
        "Delete": unary(delete, cpb.DeleteContentRequest, empty),
        "Read": server_stream(read, cpb.ReadContentRequest, cpb.ReadContentResponse),
        "Status": unary(status, cpb.StatusRequest, cpb.StatusResponse),
        "ListStatuses": unary(list_statuses, cpb.ListStatusesRequest, cpb.ListStatusesResponse),
        "Write": rpc_handlers.stream_stream(
            write, request_deserializer=cpb.WriteContentRequest.FromString,
            response_serializer=cpb.WriteContentResponse.SerializeToString),
        "Abort": unary(abort, cpb.AbortRequest, empty),
    }
    return rpc_handlers.Service(CONTENT, handlers)
