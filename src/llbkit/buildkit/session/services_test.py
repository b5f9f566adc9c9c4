"""The session's gRPC services, served by its own server on a unix socket and called in-process
with llbkit's gRPC client (both HTTP/2 sides of llbkit, no daemon)."""

from __future__ import annotations

import io
import tempfile
import os
import queue
from typing import Iterator

from llbkit.buildkit.rpc.channel import Channel
from llbkit.buildkit.rpc.status import RpcError, StatusCode
from llbkit.buildkit.rpc.transport import Endpoint
from llbkit.buildkit.session.socket_server import SocketServer
import pytest

from llbkit._proto import auth_pb2, filesync_pb2, fsutil_types_pb2 as fpb, secrets_pb2
from llbkit.buildkit.session import DirOutput, FileOutput, LocalDir, Session, StaticAuthProvider, Credentials
from llbkit.buildkit.session.diffcopy import Receiver, Sender
from llbkit.buildkit.session.writers import AtomicDir


@pytest.fixture
def served(tmp_path):
    sessions = []

    def serve(session: Session) -> Channel:
        sock = f"{tmp_path}/s{len(sessions)}.sock"
        server = SocketServer([h for _, h in session._services()], sock)
        channel = Channel(Endpoint(path=sock))
        sessions.append((server, channel))
        return channel

    yield serve
    for server, channel in sessions:
        channel.close()
        server.close()


def test_health_secrets_auth(served, tmp_path):
    session = Session(secrets={"tok": b"v"}, auth=StaticAuthProvider({"r.example": Credentials("u", "p")}))
    ch = served(session)
    assert ch.unary_unary("/grpc.health.v1.Health/Check")(b"") == b"\x08\x01"
    get = ch.unary_unary(
        "/moby.buildkit.secrets.v1.Secrets/GetSecret",
        request_serializer=secrets_pb2.GetSecretRequest.SerializeToString,
        response_deserializer=secrets_pb2.GetSecretResponse.FromString,
    )
    assert get(secrets_pb2.GetSecretRequest(ID="tok")).data == b"v"
    with pytest.raises(RpcError) as e:
        get(secrets_pb2.GetSecretRequest(ID="other"))
    assert e.value.code() == StatusCode.NOT_FOUND
    creds = ch.unary_unary(
        "/moby.filesync.v1.Auth/Credentials",
        request_serializer=auth_pb2.CredentialsRequest.SerializeToString,
        response_deserializer=auth_pb2.CredentialsResponse.FromString,
    )
    r = creds(auth_pb2.CredentialsRequest(Host="r.example"))
    assert (r.Username, r.Secret) == ("u", "p")
    authority = ch.unary_unary("/moby.filesync.v1.Auth/GetTokenAuthority")
    with pytest.raises(RpcError) as e:
        authority(auth_pb2.GetTokenAuthorityRequest(Host="x").SerializeToString())
    assert e.value.code() == StatusCode.UNIMPLEMENTED
    assert "/moby.filesync.v1.Auth/GetTokenAuthority" in session.methods()


def test_file_send_writes_the_exporters_file(served, tmp_path):
    out = FileOutput(str(tmp_path / "o.tar"))
    ch = served(Session(outputs={1: out}, auth=None))
    call = ch.stream_stream("/moby.filesync.v1.FileSend/DiffCopy")
    msgs = [filesync_pb2.BytesMessage(data=d).SerializeToString() for d in (b"ab", b"cd")]
    md = [("buildkit-attachable-exporter-id", "1"), ("exporter-md-image.name", "x")]
    assert list(call(iter(msgs), metadata=md)) == []
    assert (tmp_path / "o.tar").read_bytes() == b"abcd"
    assert out.metadata == {"image.name": "x"}
    with pytest.raises(RpcError) as e:
        list(call(iter(msgs), metadata=[("buildkit-attachable-exporter-id", "7")]))
    assert e.value.code() == StatusCode.NOT_FOUND


def _bidi(call, metadata, on_packet) -> None:
    """Drive a bidi Packet call: on_packet(packet) -> packets to send back (None ends)."""
    out: "queue.Queue" = queue.Queue()

    def requests() -> Iterator[bytes]:
        while True:
            p = out.get()
            if p is None:
                return
            yield p.SerializeToString()

    responses = call(requests(), metadata=metadata)
    try:
        for raw in responses:
            for p in on_packet(fpb.Packet.FromString(raw)):
                out.put(p)
    finally:
        out.put(None)


def test_file_sync_uploads_a_directory(served, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub/a").write_bytes(os.urandom(700_000))
    (src / "b.log").write_bytes(b"x")
    session = Session(local_dirs={"ctx": LocalDir(str(src))}, auth=None)
    ch = served(session)
    target = AtomicDir(str(tmp_path / "dest"))
    receiver = Receiver(target.sink)
    _bidi(
        ch.stream_stream("/moby.filesync.v1.FileSync/DiffCopy"),
        [("dir-name", "ctx"), ("exclude-patterns", "*.log")],
        receiver.receive,
    )
    assert receiver.done
    target.commit()
    assert (tmp_path / "dest/sub/a").read_bytes() == (src / "sub/a").read_bytes()
    assert not (tmp_path / "dest/b.log").exists()
    assert session.bytes_sent("ctx") == 700_000
    assert session.stats("ctx").files_sent == 1


def test_file_send_local_exporter_receives_a_directory(served, tmp_path):
    dest = tmp_path / "out"
    ch = served(Session(outputs={0: DirOutput(str(dest))}, auth=None))
    sender: Sender[bytes] = Sender()
    first = [
        sender.stat(fpb.Stat(path="d", mode=(1 << 31) | 0o755), b""),
        sender.stat(fpb.Stat(path="d/f", mode=0o600), b"content"),
        sender.end_of_listing(),
    ]
    out: "queue.Queue" = queue.Queue()
    for p in first:
        out.put(p)

    def requests():
        while True:
            p = out.get()
            if p is None:
                return
            yield p.SerializeToString()

    call = ch.stream_stream("/moby.filesync.v1.FileSend/DiffCopy")
    for raw in call(requests(), metadata=[("buildkit-attachable-exporter-id", "0")]):
        ev = sender.receive(fpb.Packet.FromString(raw))
        if ev is None:
            continue
        if hasattr(ev, "key"):
            with tempfile.TemporaryFile() as f:
                f.write(ev.key)
                f.seek(0)
                for frame, _ in Sender.data_frames(ev.id, f.fileno(), bytearray(32 * 1024)):
                    out.put(fpb.Packet.FromString(bytes(frame)))
        else:  # FIN: the receiver has everything; the export is in place already
            assert (dest / "d/f").read_bytes() == b"content"
            out.put(Sender.fin())
            out.put(None)
    assert (dest / "d/f").read_bytes() == b"content"
    assert os.stat(dest / "d/f").st_mode & 0o777 == 0o600


def test_the_session_names_the_services_it_imports_on_demand_as_they_name_themselves():
    from llbkit.buildkit.session import content, session as session_module, ssh

    assert (session_module.CONTENT, session_module.SSH) == (content.CONTENT, ssh.SSH)
    s = Session(content_stores={"x": object()}, ssh={"default": "/nonexistent.sock"}, auth=None)
    assert f"/{content.CONTENT}/Write" in s.methods() and f"/{ssh.SSH}/ForwardAgent" in s.methods()
