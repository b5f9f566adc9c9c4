"""Diff ops: the changes that turn ``lower`` into ``upper`` (Go's ``client/llb/diff.go``).

``diff(base, base.run(...).root())`` is exactly what the run added, changed or deleted; merged
onto another base it replays those changes there (deletions become whiteouts when exported).
"""

from __future__ import annotations

from typing import Optional, Sequence

from llbkit.llb import caps as _caps
from llbkit.llb.constraints import Constraints, marshal_constraints, op_constraints
from llbkit.llb.errors import InvalidArgumentError
from llbkit.llb.marshal import MarshalContext
from llbkit.llb.state import Output, State, Vertex

__all__ = ["DiffOp", "diff"]


class DiffOp(Vertex):
    __slots__ = ("lower", "upper", "constraints", "_output")
    kind = "diff"

    def __init__(self, lower: Optional[Output], upper: Optional[Output], constraints: Constraints) -> None:
        self.lower = lower
        self.upper = upper
        self.constraints = constraints
        self._output = Output(self, 0, None)

    def output(self) -> Output:
        return self._output

    def inputs(self) -> Sequence[Output]:
        return tuple(o for o in (self.lower, self.upper) if o is not None)

    def marshal_op(self, ctx: MarshalContext):
        op, md = marshal_constraints(ctx.base, self.constraints)
        op.ClearField("platform")  # diff is not platform specific
        d = op.diff
        # Both sides are always present on the wire, -1 standing for scratch.
        d.lower.SetInParent()
        d.upper.SetInParent()
        if self.lower is None:
            d.lower.input = -1
        else:
            d.lower.input = len(op.inputs)
            op.inputs.append(ctx.input(self.lower))
        if self.upper is None:
            d.upper.input = -1
        else:
            d.upper.input = len(op.inputs)
            op.inputs.append(ctx.input(self.upper))
        return op, md, self.constraints.source_locations


def diff(
    lower: State,
    upper: State,
    *,
    custom_name: Optional[str] = None,
    ignore_cache: bool = False,
    constraints: Optional[Constraints] = None,
) -> State:
    """The changes from ``lower`` to ``upper``. With a scratch ``lower`` that is ``upper`` itself
    (returned as is, as in Go). The result keeps ``lower``'s values (env, dir...)."""
    for name, s in (("lower", lower), ("upper", upper)):
        if not isinstance(s, State):
            raise InvalidArgumentError(f"diff: {name} must be a State, got {type(s).__name__}")
    if lower.output is None:
        return upper if upper.output is not None else State()
    c = op_constraints("diff", constraints, custom_name=custom_name, ignore_cache=ignore_cache)
    op = DiffOp(lower.output, upper.output, c.with_caps(_caps.DIFF_OP))
    return lower.with_output(op.output())
