from __future__ import annotations

import pytest

from llbkit import llb
from llbkit.llb import caps
from llbkit.testutil.llb_testing import head, input_op, marshal

BB = llb.image("busybox")


def test_diff_lower_upper():
    upper = BB.run("touch /new").root()
    d = marshal(llb.diff(BB, upper, custom_name="changes"))
    op = head(d)
    assert op.kind == "diff" and op.platform is None
    assert op.body == {"lower": {}, "upper": {"input": 1}}  # lower input 0 prints as {}
    assert input_op(d, op, 0).kind == "source"
    assert input_op(d, op, 1).kind == "exec"
    assert op.metadata.caps == {caps.DIFF_OP}
    assert op.metadata.custom_name == "changes"


def test_diff_with_scratch_upper_marks_it_minus_one():
    op = head(marshal(llb.diff(BB, llb.scratch())))
    assert op.body == {"lower": {}, "upper": {"input": -1}}
    assert len(op.inputs) == 1


def test_diff_with_scratch_lower_is_upper():
    assert llb.diff(llb.scratch(), BB) is BB
    assert llb.diff(llb.scratch(), llb.scratch()).is_scratch


def test_diff_keeps_lower_values_and_merges_onto_other():
    lower = BB.dir("/l")
    st = llb.diff(lower, lower.run("true").root())
    assert st.get_dir() == "/l"
    merged = llb.merge([llb.scratch().file(llb.mkdir("/o", 0o755)), st])
    assert head(marshal(merged)).kind == "merge"


def test_diff_errors():
    with pytest.raises(llb.InvalidArgumentError, match="diff: upper must be a State"):
        llb.diff(BB, None)  # type: ignore[arg-type]
