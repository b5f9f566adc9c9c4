"""Merge ops: layer several filesystems into one (Go's ``client/llb/merge.go``).

Later inputs win where paths collide, like image layers. BuildKit can often merge without copying
(hardlinks or overlay lowerdirs), which makes ``merge`` the cheap way to assemble independent
parts built in parallel.
"""

from __future__ import annotations

from typing import Optional, Sequence

from llbkit.llb import caps as _caps
from llbkit.llb.constraints import Constraints, marshal_constraints, op_constraints
from llbkit.llb.errors import InvalidArgumentError
from llbkit.llb.marshal import MarshalContext
from llbkit.llb.state import Output, State, Vertex

__all__ = ["MergeOp", "merge"]


class MergeOp(Vertex):
    __slots__ = ("_inputs", "constraints", "_output")
    kind = "merge"

    def __init__(self, inputs: Sequence[Output], constraints: Constraints) -> None:
        if len(inputs) < 2:
            raise InvalidArgumentError(f"merge: needs at least 2 inputs, got {len(inputs)}")
        self._inputs = tuple(inputs)
        self.constraints = constraints
        self._output = Output(self, 0, None)

    def output(self) -> Output:
        return self._output

    def inputs(self) -> Sequence[Output]:
        return self._inputs

    def marshal_op(self, ctx: MarshalContext):
        op, md = marshal_constraints(ctx.base, self.constraints)
        op.ClearField("platform")  # merge is not platform specific
        m = op.merge
        m.SetInParent()
        for out in self._inputs:
            # Unlike exec and file ops, merge lists an input once per position, even if repeated.
            m.inputs.add(input=len(op.inputs))
            op.inputs.append(ctx.input(out))
        return op, md, self.constraints.source_locations


def merge(
    states: Sequence[State],
    *,
    custom_name: Optional[str] = None,
    ignore_cache: bool = False,
    constraints: Optional[Constraints] = None,
) -> State:
    """Layer ``states`` in order. Scratch inputs are dropped; with one input left that input is
    returned as is, with none, scratch (as in Go). The result keeps the first input's values
    (env, dir...)."""
    if isinstance(states, State):
        raise InvalidArgumentError("merge: expected a list of states, got a single State")
    states = list(states)
    for s in states:
        if not isinstance(s, State):
            raise InvalidArgumentError(f"merge: every input must be a State, got {type(s).__name__}")
    kept = [s for s in states if s.output is not None]
    if not kept:
        return State()
    if len(kept) == 1:
        return kept[0]
    c = op_constraints("merge", constraints, custom_name=custom_name, ignore_cache=ignore_cache)
    op = MergeOp([s.output for s in kept], c.with_caps(_caps.MERGE_OP))  # type: ignore[misc]
    return kept[0].with_output(op.output())
