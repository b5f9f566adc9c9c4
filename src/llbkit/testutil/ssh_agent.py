"""An ssh-agent holding one freshly generated key, for tests of ssh forwarding, and a script
that asks the agent behind ``$SSH_AUTH_SOCK`` for its identities (run inside an image).

::

    with SshAgent(tmp_path) as agent:       # agent.socket: its $SSH_AUTH_SOCK
        ...

The agent runs in the foreground of its own process (``ssh-agent -D -a SOCKET``) and is stopped
by PID. Needs Debian's openssh-client (``build-support/provision.sh`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Optional

from llbkit.testutil.errors import FixtureError

__all__ = ["SshAgent", "AGENT_CHECK", "KEY_COMMENT"]

KEY_COMMENT = "llbkit-test"

# Python (3.6+, standard library only): writes "<count> <comments...> <$SSH_AUTH_SOCK>" to
# /agent.txt, from the agent's answer to SSH2_AGENTC_REQUEST_IDENTITIES.
AGENT_CHECK = r'''
import os, socket, struct
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["SSH_AUTH_SOCK"])
s.sendall(struct.pack(">IB", 1, 11))  # SSH2_AGENTC_REQUEST_IDENTITIES
def read(n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise SystemExit("the agent closed the connection")
        b += chunk
    return b
body = read(struct.unpack(">I", read(4))[0])
assert body[0] == 12, body[:1]  # SSH2_AGENT_IDENTITIES_ANSWER
count = struct.unpack(">I", body[1:5])[0]
off, comments = 5, []
for _ in range(count):
    n = struct.unpack(">I", body[off:off + 4])[0]; off += 4 + n
    n = struct.unpack(">I", body[off:off + 4])[0]; comments.append(body[off + 4:off + 4 + n].decode()); off += 4 + n
with open("/agent.txt", "w") as f:
    f.write(f"{count} {' '.join(comments)} {os.environ['SSH_AUTH_SOCK']}\n")
'''


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FixtureError(f"{name} is missing: apt-get install openssh-client (build-support/provision.sh "
                           "installs it)")
    return path


class SshAgent:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.socket = str(self.directory / "agent.sock")
        self._proc: Optional[subprocess.Popen] = None

    def start(self) -> "SshAgent":
        agent, keygen, add = _tool("ssh-agent"), _tool("ssh-keygen"), _tool("ssh-add")
        self.directory.mkdir(parents=True, exist_ok=True)
        key = self.directory / "id_ed25519"
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", KEY_COMMENT, "-f", str(key)], check=True)
        self._proc = subprocess.Popen([agent, "-D", "-a", self.socket], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise FixtureError(f"ssh-agent did not start on {self.socket}")
            time.sleep(0.02)
        res = subprocess.run([add, "-q", str(key)], env={**os.environ, "SSH_AUTH_SOCK": self.socket},
                             capture_output=True, text=True)
        if res.returncode != 0:
            self.stop()
            raise FixtureError(f"ssh-add failed: {res.stderr.strip()}")
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()  # our own child, by its PID
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
            self._proc = None

    def __enter__(self) -> "SshAgent":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
