"""fold_constants: evaluate nodes whose inputs are all constants, at compile time.

Checks stay: a check that fails must raise when the program runs, not while it compiles."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, GraphBuilder, Node
from ..ir.graph import literal_value
from ..ops.registry import OPS
from .rewrite import rebuild

MAX_FOLDED_ELEMENTS = 1 << 16  # larger results would bloat the module more than they save


def fold_constants(graph: Graph) -> Graph:
    def rule(node: Node, inputs: tuple[int, ...], builder: GraphBuilder) -> int | None:
        if node.op in ("input", "constant") or node.size > MAX_FOLDED_ELEMENTS or OPS[node.op].kind == "check":
            return None
        values = [literal_value(builder.nodes[i]) for i in inputs]
        if not values or any(v is None for v in values):
            return None
        with np.errstate(all="ignore"):
            result = np.asarray(OPS[node.op].reference(*values, **node.attr_dict), dtype=node.dtype)
        return builder.constant(result.reshape(node.shape), node.dtype, module_path=node.module_path,
                                module_type=node.module_type, source=node.source)

    return rebuild(graph, rule)
