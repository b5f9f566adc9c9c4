"""A REAPI cache server on 127.0.0.1: BuildGrid (``bgd``) with a disk CAS, an action cache and
ByteStream, which is what Pants' ``remote_cache_read``/``remote_cache_write`` use.

``bgd`` is looked for in ``$LLBKIT_CACHE/buildgrid-0.9.1/bin`` (``build-support/provision.sh``
installs it there), then on ``PATH``. Point Pants at :attr:`CacheServer.address` with
``remote_store_address`` and ``remote_instance_name = ""`` (see :meth:`pants_env`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from llbkit.testutil.errors import PROVISION_HINT, FixtureError
from llbkit.testutil.procs import Daemon, DaemonFixture, free_port, make_temp_dir, port_is_open
from llbkit.testutil.tools import cache_dir, find_tool

BUILDGRID_VERSION = "0.9.1"

# BuildGrid accepts max(5, 5 x cores) concurrent RPCs by default and refuses the rest; Pants
# opens up to 128 per kind, and a refused read is a cache miss. Queue them instead.
_CONFIG = """\
thread-pool-size: 32
maximum-concurrent-rpcs: 512
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
storages:
  - !disk-storage &cas
    path: {cas}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: ""
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
"""


def find_bgd() -> Path:
    try:
        return find_tool("bgd", search_dirs=[cache_dir() / f"buildgrid-{BUILDGRID_VERSION}" / "bin"])
    except FixtureError:
        try:
            return find_tool("bgd")
        except FixtureError:
            raise FixtureError(f"BuildGrid's bgd (a REAPI cache server) is missing: {PROVISION_HINT}") from None


class CacheServer(DaemonFixture):
    """``bgd server start`` on a free port; its CAS and action cache live in its state dir."""

    def __init__(self, *, name: str = "buildgrid", startup_timeout: float = 60.0) -> None:
        self.name = name
        self.startup_timeout = startup_timeout
        self.port: Optional[int] = None
        self.state_dir: Optional[Path] = None
        self._daemon: Optional[Daemon] = None

    @property
    def address(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def pants_env(self, *, read: bool = True, write: bool = True) -> Dict[str, str]:
        """The PANTS_* options that make a Pants run use this cache."""
        return {
            "PANTS_REMOTE_CACHE_READ": str(read).lower(), "PANTS_REMOTE_CACHE_WRITE": str(write).lower(),
            "PANTS_REMOTE_STORE_ADDRESS": self.address, "PANTS_REMOTE_INSTANCE_NAME": "",
            # Wait for the cache rather than race it: a test asserts what came from it.
            "PANTS_REMOTE_CACHE_EAGER_FETCH": "true",
        }

    def start(self) -> "CacheServer":
        exe = find_bgd()
        self.state_dir = make_temp_dir("buildgrid")
        self.port = free_port()
        config = self._state("config.yml")
        config.write_text(_CONFIG.format(port=self.port, cas=self._state("cas")))
        self._daemon = Daemon(self.name, [str(exe), "server", "start", str(config)], self._state("bgd.log"),
                              cwd=self.state_dir)
        self._daemon.start()
        self._daemon.wait_ready(lambda: port_is_open("127.0.0.1", self.port or 0), self.startup_timeout,
                                f"listening on 127.0.0.1:{self.port}")
        return self
