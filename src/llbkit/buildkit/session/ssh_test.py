"""The ssh forwarding service against a stand-in agent on a unix socket (no daemon): buildkitd's
calls are made by llbkit's gRPC client, as buildkitd makes them, with the agent id in the metadata."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Iterator

from llbkit.buildkit.rpc.channel import Channel
from llbkit.buildkit.rpc.status import RpcError, StatusCode
from llbkit.buildkit.rpc.transport import Endpoint
from llbkit.buildkit.session.socket_server import SocketServer
import pytest

from llbkit._proto import sshforward_pb2
from llbkit.buildkit.session.ssh import SSH, SSH_ID_KEY, SshAgent, parse_ssh_spec, ssh_handler


def _echo_agent(path: str) -> socket.socket:
    """A fake agent: answers each chunk with the same bytes reversed."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    conn.sendall(data[::-1])

    threading.Thread(target=serve, daemon=True).start()
    return srv


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[Channel]:
    agent = _echo_agent(str(tmp_path / "agent.sock"))
    server = SocketServer([ssh_handler({"default": str(tmp_path / "agent.sock"),
                                        "gone": str(tmp_path / "none.sock")})], str(tmp_path / "grpc.sock"))
    ch = Channel(Endpoint(path=str(tmp_path / "grpc.sock")))
    try:
        yield ch
    finally:
        ch.close()
        server.close()
        agent.close()


def _check(ch: Channel, sid: str) -> None:
    call = ch.unary_unary(f"/{SSH}/CheckAgent", request_serializer=sshforward_pb2.CheckAgentRequest.SerializeToString,
                          response_deserializer=sshforward_pb2.CheckAgentResponse.FromString)
    call(sshforward_pb2.CheckAgentRequest(ID=sid), timeout=10)


def test_forward_agent_relays_bytes_both_ways(channel: Channel) -> None:
    call = channel.stream_stream(f"/{SSH}/ForwardAgent", request_serializer=sshforward_pb2.BytesMessage.SerializeToString,
                                 response_deserializer=sshforward_pb2.BytesMessage.FromString)
    replies = call(iter([sshforward_pb2.BytesMessage(data=b"abc")]), metadata=[(SSH_ID_KEY, "default")], timeout=10)
    assert b"".join(r.data for r in replies) == b"cba"


def test_check_agent_knows_configured_and_answering_agents(channel: Channel) -> None:
    _check(channel, "default")
    _check(channel, "")  # empty means default, as in BuildKit
    with pytest.raises(RpcError) as e:
        _check(channel, "github")
    assert e.value.code() == StatusCode.NOT_FOUND and "no ssh agent 'github'" in e.value.details()
    with pytest.raises(RpcError) as e:
        _check(channel, "gone")
    assert e.value.code() == StatusCode.UNAVAILABLE and "none.sock" in e.value.details()


def test_parse_ssh_spec() -> None:
    assert parse_ssh_spec("default", {"SSH_AUTH_SOCK": "/run/a.sock"}) == ("default", SshAgent("/run/a.sock"))
    assert parse_ssh_spec("gh=/x/y.sock", {}) == ("gh", SshAgent("/x/y.sock"))
    with pytest.raises(ValueError, match="SSH_AUTH_SOCK is not set"):
        parse_ssh_spec("default", {})
    with pytest.raises(ValueError, match="write ID or ID=SOCKET"):
        parse_ssh_spec("bad id=/x", {})
    with pytest.raises(ValueError, match="one agent socket or key file path"):
        parse_ssh_spec("gh=", {})


def test_key_agent_serves_a_key_file(tmp_path: Path) -> None:
    import subprocess

    from llbkit.buildkit.session.ssh import KeyAgent, is_agent_socket

    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "from-a-file", "-f", str(key)], check=True)
    with KeyAgent([str(key)]) as agent:
        assert is_agent_socket(agent.socket) and not is_agent_socket(str(key))
        listed = subprocess.run(["ssh-add", "-l"], env={"SSH_AUTH_SOCK": agent.socket}, capture_output=True, text=True)
        assert "from-a-file" in listed.stdout
        sock = agent.socket
    assert not Path(sock).exists()  # stopped, its directory removed


def test_key_agent_refuses_a_passphrase_protected_key(tmp_path: Path) -> None:
    import subprocess

    from llbkit.buildkit.session.ssh import KeyAgent
    from llbkit.errors import SessionError

    key = tmp_path / "id_locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pass phrase", "-f", str(key)], check=True)
    with pytest.raises(SessionError, match="passphrase must be added to your own agent"):
        KeyAgent([str(key)]).start()
