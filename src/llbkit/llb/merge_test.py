from __future__ import annotations

import pytest

from llbkit import llb
from llbkit.llb import caps
from llbkit.testutil.llb_testing import head, input_op, marshal

A = llb.scratch().file(llb.mkfile("/a", 0o644, b"a"))
B = llb.scratch().file(llb.mkfile("/b", 0o644, b"b"))


def test_merge_inputs_in_order_one_per_position():
    d = marshal(llb.merge([A, llb.scratch(), B, A], custom_name="m"))
    op = head(d)
    assert op.kind == "merge" and op.platform is None
    assert op.body == {"inputs": [{}, {"input": 1}, {"input": 2}]}
    assert [i.digest for i in op.inputs] == [op.inputs[0].digest, op.inputs[1].digest, op.inputs[0].digest]
    assert input_op(d, op, 0).body["actions"][0]["Action"]["mkfile"]["path"] == "/a"
    assert op.metadata.caps == {caps.MERGE_OP}
    assert op.metadata.custom_name == "m"
    # A and B once each, the merge, the terminal op.
    assert len(d) == 4


def test_merge_trivial_cases_follow_go():
    assert llb.merge([]).is_scratch
    assert llb.merge([llb.scratch(), llb.scratch()]).is_scratch
    assert llb.merge([llb.scratch(), A]) is A


def test_merge_keeps_first_input_values():
    st = llb.merge([A.dir("/x").add_env("K", "1"), B.dir("/y")])
    assert st.get_dir() == "/x" and st.get_env("K") == "1"


def test_merge_errors():
    with pytest.raises(llb.InvalidArgumentError, match="merge: expected a list of states"):
        llb.merge(A)  # type: ignore[arg-type]
    with pytest.raises(llb.InvalidArgumentError, match="merge: every input must be a State"):
        llb.merge([A, "b"])  # type: ignore[list-item]
