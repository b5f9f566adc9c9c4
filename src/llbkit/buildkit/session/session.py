"""A BuildKit session: what the client serves to buildkitd over ``Control.Session``."""

from __future__ import annotations

import os
import secrets as _random
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Union

from llbkit.buildkit.rpc.handlers import Service
from llbkit.buildkit.session.auth import AuthProvider, DockerAuthProvider
from llbkit.buildkit.session.secrets import SecretLike, SecretStore
from llbkit.buildkit.session.services import (
    AUTH,
    FILESEND,
    FILESYNC,
    HEALTH,
    SECRETS,
    SERVICE_METHODS,
    DirOutput,
    FileOutput,
    LocalDir,
    TransferStats,
    auth_handler,
    file_send_handler,
    file_sync_handler,
    health_handler,
    method_paths,
    secrets_handler,
)
from llbkit.buildkit.session.h2grpc import GrpcOverH2
from llbkit.buildkit.session.tunnel import SESSION_METHOD, Tunnel
from llbkit.errors import SessionError

if TYPE_CHECKING:  # pragma: no cover
    from llbkit.buildkit.session.ssh import SshLike

# The content store and ssh services are imported when a session serves them (a build with
# neither, e.g. `llbkit build` of a definition, starts faster without their modules).
CONTENT = "containerd.services.content.v1.Content"
SSH = "moby.sshforward.v1.SSH"

__all__ = ["Session", "new_session_id"]

HEADER_ID = "x-docker-expose-session-uuid"
HEADER_NAME = "x-docker-expose-session-name"
HEADER_SHARED_KEY = "x-docker-expose-session-sharedkey"
HEADER_METHOD = "x-docker-expose-session-grpc-method"

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _method_names(service: str) -> Tuple[str, ...]:
    if service == CONTENT:
        from llbkit.buildkit.session.content import CONTENT_METHODS

        return tuple(CONTENT_METHODS)
    if service == SSH:
        from llbkit.buildkit.session.ssh import SSH_METHODS

        return tuple(SSH_METHODS)
    return tuple(SERVICE_METHODS[service])


def new_session_id() -> str:
    """A random 25-character base-36 ID, like BuildKit's ``identity.NewID``."""
    return "".join(_random.choice(_ALPHABET) for _ in range(25))


LocalDirLike = Union[LocalDir, str, "os.PathLike[str]"]
OutputLike = Union[FileOutput, DirOutput]


