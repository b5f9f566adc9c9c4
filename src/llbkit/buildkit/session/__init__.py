"""The client side of a BuildKit session, served to buildkitd over ``Control.Session``.

During a solve buildkitd calls back into the client: to read local directories (``local``
sources), to hand over exported files, to ask for registry credentials and secret values. The
client opens a ``Control.Session`` call whose messages carry the bytes of an HTTP/2 connection on
which buildkitd is the gRPC client and the session the server. llbkit parses that connection
itself: HTTP/2 and HPACK sans-IO (:mod:`.h2`, :mod:`.hpack`), the calls run by a small gRPC
server in this process (:mod:`.h2grpc`), fed by the tunnel (:mod:`.tunnel`). Served services:

- ``FileSync.DiffCopy``: uploads a local directory with fsutil's protocol (:mod:`.diffcopy`):
  a listing of stats in fsutil's order (include/exclude/follow filters as in BuildKit,
  :mod:`.walk`, :mod:`.patterns`), then the content of the files buildkitd asks for, streamed in
  chunks. buildkitd asks only for files whose stat changed since its last sync with the same
  shared key and local name, so a later solve re-sends only what changed.
- ``FileSend.DiffCopy``: receives exports: one file (``tar``, ``oci``, ``docker``) written
  atomically, or a directory (``local``) received into a temporary directory and moved into place
  (:mod:`.writers`).
- ``Auth.Credentials`` from the docker ``config.json`` and its credential helpers (:mod:`.auth`, over the one lookup in :mod:`llbkit.oci.auth`);
  the token-authority methods answer Unimplemented, so buildkitd fetches tokens itself.
- ``Secrets.GetSecret`` from files, environment variables or bytes (:mod:`.secrets`); an unknown
  ID answers NotFound. Values are never logged.
- ``grpc.health.v1.Health/Check`` (buildkitd drops sessions that fail it).
- ``containerd.services.content.v1.Content`` when the session has ``content_stores``: OCI layout
  directories buildkitd reads and writes by store id, for the local cache and for ``oci``/
  ``docker`` exports with ``tar=false`` (:mod:`.content`, :mod:`llbkit.oci.store`).

Bulk data is hand-framed (:mod:`.wire`): file chunks and tunnel messages are serialized by
joining a few header bytes to the data, so each byte is copied once per hop, not three times;
many small gRPC messages (an upload of small files) leave as one large tunnel message.

Use::

    from llbkit.buildkit.session import Session, LocalDir, FileOutput, DirOutput, SecretSource

    session = Session(
        local_dirs={"context": LocalDir("./app", exclude=["*.pyc"])},   # or just a path
        secrets={"token": SecretSource(env="API_TOKEN")},               # file=, env= or value=
        outputs={0: FileOutput("out/image.tar")},  # key: index in SolveRequest.Exporters
        content_stores={"local:" + os.path.abspath("cache"): OCIStore("cache")},  # by store id
        auth=True,            # DockerAuthProvider() (default); an AuthProvider; or None
        shared_key="",        # same key + same local name => incremental uploads
    )
    session.run(channel)      # background threads; SolveRequest(Session=session.id, ...)
    ...                       # solve
    session.close()           # idempotent; also a context manager
    session.bytes_sent("context")   # file bytes uploaded (session.stats(name) for more)

A ``local`` exporter needs ``DirOutput(path)``; ``tar``/``oci``/``docker`` need ``FileOutput(path)``
(its ``metadata`` gets the exporter's ``exporter-md-*`` values).
"""

from __future__ import annotations

from llbkit.buildkit.session.auth import (
    AuthProvider,
    Credentials,
    DockerAuthProvider,
    StaticAuthProvider,
)
from llbkit.buildkit.session.secrets import SecretSource, SecretStore
from llbkit.buildkit.session.services import DirOutput, FileOutput, LocalDir, TransferStats
from llbkit.buildkit.session.session import Session, new_session_id
from llbkit.errors import SessionError

__all__ = [
    "Session",
    "new_session_id",
    "LocalDir",
    "TransferStats",
    "FileOutput",
    "DirOutput",
    "SecretSource",
    "SecretStore",
    "AuthProvider",
    "DockerAuthProvider",
    "StaticAuthProvider",
    "Credentials",
    "SessionError",
]
