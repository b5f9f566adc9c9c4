"""llbkit's cap lists against buildkitd's own (the gateway's Ping answers with every LLB cap
BuildKit registers), so the counts come from BuildKit rather than from this file."""

from __future__ import annotations

from llbkit.buildkit import Client
from llbkit.buildkit.solve import BuildResult
from llbkit.llb import caps


def test_cap_lists_are_buildkitds(buildkitd_amd64):
    found = {}

    def fn(gw):
        found["caps"] = gw.ping()
        return BuildResult.of(None)

    with Client(buildkitd_amd64.addr) as client:
        client.build(fn)
    registered = found["caps"]
    assert registered, "buildkitd answered Ping without LLB caps"
    assert caps.SUPPORTED_CAPS == {c for c, enabled in registered.items() if enabled}
    assert caps.ALL_CAPS == set(registered) | caps.UNREGISTERED_CAPS
    assert not caps.UNREGISTERED_CAPS & set(registered)
