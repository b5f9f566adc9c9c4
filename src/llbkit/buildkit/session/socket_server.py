"""The session's gRPC server (:class:`~.h2grpc.GrpcOverH2`) on a unix socket instead of the tunnel.

buildkitd reaches a session only through ``Control.Session``; this serves the same handlers to a
local client (llbkit's own :class:`~llbkit.buildkit.rpc.channel.Channel`), which is how the
services' tests call them as buildkitd does, through both of llbkit's HTTP/2 sides.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, List, Sequence

from llbkit.buildkit.session.h2grpc import GrpcOverH2

__all__ = ["SocketServer"]


class SocketServer:
    """Serves ``handlers`` on a unix socket at ``path``: each connection its own server and two
    threads (socket -> :meth:`GrpcOverH2.feed`, :meth:`GrpcOverH2.outgoing` -> socket)."""

    def __init__(self, handlers: Sequence[Any], path: str) -> None:
        self._handlers = list(handlers)
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen()
        self._servers: List[GrpcOverH2] = []
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="llbkit-socket-server", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            server = GrpcOverH2(self._handlers)
            with self._lock:
                self._servers.append(server)
                self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn, server), daemon=True).start()
            threading.Thread(target=self._write, args=(conn, server), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, server: GrpcOverH2) -> None:
        try:
            while True:
                data = conn.recv(256 * 1024)
                if not data:
                    break
                server.feed(data)
        except OSError:
            pass
        finally:
            server.close()

    @staticmethod
    def _write(conn: socket.socket, server: GrpcOverH2) -> None:
        try:
            for chunk in server.outgoing():
                conn.sendall(chunk)
        except OSError:
            server.close()

    def close(self) -> None:
        self._sock.close()
        with self._lock:
            servers, conns = list(self._servers), list(self._conns)
        for s in servers:
            s.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for s in servers:
            s.join(5)
