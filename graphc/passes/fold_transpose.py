"""fold_transpose_into_matmul: matmul(permute(w) swapping the last two dims) -> matmul(w, transpose flag).

`x @ W.t()` (every Linear layer) then reads W in place instead of copying it transposed.
"""
from __future__ import annotations

from typing import Callable

from ..ir import Graph, Node
from .rules import Rule, X, Y, op, rewrite

matmul, permute = op("matmul"), op("permute")


def swaps_last_two(dims: tuple[int, ...]) -> bool:
    n = len(dims)
    return n >= 2 and tuple(dims) == tuple(range(n - 2)) + (n - 1, n - 2)


def flipped(flag: str) -> Callable[..., int]:
    """The matched matmul reading the captures X and Y, with `flag` negated."""
    return lambda match, X, Y: match.node_with([X, Y], **{flag: not match.node.attr(flag)})


def _transpose_a_allowed(X: Node, Y: Node) -> bool:
    # matmul's gradient takes a batched a against a 2-D b as more rows of an untransposed a
    return len(X.shape) == 2 or len(Y.shape) > 2


RULES = (
    Rule(matmul(permute(X, dims=swaps_last_two), Y), flipped("transpose_a"),
         "matmul(xᵀ, y) -> matmul(x, y, not transpose_a)", when=_transpose_a_allowed),
    Rule(matmul(X, permute(Y, dims=swaps_last_two)), flipped("transpose_b"),
         "matmul(x, yᵀ) -> matmul(x, y, not transpose_b)"),
)


def fold_transpose_into_matmul(graph: Graph) -> Graph:
    return rewrite(graph, RULES)
