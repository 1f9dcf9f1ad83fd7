"""dead_code: drop nodes whose values reach no output and no update. Inputs stay (they are the ABI)."""
from __future__ import annotations

from ..ir import Graph
from .rewrite import live_nodes, rebuild


def dead_code(graph: Graph) -> Graph:
    return rebuild(graph, keep=live_nodes(graph))


def drop_unused_inputs(graph: Graph, kinds: tuple[str, ...]) -> Graph:
    """Also drop unused inputs of the given kinds (autodiff creates saved inputs eagerly)."""
    return rebuild(graph, keep=live_nodes(graph, lambda n: n.role.kind not in kinds))