class Session:
    """The client side of one BuildKit session (see the package docs for the whole picture).

    Pass ``Session.id`` as ``SolveRequest.Session``; call :meth:`run` with a channel to the
    daemon before (or while) solving, and :meth:`close` when the solve is over.
    """

    def __init__(
        self,
        *,
        local_dirs: Optional[Mapping[str, LocalDirLike]] = None,
        secrets: Optional[Mapping[str, SecretLike]] = None,
        auth: Union[AuthProvider, bool, None] = True,
        outputs: Optional[Mapping[int, OutputLike]] = None,
        content_stores: Optional[Mapping[str, Any]] = None,
        ssh: Optional[Mapping[str, SshLike]] = None,
        shared_key: str = "",
        name: str = "llbkit",
        session_id: Optional[str] = None,
    ) -> None:
        self.id = session_id or new_session_id()
        self.shared_key = shared_key
        self.name = name
        self.local_dirs: Dict[str, LocalDir] = {
            k: v if isinstance(v, LocalDir) else LocalDir(os.fspath(v)) for k, v in (local_dirs or {}).items()
        }
        self.secrets = SecretStore(secrets or {})
        if auth is True:
            self.auth: Optional[AuthProvider] = DockerAuthProvider()
        elif auth is False or auth is None:
            self.auth = None
        else:
            self.auth = auth
        self.outputs: Dict[int, OutputLike] = dict(outputs or {})
        for idx, out in self.outputs.items():
            if not isinstance(out, (FileOutput, DirOutput)):
                raise SessionError(
                    f"output {idx}: expected FileOutput or DirOutput, got {type(out).__name__}"
                )
        #: OCI content stores buildkitd reaches by store id (``local:<dir>``: the local cache;
        #: ``export``: oci/docker exports with tar=false), each an ``llbkit.oci.store.OCIStore``.
        self.content_stores: Dict[str, Any] = dict(content_stores or {})
        #: ssh agents forwarded to runs with ssh mounts, by id (``default``...): socket paths.
        self.ssh: Dict[str, SshLike] = dict(ssh or {})
        self._lock = threading.Lock()
        self._server: Optional[GrpcOverH2] = None
        self._tunnel: Optional[Tunnel] = None
        self._closed = False

    # -- what is served ----------------------------------------------------------------------
    def _services(self) -> List[Tuple[str, Service]]:
        out: List[Tuple[str, Service]] = [(HEALTH, health_handler())]
        if self.local_dirs:
            out.append((FILESYNC, file_sync_handler(self.local_dirs)))
        if self.outputs:
            out.append((FILESEND, file_send_handler(self.outputs)))
        if self.auth is not None:
            out.append((AUTH, auth_handler(self.auth)))
        out.append((SECRETS, secrets_handler(self.secrets)))
        if self.content_stores:
            from llbkit.buildkit.session.content import content_handler

            out.append((CONTENT, content_handler(self.content_stores)))
        if self.ssh:
            from llbkit.buildkit.session.ssh import ssh_handler

            out.append((SSH, ssh_handler(self.ssh)))
        return out

    def methods(self) -> List[str]:
        """Every gRPC method this session serves, as announced to buildkitd."""
        return method_paths((svc, _method_names(svc)) for svc, _ in self._services())

    def headers(self) -> List[Tuple[str, str]]:
        """The ``Control.Session`` call's metadata (lowercase keys, one entry per method)."""
        md = [(HEADER_ID, self.id), (HEADER_NAME, self.name), (HEADER_SHARED_KEY, self.shared_key)]
        md += [(HEADER_METHOD, m) for m in self.methods()]
        return md

    def stats(self, name: str) -> TransferStats:
        """Upload counters of the local directory ``name``."""
        return self.local_dirs[name].stats

    def bytes_sent(self, name: str) -> int:
        """File content bytes uploaded so far from the local directory ``name``."""
        return self.local_dirs[name].stats.bytes_sent

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self, channel: Any) -> None:
        """Attach the session to the daemon behind ``channel``; serves in background threads."""
        with self._lock:
            if self._closed:
                raise SessionError(f"session {self.id} is closed")
            if self._server is not None:
                raise SessionError(f"session {self.id} is already running")
            # The services are served on the session stream itself (see h2grpc): buildkitd's
            # HTTP/2 connection is parsed here, with no second gRPC stack behind a socket.
            self._server = GrpcOverH2([h for _, h in self._services()])
            try:
                self._tunnel = Tunnel(self._server)
                # raw bytes both ways: the tunnel encodes and decodes BytesMessage itself
                self._tunnel.start(channel.stream_stream(SESSION_METHOD), self.headers())
            except Exception as e:
                self._stop_locked()
                raise SessionError(f"failed to start session {self.id}: {e}") from e

    @property
    def error(self) -> Optional[BaseException]:
        """The tunnel's failure, if the ``Control.Session`` call ended with an error."""
        return self._tunnel.error if self._tunnel is not None else None

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until buildkitd ends the session; True if it did within ``timeout``."""
        if self._tunnel is None:
            return True
        return self._tunnel.done.wait(timeout)

    def finish_outputs(self, succeeded: bool) -> None:
        """Commit (or, when the solve failed, remove) the file outputs made with ``defer_commit``."""
        for out in self.outputs.values():
            finish = getattr(out, "finish", None)
            if finish is not None:
                finish(succeeded)

    def close(self) -> None:
        """Stop serving and end the ``Control.Session`` call; idempotent."""
        with self._lock:
            self._closed = True
            self._stop_locked()

    def _stop_locked(self) -> None:
        for store in self.content_stores.values():
            store.close()  # unfinished writes of a cut-off solve
        if self._tunnel is not None:
            self._tunnel.close()
        if self._server is not None:
            self._server.close()
            self._server.join(5)  # handlers clean up (a cut-off export's temporary file)
            self._server = None

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Session {self.id} dirs={sorted(self.local_dirs)} secrets={self.secrets.ids()} "
            f"outputs={sorted(self.outputs)}>"
        )

