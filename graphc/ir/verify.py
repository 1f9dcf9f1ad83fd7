"""verify(graph): the invariants every pass must keep."""
from __future__ import annotations

from ..ops.registry import OPS, ShapeError, TensorType
from .graph import Graph


class VerifyError(AssertionError):
    """A graph broke an IR invariant; the message names the node."""


def verify(graph: Graph, checked: Graph | None = None) -> Graph:
    """Check ids, topological order, known ops and that every node's type matches its op's rule.
    A node that is the very object at the same position of `checked` (a graph verified before,
    the one a pass was given), whose inputs are too, keeps its verdict: nodes are frozen, so its
    op rule would give what it gave then."""
    before = checked.nodes if checked is not None else ()
    for index, node in enumerate(graph.nodes):
        if index < len(before) and before[index] is node and all(before[i] is graph.nodes[i] for i in node.inputs):
            continue
        if node.id != index:
            raise VerifyError(f"node at position {index} has id %{node.id}")
        if any(not 0 <= i < index for i in node.inputs):
            raise VerifyError(f"{node}: reads a value that is not defined before it")
        if node.op in ("input", "constant"):
            if node.inputs:
                raise VerifyError(f"{node}: {node.op} takes no inputs")
            continue
        if node.op not in OPS:
            raise VerifyError(f"{node}: unknown op {node.op!r}")
        types = [TensorType(graph.nodes[i].shape, graph.nodes[i].dtype) for i in node.inputs]
        try:
            expected = OPS[node.op].infer(*types, **node.attr_dict)
        except (ShapeError, TypeError) as e:
            raise VerifyError(f"{node}: {e}") from None
        if (expected.shape, expected.dtype) != (node.shape, node.dtype):
            raise VerifyError(f"{node}: op rule gives {expected.dtype}{list(expected.shape)}")
    names, roles = set(), set()
    for node in graph.inputs:
        if node.attr("name") in names:
            raise VerifyError(f"{node}: two inputs are named {node.attr('name')!r}")
        if node.role in roles:
            raise VerifyError(f"{node}: two inputs have the role {node.role}")
        names.add(node.attr("name"))
        roles.add(node.role)
    for i in graph.outputs:
        if not 0 <= i < len(graph.nodes):
            raise VerifyError(f"output %{i} is not a node")
    if len(graph.output_names) != len(graph.outputs):
        raise VerifyError("output_names and outputs differ in length")
    for value, target in graph.updates:
        src, dst = graph.nodes[value], graph.nodes[target]
        if dst.op != "input" or (src.shape, src.dtype) != (dst.shape, dst.dtype):
            raise VerifyError(f"update %{target} <- %{value}: target must be an input of the same type")
    return graph


class Verifier:
    """verify() along a pipeline: each graph is checked against the last one it passed, so a
    pass pays only for the nodes it made (17 full checks cost 9 ms of a W1 train step's compile)."""

    def __init__(self) -> None:
        self._last: Graph | None = None

    def __call__(self, graph: Graph) -> Graph:
        self._last = verify(graph, self._last)
        return graph
