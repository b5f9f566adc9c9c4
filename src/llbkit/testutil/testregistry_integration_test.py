"""The sample monorepo's registry, started on a free port with its own state dir."""

import json
from pathlib import Path

import pytest

from llbkit.oci.registry import RegistryClient
from llbkit.testutil.errors import FixtureError
from llbkit.testutil.procs import free_port, pid_gone
from llbkit.testutil.registry import Registry
from llbkit.testutil.testregistry import TestRegistry


def test_ensure_starts_seeds_once_and_stop_stops(tmp_path: Path) -> None:
    reg = TestRegistry(tmp_path / "state", port=free_port())
    try:
        digests = reg.ensure()
        pid = reg.pid()
        assert pid is not None and reg.answers()
        python3 = f"{reg.address}/llbkit/python3:3.11"
        client = RegistryClient(reg.address, env={})
        data, _, digest = client.get_manifest("llbkit/python3", "3.11")
        assert digest == digests[python3]
        platforms = [(m["platform"]["os"], m["platform"]["architecture"])
                     for m in json.loads(data)["manifests"]]
        assert platforms == [("linux", "amd64"), ("linux", "arm64")]
        _, _, busybox_digest = client.get_manifest("llbkit/busybox", "latest")
        client.close()
        assert busybox_digest == digests[f"{reg.address}/llbkit/busybox:latest"]
        marker = reg.seeded_marker.read_text()
        assert reg.ensure() == digests and reg.pid() == pid  # running and seeded: nothing to do
        assert reg.seeded_marker.read_text() == marker
    finally:
        assert reg.stop()
    assert pid_gone(pid) and reg.pid() is None and not reg.stop()


def test_a_port_taken_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    with Registry() as other:
        reg = TestRegistry(tmp_path / "state", port=other.port)
        with pytest.raises(FixtureError, match=rf"127.0.0.1:{other.port} is in use by another process"):
            reg.ensure()
