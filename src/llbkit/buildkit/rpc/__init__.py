"""gRPC for llbkit without grpc-python: both sides of HTTP/2 on llbkit's own code.

- :mod:`.hpack` and :mod:`.h2`: HPACK and one HTTP/2 connection, either side, sans-IO (bytes in,
  events out, typed errors);
- :mod:`.wire`: what a gRPC client puts on HTTP/2 (request headers, message framing, the status
  in the trailers), sans-IO;
- :mod:`.status`: :class:`~.status.StatusCode` and :class:`~.status.RpcError`;
- :mod:`.transport`: the socket driver (``unix``, plain TCP, TLS with ``ssl``, ALPN ``h2``);
- :mod:`.channel`: the client channel (unary, server-streaming and bidi calls, deadlines,
  cancellation), one reader thread per connection;
- :mod:`.stubs`: a service's client callables from its protobuf descriptor;
- :mod:`.handlers`: the shapes of served methods, which the session's own server
  (:mod:`llbkit.buildkit.session.h2grpc`) runs.
"""
