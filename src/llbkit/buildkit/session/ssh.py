"""SSH agent forwarding: the session's ``moby.sshforward.v1.SSH`` service.

A run with an ssh mount (``llb.ssh()``) gets a socket inside its container; each connection a
process makes to it, buildkitd turns into one ``ForwardAgent`` call on the client's session,
naming the agent in the ``buildkit.ssh.id`` metadata (``default`` when empty). The client
connects to that agent's socket on its own machine and copies the agent protocol's bytes both
ways until either side closes. ``CheckAgent`` answers whether the client has an agent with an
id (buildkitd asks before it sets the mount up; an optional mount is left out when not).

The agent's private keys never leave the client machine: only signing requests and answers
travel, as with ``ssh -A``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from dataclasses import dataclass
from typing import Iterator, Mapping, Union

from llbkit.buildkit.rpc import handlers as rpc_handlers
from llbkit.buildkit.rpc.status import RpcError, StatusCode

from llbkit._proto import sshforward_pb2
from llbkit.buildkit.session.services import _metadata
from llbkit.buildkit.session.wire import bytes_message_data
from llbkit.errors import SessionError

__all__ = ["SSH", "SSH_METHODS", "SSH_ID_KEY", "DEFAULT_ID", "SshAgent", "KeyAgent", "ssh_handler", "parse_ssh_spec",
           "is_agent_socket", "check_agents"]

SSH = "moby.sshforward.v1.SSH"
SSH_METHODS = ("CheckAgent", "ForwardAgent")
SSH_ID_KEY = "buildkit.ssh.id"
DEFAULT_ID = "default"
_CHUNK = 32 * 1024


@dataclass(frozen=True)
class SshAgent:
    """An ssh agent the session forwards: the unix socket it listens on (``$SSH_AUTH_SOCK``)."""

    socket: str

    def connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.socket)
        except OSError:
            s.close()
            raise
        return s


SshLike = Union[SshAgent, str, "os.PathLike[str]"]


def parse_ssh_spec(spec: str, env: Mapping[str, str]) -> "tuple[str, SshAgent]":
    """buildctl's ``--ssh`` syntax: ``ID``, ``ID=PATH`` -> ``(id, agent)``; a bare ``ID`` means the
    agent of ``$SSH_AUTH_SOCK`` in ``env``; ``PATH`` is an agent's socket or a key file (see
    :class:`KeyAgent`). ``ValueError`` says what to fix."""
    sid, sep, path = spec.partition("=")
    sid = sid.strip()
    if not sid or not all(c.isalnum() or c in "_.-" for c in sid):
        raise ValueError(f"invalid ssh agent {spec!r}: write ID or ID=SOCKET, e.g. 'default' or "
                         "'default=/run/user/1000/ssh-agent.sock'")
    if sep:
        path = path.strip()
        if not path or "," in path:
            raise ValueError(f"invalid ssh agent {spec!r}: give one agent socket or key file path after '='")
    else:
        path = env.get("SSH_AUTH_SOCK", "")
        if not path:
            raise ValueError(f"ssh agent {sid!r} has no socket: SSH_AUTH_SOCK is not set; start an agent "
                             f"(`eval $(ssh-agent)`, `ssh-add`) or write {sid}=/path/to/agent.sock")
    return sid, SshAgent(path)


def _agents(agents: Mapping[str, SshLike]) -> "dict[str, SshAgent]":
    return {k: v if isinstance(v, SshAgent) else SshAgent(os.fspath(v)) for k, v in agents.items()}


def ssh_handler(agents: Mapping[str, SshLike]) -> rpc_handlers.Service:
    table = _agents(agents)

    def agent_for(sid: str, context: rpc_handlers.ServicerContext) -> SshAgent:
        agent = table.get(sid or DEFAULT_ID)
        if agent is None:
            context.abort(StatusCode.NOT_FOUND, f"no ssh agent {sid or DEFAULT_ID!r} is configured "
                          f"(configured: {', '.join(sorted(table)) or 'none'})")
        return agent  # type: ignore[return-value]

    def check(req: "sshforward_pb2.CheckAgentRequest", context: rpc_handlers.ServicerContext) -> "sshforward_pb2.CheckAgentResponse":
        agent = agent_for(req.ID, context)
        try:
            agent.connect().close()
        except OSError as e:
            context.abort(StatusCode.UNAVAILABLE, f"ssh agent {req.ID or DEFAULT_ID!r} at {agent.socket} does "
                          f"not answer: {e.strerror or e}")
        return sshforward_pb2.CheckAgentResponse()

    def forward(requests: Iterator[bytes], context: rpc_handlers.ServicerContext) -> Iterator[bytes]:
        sid = (_metadata(context).get(SSH_ID_KEY) or [""])[0]
        agent = agent_for(sid, context)
        try:
            conn = agent.connect()
        except OSError as e:
            context.abort(StatusCode.UNAVAILABLE, f"ssh agent {sid or DEFAULT_ID!r} at {agent.socket}: "
                          f"{e.strerror or e}")
        closed = threading.Event()

        def upstream() -> None:
            # buildkitd -> agent: each BytesMessage carries bytes the process in the run wrote.
            try:
                for raw in requests:
                    data = bytes_message_data(raw)
                    if data:
                        conn.sendall(data)
            except (OSError, RpcError):
                pass
            finally:
                closed.set()
                try:
                    conn.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=upstream, name="llbkit-ssh-forward", daemon=True)
        t.start()
        context.add_callback(closed.set)
        try:
            while True:
                try:
                    data = conn.recv(_CHUNK)
                except OSError:
                    break
                if not data:
                    break
                yield sshforward_pb2.BytesMessage(data=data).SerializeToString()
        finally:
            conn.close()

    return rpc_handlers.Service(SSH, {
        "CheckAgent": rpc_handlers.unary_unary(
            check, request_deserializer=sshforward_pb2.CheckAgentRequest.FromString,
            response_serializer=sshforward_pb2.CheckAgentResponse.SerializeToString),
        # raw bytes in both directions: BytesMessage is decoded and encoded here
        "ForwardAgent": rpc_handlers.stream_stream(forward),
    })


def check_agents(agents: Mapping[str, SshLike]) -> None:
    """Raise :class:`SessionError` naming the first agent whose socket does not answer."""
    for sid, agent in sorted(_agents(agents).items()):
        try:
            agent.connect().close()
        except OSError as e:
            raise SessionError(f"ssh agent {sid!r}: cannot connect to {agent.socket}: {e.strerror or e}") from None


class KeyAgent:
    """A private ``ssh-agent`` holding key files, for ``[buildkit].ssh`` entries that name keys
    (``ID=~/.ssh/id_ed25519``) rather than an agent's socket, as buildctl's ``--ssh ID=KEY``.
    It lives for one build and is stopped by PID; the keys are read by ``ssh-add`` and never
    copied anywhere. Needs OpenSSH's ``ssh-agent`` and ``ssh-add`` (``apt-get install
    openssh-client``). A passphrase-protected key cannot be added here: add it to your own agent
    and name that agent's socket instead.
    """

    def __init__(self, keys: "list[str]") -> None:
        self.keys = list(keys)
        self.socket = ""
        self._proc: "subprocess.Popen[bytes] | None" = None
        self._dir = ""

    def start(self) -> "KeyAgent":
        import shutil
        import tempfile
        import time

        agent, add = shutil.which("ssh-agent"), shutil.which("ssh-add")
        if not agent or not add:
            raise SessionError("ssh keys in [buildkit].ssh need OpenSSH's ssh-agent and ssh-add on PATH "
                               "(apt-get install openssh-client), or name a running agent's socket instead")
        self._dir = tempfile.mkdtemp(prefix="llbkit-ssh-", dir="/tmp")
        self.socket = os.path.join(self._dir, "agent.sock")
        self._proc = subprocess.Popen([agent, "-D", "-a", self.socket], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SessionError("ssh-agent did not start for the ssh keys of [buildkit].ssh")
            time.sleep(0.02)
        env = {"SSH_AUTH_SOCK": self.socket, "PATH": os.environ.get("PATH", os.defpath), "SSH_ASKPASS_REQUIRE": "never"}
        for key in self.keys:
            res = subprocess.run([add, "-q", key], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if res.returncode != 0:
                self.stop()
                raise SessionError(f"cannot load ssh key {key}: {res.stderr.strip() or 'ssh-add failed'} (a key with "
                                   "a passphrase must be added to your own agent, whose socket [buildkit].ssh names)")
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
            self._proc = None
        if self._dir:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = ""

    def __enter__(self) -> "KeyAgent":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_agent_socket(path: str) -> bool:
    """Whether ``path`` is a unix socket (an agent); otherwise it is taken for a key file."""
    import stat

    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
