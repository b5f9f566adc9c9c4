"""The socket under a gRPC connection: ``unix://``, plain ``tcp://``, or TLS with Python's ``ssl``.

TLS runs on memory BIOs (``ssl.SSLContext.wrap_bio``) under one lock, not on an ``SSLSocket``:
the connection's reader thread decrypts while other threads encrypt, and an OpenSSL connection
must not be used from two threads at once. ALPN offers ``h2`` (gRPC-Go's server refuses a TLS
client that does not).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:  # pragma: no cover
    import ssl

__all__ = ["Endpoint", "TLSSettings", "TransportError", "Transport", "dial"]

_RECV = 256 * 1024


class TransportError(ConnectionError):
    """The connection failed below gRPC. ``kind``: ``closed`` (the peer closed it),
    ``tls-closed`` (closed during the TLS handshake), ``not-http2`` (what came back is not
    HTTP/2), ``no-alpn`` (TLS without ``h2``)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class TLSSettings:
    ca: Optional[bytes] = None  # PEM; None: the system's CAs
    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    server_name: Optional[str] = None  # the name checked in the server's certificate

    def context(self) -> "ssl.SSLContext":
        import ssl  # here: unix sockets and plain TCP start faster without it

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca is not None:
            ctx.load_verify_locations(cadata=self.ca.decode("ascii", "replace"))
        else:
            ctx.load_default_certs()
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.set_alpn_protocols(["h2"])
        return ctx


@dataclass(frozen=True)
class Endpoint:
    """Where to connect: a unix socket ``path``, or ``host``:``port`` (with ``tls``, or plain)."""

    path: str = ""
    host: str = ""
    port: int = 0
    tls: Optional[TLSSettings] = None

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


class Transport:
    """A connected byte stream: :meth:`send` (whole, from one thread at a time), :meth:`recv`
    (from one thread; ``b""`` at the end), :meth:`close` (from any thread)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        return self.sock.recv(_RECV)

    def settimeout(self, timeout: Optional[float]) -> None:
        self.sock.settimeout(timeout)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread blocked in recv
        except OSError:
            pass
        self.sock.close()


class TLSTransport(Transport):
    def __init__(self, sock: socket.socket, ctx: "ssl.SSLContext", server_hostname: str) -> None:
        import ssl

        super().__init__(sock)
        self._ssl = ssl
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = ctx.wrap_bio(self._in, self._out, server_hostname=server_hostname)
        self._lock = threading.Lock()
        self._eof = False

    def handshake(self) -> None:
        ssl = self._ssl
        while True:
            try:
                with self._lock:
                    self._tls.do_handshake()
                    out = self._out.read()
                if out:
                    self.sock.sendall(out)
                break
            except ssl.SSLWantReadError:
                with self._lock:
                    out = self._out.read()
                if out:
                    self.sock.sendall(out)
                raw = self.sock.recv(_RECV)
                if not raw:
                    raise TransportError("the server closed the connection during the TLS handshake", "tls-closed")
                self._in.write(raw)
        if self._tls.selected_alpn_protocol() not in ("h2", None):
            raise TransportError(f"the server chose protocol {self._tls.selected_alpn_protocol()!r}, not h2",
                                 "no-alpn")

    def send(self, data: bytes) -> None:
        with self._lock:
            view = memoryview(data)
            while view:
                n = self._tls.write(view)
                view = view[n:]
            out = self._out.read()
            self.sock.sendall(out)  # under the lock: TLS records go out in the order they were made

    def recv(self) -> bytes:
        ssl = self._ssl
        while True:
            with self._lock:
                parts = []
                try:
                    while True:
                        chunk = self._tls.read(_RECV)
                        if not chunk:  # close_notify
                            break
                        parts.append(chunk)
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                    if not parts:
                        return b""
                pending = self._out.read()  # answers to post-handshake messages (key update)
                if pending:
                    self.sock.sendall(pending)
            if parts:
                return b"".join(parts)
            if self._eof:
                return b""
            raw = self.sock.recv(_RECV)
            if not raw:
                self._eof = True
                self._in.write_eof()
                continue
            self._in.write(raw)


def dial(endpoint: Endpoint, timeout: Optional[float]) -> Transport:
    """Connect (and shake hands) within ``timeout`` seconds; raises ``OSError`` (``socket.timeout``,
    ``ssl.SSLError``, :class:`TransportError`...)."""
    sock: Union[socket.socket, None] = None
    try:
        if endpoint.path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(endpoint.path)
        else:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if endpoint.tls is None:
            return Transport(sock)
        t = TLSTransport(sock, endpoint.tls.context(), endpoint.tls.server_name or endpoint.host)
        try:
            t.handshake()
        except (ConnectionResetError, BrokenPipeError) as e:  # a plain listener hung up on our hello
            raise TransportError(f"the server dropped the connection during the TLS handshake: {e}",
                                 "tls-closed") from e
        return t
    except BaseException:
        if sock is not None:
            sock.close()
        raise
