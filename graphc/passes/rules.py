"""Local rewrites as data: a table of Rule(pattern, replacement, comment) rows and one driver.

    Rule(mul(X, Const(1)), X, "x * 1 -> x")

A pattern matches a node by op (`op("mul")` makes `mul`), operand patterns, attribute values or
predicates (`permute(X, dims=swaps_last_two)`), captures (`X`, `Y`: any node, bound to it; a name
used twice must bind one node) and scalar constants by value (`Const(-0.0)`). A replacement is a
capture, which then stands for the node, or a function `(match, **captures) -> id` building new
nodes with `match.node_with`. `rewrite` applies the rules bottom-up until nothing changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence, Union

import numpy as np

from ..ir import Graph, GraphBuilder, Node
from ..ir.graph import literal_value
from .rewrite import rebuild

MAX_ROUNDS = 32  # rules that undo each other never settle: fail loudly instead of looping


@dataclass(frozen=True)
class Capture:
    """Any node, bound to `name` for the replacement."""

    name: str


@dataclass(frozen=True)
class Const:
    """A constant of at most one element equal to `value`; a float one of the same sign too
    (so Const(-0.0) is not matched by +0.0, while any integer zero matches Const(±0.0))."""

    value: float


@dataclass(frozen=True)
class Op:
    """A node of op `op` whose operands match `args` and whose attributes match `attrs` (a value
    to equal or a predicate to hold)."""

    op: str
    args: tuple["Pattern", ...]
    attrs: dict[str, Any] = field(default_factory=dict)


Pattern = Union[Capture, Const, Op]
X, Y = Capture("X"), Capture("Y")


def op(name: str) -> Callable[..., Op]:
    """`add = op("add")`, so that `add(X, Const(-0.0))` is a pattern."""
    return lambda *args, **attrs: Op(name, args, attrs)


@dataclass
class Match:
    """What a replacement function is given besides the captures: the matched node and a way to
    emit new nodes with its provenance."""

    node: Node
    builder: GraphBuilder

    def node_with(self, inputs: Sequence[Node], **attrs: Any) -> int:
        """The matched node again (op, type, module path, source), reading `inputs`, with `attrs` changed."""
        node = self.node
        return self.builder.add(node.op, [i.id for i in inputs], {**node.attr_dict, **attrs}, node.shape,
                                node.dtype, node.module_path, node.module_type, node.source)


class Rule(NamedTuple):
    """One row of a rule table: where `pattern` matches (and `when` holds), the node becomes `replacement`."""

    pattern: Op
    replacement: Capture | Callable[..., int]
    comment: str
    when: Callable[..., bool] | None = None  # a condition on the captures, `(**captures) -> bool`

    def apply(self, node: Node, inputs: tuple[int, ...], builder: GraphBuilder) -> int | None:
        """The id replacing `node` (reading `inputs` of the graph being built), or None."""
        found: dict[str, Node] = {}
        if not _matches(self.pattern, node, inputs, builder.nodes, found):
            return None
        if self.when is not None and not self.when(**found):
            return None
        if isinstance(self.replacement, Capture):
            same = found[self.replacement.name]
            # a value of another type is not the node: x * 1 that broadcasts x up is not x
            return same.id if (same.shape, same.dtype) == (node.shape, node.dtype) else None
        return self.replacement(Match(node, builder), **found)


def _matches(pattern: Pattern, node: Node, inputs: Sequence[int], nodes: list[Node], found: dict[str, Node]) -> bool:
    if isinstance(pattern, Const):
        value = literal_value(node)
        if value is None or value.size > 1 or not bool(np.all(value == pattern.value)):
            return False
        return value.dtype.kind != "f" or bool(np.all(np.signbit(value) == np.signbit(pattern.value)))
    if pattern.op != node.op or len(pattern.args) != len(inputs):
        return False
    for name, want in pattern.attrs.items():
        have = node.attr(name)
        if not (want(have) if callable(want) else have == want):
            return False
    for sub, i in zip(pattern.args, inputs):
        if isinstance(sub, Capture):
            if found.setdefault(sub.name, nodes[i]) is not nodes[i]:
                return False
        elif not _matches(sub, nodes[i], nodes[i].inputs, nodes, found):
            return False
    return True


def rewrite(graph: Graph, rules: Sequence[Rule]) -> Graph:
    """Apply `rules` (the first that matches wins) to every node bottom-up, a sweep a round, until
    a round changes nothing."""
    by_op: dict[str, list[Rule]] = {}
    for rule in rules:
        by_op.setdefault(rule.pattern.op, []).append(rule)
    for _ in range(MAX_ROUNDS):
        fired: list[str] = []

        def apply_first(node: Node, inputs: tuple[int, ...], builder: GraphBuilder) -> int | None:
            for rule in by_op.get(node.op, ()):
                replaced = rule.apply(node, inputs, builder)
                if replaced is not None:
                    fired.append(rule.comment)
                    return replaced
            return None

        graph = rebuild(graph, apply_first)
        if not fired:
            return graph
    raise RuntimeError(f"rewrite: no fixpoint after {MAX_ROUNDS} rounds; the last one applied "
                       + ", ".join(dict.fromkeys(fired)))
