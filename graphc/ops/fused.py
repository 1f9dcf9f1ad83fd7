"""fused: a chain of elementwise ops run as one loop, made by the fuse_elementwise pass.

`body` is a tuple of steps `(op, args, attrs, dtype)`; an arg names an input of the fused node
(`in0`, `in1`, ...) or an earlier step (`s0`, ...); the last step is the result. Every step has
the node's shape (inputs broadcast to it), so the lowering evaluates the steps one element at a
time. Fusion runs after autodiff, so `fused` has no gradient rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .registry import OPS, OpDef, ShapeError, TensorType, register

Step = tuple[str, tuple[str, ...], tuple[tuple[str, Any], ...], str]


@dataclass(frozen=True)
class Body:
    """The steps of a fused node; prints as the expression it computes."""

    steps: tuple[Step, ...]

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        def text(arg: str) -> str:
            if arg.startswith("in"):
                return arg
            op, args, attrs, _ = self.steps[int(arg[1:])]
            shown = "".join(f"[{v}]" for _, v in attrs)
            return f"{op}{shown}({', '.join(text(a) for a in args)})"
        return text(f"s{len(self.steps) - 1}")


def evaluate(body: Sequence[Step], inputs: Sequence[Any], apply: Callable[[Step, list], Any]) -> Any:
    """Run the steps in order; `apply(step, operands)` computes one step from its operands."""
    results: list[Any] = []
    for step in body:
        operands = [inputs[int(a[2:])] if a.startswith("in") else results[int(a[1:])] for a in step[1]]
        results.append(apply(step, operands))
    return results[-1]


def _infer(*types: TensorType, body: Sequence[Step]) -> TensorType:
    def step_type(step: Step, operands: list) -> TensorType:
        result = OPS[step[0]].infer(*operands, **dict(step[2]))
        if result.dtype != step[3]:
            raise ShapeError(f"fused: step {step[0]} gives {result.dtype}, body says {step[3]}")
        return result
    return evaluate(body, types, step_type)


def _reference(*arrays: np.ndarray, body: Sequence[Step]) -> np.ndarray:
    return evaluate(body, arrays, lambda step, operands: np.asarray(
        OPS[step[0]].reference(*operands, **dict(step[2])), dtype=step[3]))


register(OpDef("fused", "fused", _infer, _reference, None, doc=__doc__.splitlines()[0]))
