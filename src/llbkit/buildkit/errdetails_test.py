from __future__ import annotations

import base64
import json

from llbkit._proto import rpc_status_pb2
from llbkit.buildkit.errdetails import decode_details, details_from_rpc_error

BK = "github.com/moby/buildkit/"


def _j(obj) -> bytes:
    return json.dumps(obj).encode()


def test_decode_buildkit_json_details():
    src = base64.b64encode(b"FROM x\nRUN exit 3\n").decode()
    d = decode_details([
        (BK + "stack.Stack+json", _j({"frames": [{"Name": "main"}]})),
        (BK + "errdefs.Vertex+json", _j({"digest": "sha256:abc"})),
        (BK + "gatewayapi.ExitMessage+json", _j({"Code": 3})),
        (BK + "errdefs.Solve+json", _j({"op": {"Op": {"Exec": {"meta": {"args": ["sh", "-c", "exit 3"]}}}},
                                        "description": {"llb.customname": "RUN exit 3"}})),
        (BK + "errdefs.Source+json", _j({"info": {"filename": "Dockerfile", "data": src},
                                         "ranges": [{"start": {"line": 2}, "end": {"line": 2}}]})),
        (BK + "errdefs.Unknown+json", b"not json"),
    ])
    assert d.vertex == "sha256:abc" and d.exit_code == 3
    assert d.op_kind == "exec" and d.op_args == ("sh", "-c", "exit 3")
    assert d.description["llb.customname"] == "RUN exit 3"
    [s] = d.sources
    assert str(s) == "Dockerfile:2" and s.lines == ("RUN exit 3",)
    assert "stack.Stack+json" in d.types and not d.empty


def test_binary_or_missing_details_are_empty():
    assert decode_details([("type.googleapis.com/errdefs.Vertex", b"\x0a\x03abc")]).empty

    class NoTrailers:
        def trailing_metadata(self):
            return ()

    assert details_from_rpc_error(NoTrailers()).empty
    assert details_from_rpc_error(ValueError("local")).empty


def test_details_from_the_trailer():
    st = rpc_status_pb2.Status(code=2, message="boom")
    st.details.add(type_url=BK + "gatewayapi.ExitMessage+json", value=_j({"Code": 7}))

    class Err:
        def trailing_metadata(self):
            return (("other", "x"), ("grpc-status-details-bin", st.SerializeToString()))

    assert details_from_rpc_error(Err()).exit_code == 7
