from __future__ import annotations

import json

import pytest

from llbkit.buildkit.rpc.channel import Channel
from llbkit.buildkit.rpc.transport import Endpoint
from llbkit._proto import gateway_pb2
from llbkit.buildkit.errors import BuildKitError
from llbkit.buildkit.progress import SolveStatus, Vertex, VertexLog
from llbkit.buildkit.solve import BuildResult, GatewayRef, SolveRun, new_build_ref


def test_single_result_carries_config():
    res = BuildResult.of(GatewayRef("r1"), {"os": "linux"})._to_pb(gateway_pb2)
    assert res.WhichOneof("result") == "ref" and res.ref.id == "r1"
    assert json.loads(res.metadata["containerimage.config"]) == {"os": "linux"}


def test_multi_result_keeps_order_and_platform_keys():
    res = BuildResult.multi([("linux/arm64/v8", GatewayRef("a"), b"{}"), ("linux/amd64", GatewayRef("b"), None)])
    pb = res._to_pb(gateway_pb2)
    assert pb.refs.refs["linux/arm64/v8"].id == "a" and pb.refs.refs["linux/amd64"].id == "b"
    assert pb.metadata["containerimage.config/linux/arm64/v8"] == b"{}"
    assert "containerimage.config/linux/amd64" not in pb.metadata
    assert json.loads(pb.metadata["refs.platforms"]) == {"platforms": [
        {"id": "linux/arm64/v8", "platform": {"architecture": "arm64", "os": "linux"}},
        {"id": "linux/amd64", "platform": {"architecture": "amd64", "os": "linux"}},
    ]}
    with pytest.raises(BuildKitError, match="twice"):
        BuildResult.multi([("linux/amd64", None, None), ("linux/amd64", None, None)])


def test_build_refs_are_unique():
    refs = {new_build_ref() for _ in range(100)}
    assert len(refs) == 100 and all(len(r) == 25 and r.isalnum() for r in refs)


def test_solve_error_names_vertex_exit_code_and_tail():
    ch = Channel(Endpoint(path="/nonexistent/llbkit.sock"))  # never connected: no call is made
    run = SolveRun(ch, "unix:///nonexistent", tls=None)
    err_text = 'process "/bin/sh -c false" did not complete successfully: exit code: 1'
    run.tracker(SolveStatus(vertexes=(Vertex("d", "[build] compile", error=err_text),),
                            logs=(VertexLog("d", 2, b"one\ntwo\n"),)))
    e = run._solve_error(err_text)
    assert (e.vertex, e.command, e.exit_code, e.log_tail) == ("[build] compile", "/bin/sh -c false", 1, ("one", "two"))
    assert str(e) == ("failed to solve: step '[build] compile' exited with code 1 (command: /bin/sh -c false)."
                      " Last output lines:\n  one\n  two")
    e = SolveRun(ch, "x", tls=None)._solve_error("invalid definition")
    assert str(e) == "failed to solve: invalid definition" and e.vertex is None
    ch.close()
