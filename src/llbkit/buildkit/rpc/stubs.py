"""Client stubs made from a service's protobuf descriptor, in place of the generated ``*_pb2_grpc``
modules (which import grpc).

``Stub(channel, control_pb2.DESCRIPTOR.services_by_name["Control"])`` has one attribute per
method (``stub.Info(req, timeout=...)``, ``stub.Status(req)`` iterating responses), each the
channel's callable for that method's kind with the messages' (de)serializers.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message_factory import GetMessageClass

__all__ = ["Stub"]


class Stub:
    def __init__(self, channel: Any, service: Any) -> None:
        for m in service.methods:
            path = f"/{service.full_name}/{m.name}"
            req = GetMessageClass(m.input_type)
            resp = GetMessageClass(m.output_type)
            if m.client_streaming and m.server_streaming:
                factory = channel.stream_stream
            elif m.client_streaming:
                raise NotImplementedError(f"{path}: client-streaming calls are not used by llbkit")
            elif m.server_streaming:
                factory = channel.unary_stream
            else:
                factory = channel.unary_unary
            setattr(self, m.name, factory(path, request_serializer=req.SerializeToString,
                                          response_deserializer=resp.FromString))
