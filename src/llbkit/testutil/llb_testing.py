"""Helpers shared by the llb unit tests (not part of the public API)."""

from __future__ import annotations

import subprocess
from typing import Dict, Optional

from llbkit.llb.marshal import Definition, OpView
from llbkit.llb.state import State

AMD64 = "linux/amd64"


def marshal(state: State, **kwargs) -> Definition:
    kwargs.setdefault("platform", AMD64)
    return state.marshal(**kwargs)


def head(d: Definition) -> OpView:
    """The op whose output is the definition's result."""
    return d.op(d.head)


def ops_by_digest(d: Definition) -> Dict[str, OpView]:
    return {op.digest: op for op in d.ops}


def input_op(d: Definition, op: OpView, i: int) -> OpView:
    return d.op(op.inputs[i].digest)


def find_buildctl() -> Optional[str]:
    """buildctl v0.32.2 where the test fixtures look for it, or ``None`` (tests that need it then fail)."""
    from llbkit.testutil.errors import FixtureError
    from llbkit.testutil.tools import find_tool

    try:
        return str(find_tool("buildctl"))
    except FixtureError:
        return None


def sample_state() -> State:
    """A small graph using every op kind, shared mounts and a diamond."""
    from llbkit import llb

    bb = llb.image("busybox")
    data = llb.scratch().file(llb.mkfile("/d", 0o644, b"d"))
    left = bb.run("touch /l", mounts=[llb.bind("/data", data, readonly=True)]).root()
    right = bb.run("touch /r", mounts=[llb.cache("/c")]).root()
    return llb.merge([left, right, llb.diff(bb, left)], custom_name="all")


def buildctl_dump(buildctl: str, data: bytes, *, dot: bool = False) -> str:
    args = [buildctl, "debug", "dump-llb"] + (["--dot"] if dot else [])
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout.decode("utf-8")
