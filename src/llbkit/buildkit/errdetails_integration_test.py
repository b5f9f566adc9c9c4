"""Failed solves report the daemon's typed error details: failing vertex, exit code, op."""

from __future__ import annotations

import secrets

import pytest

from llbkit import llb
from llbkit._proto import ops_pb2
from llbkit.buildkit import Client, SolveError
from llbkit.buildkit.errdetails import details_from_rpc_error

PLATFORM = "linux/amd64"


@pytest.fixture(scope="module")
def client(buildkitd_amd64):
    with Client(buildkitd_amd64.addr) as c:
        yield c


def _failing(busybox_ref: str, token: str) -> llb.Definition:
    st = llb.image(busybox_ref, platform=PLATFORM).run(
        ["/bin/sh", "-c", f"echo boom-{token}; exit 3"]).root()
    return st.marshal(platform=PLATFORM)


def test_failing_run_names_vertex_and_exit_code_from_typed_details(client, registry):
    token = secrets.token_hex(6)
    d = _failing(registry.busybox_ref, token)
    with pytest.raises(SolveError) as ei:
        client.solve(d)
    e = ei.value
    exec_digest = next(dg for dg, op in zip(d.digests, d.ops) if "boom" in repr(op) or token in repr(op))
    assert e.vertex_digest == exec_digest  # the daemon's errdefs.Vertex, not a guess from progress
    assert e.exit_code == 3
    assert e.command == f"/bin/sh -c echo boom-{token}; exit 3"
    assert f"boom-{token}" in e.log_tail
    assert "exited with code 3" in str(e) and token in str(e)


def test_failing_run_through_the_gateway(client, registry):
    token = secrets.token_hex(6)
    with pytest.raises(SolveError) as ei:
        client.build_image(_failing(registry.busybox_ref, token), platform=PLATFORM)
    assert ei.value.exit_code == 3 and ei.value.vertex_digest


def test_typed_details_reach_the_client(client, registry):
    """The raw trailer: BuildKit's JSON-encoded errdefs messages."""
    from llbkit._proto import control_pb2
    from llbkit.buildkit.client import control_stub
    from llbkit.buildkit.rpc.status import RpcError

    d = _failing(registry.busybox_ref, secrets.token_hex(6))
    req = control_pb2.SolveRequest(Ref=f"errdetails{secrets.token_hex(6)}")
    req.Definition.ParseFromString(d.to_bytes())
    with pytest.raises(RpcError) as ei:
        control_stub(client.channel).Solve(req, timeout=120)
    details = details_from_rpc_error(ei.value)
    assert {"errdefs.Vertex+json", "gatewayapi.ExitMessage+json"} <= set(details.types), details.types
    assert details.exit_code == 3 and details.vertex in d.digests


def test_invalid_definition_surfaces_buildkits_error(client):
    # An exec op whose input names a digest that is not in the definition.
    op = ops_pb2.Op()
    op.inputs.add(digest="sha256:" + "0" * 64, index=0)
    op.exec.meta.args.extend(["/bin/true"])
    op.exec.mounts.add(input=0, dest="/", output=0)
    data = op.SerializeToString()
    definition = ops_pb2.Definition(**{"def": [data]})
    with pytest.raises(SolveError) as ei:
        client.solve(definition.SerializeToString())
    msg = str(ei.value)
    assert msg.startswith("failed to solve")
    assert ei.value.detail and ei.value.detail in msg  # BuildKit's own words
