"""What a served gRPC service is made of: method handlers, a service of them, the call's context.

The session's services (:mod:`llbkit.buildkit.session.services`) are built from these and served
by :class:`llbkit.buildkit.session.h2grpc.GrpcOverH2`. The shapes are grpc-python's
(``service(details)`` returning a handler with ``request_streaming``, ``unary_unary``...), so a
handler reads the same either way; nothing here imports grpc.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Optional, Tuple

try:  # Protocol is in typing from 3.8
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore[assignment]

from llbkit.buildkit.rpc.status import StatusCode

__all__ = [
    "ServicerContext",
    "MethodHandler",
    "Service",
    "unary_unary",
    "unary_stream",
    "stream_stream",
]


class ServicerContext(Protocol):
    """What a handler may use of its call (see ``h2grpc._Context``)."""

    def invocation_metadata(self) -> Tuple[Tuple[str, Any], ...]: ...

    def is_active(self) -> bool: ...

    def abort(self, code: StatusCode, details: str) -> None: ...

    def add_callback(self, callback: Callable[[], None]) -> bool: ...

    def set_code(self, code: StatusCode) -> None: ...

    def set_details(self, details: str) -> None: ...


@dataclass(frozen=True)
class MethodHandler:
    request_streaming: bool
    response_streaming: bool
    request_deserializer: Optional[Callable[[bytes], Any]] = None
    response_serializer: Optional[Callable[[Any], bytes]] = None
    unary_unary: Optional[Callable[[Any, Any], Any]] = None
    unary_stream: Optional[Callable[[Any, Any], Iterator[Any]]] = None
    stream_unary: Optional[Callable[[Iterator[Any], Any], Any]] = None
    stream_stream: Optional[Callable[[Iterator[Any], Any], Iterator[Any]]] = None


def unary_unary(fn: Callable[[Any, Any], Any], request_deserializer: Optional[Callable[[bytes], Any]] = None,
                response_serializer: Optional[Callable[[Any], bytes]] = None) -> MethodHandler:
    return MethodHandler(False, False, request_deserializer, response_serializer, unary_unary=fn)


def unary_stream(fn: Callable[[Any, Any], Iterator[Any]], request_deserializer: Optional[Callable[[bytes], Any]] = None,
                 response_serializer: Optional[Callable[[Any], bytes]] = None) -> MethodHandler:
    return MethodHandler(False, True, request_deserializer, response_serializer, unary_stream=fn)


def stream_stream(fn: Callable[[Iterator[Any], Any], Iterator[Any]],
                  request_deserializer: Optional[Callable[[bytes], Any]] = None,
                  response_serializer: Optional[Callable[[Any], bytes]] = None) -> MethodHandler:
    return MethodHandler(True, True, request_deserializer, response_serializer, stream_stream=fn)


class Service:
    """The methods of one service, by name: ``service(details)`` finds the handler of
    ``details.method`` (``/pkg.Service/Method``), or None."""

    def __init__(self, name: str, methods: Mapping[str, MethodHandler]) -> None:
        self.name = name
        self._by_path = {f"/{name}/{m}": h for m, h in methods.items()}

    def service(self, details: Any) -> Optional[MethodHandler]:
        return self._by_path.get(details.method)

    def paths(self) -> Tuple[str, ...]:
        return tuple(self._by_path)
