"""The graph IR: frozen nodes, graphs, printer, verifier, reference interpreter."""
from .node import Literal, Node, Role
from .graph import Graph, GraphBuilder
from .printer import format_graph

__all__ = ["Literal", "Node", "Role", "Graph", "GraphBuilder", "format_graph"]
from .verify import Verifier, VerifyError, verify
from .interpret import InterpretError, interpret

__all__ += ["Verifier", "VerifyError", "verify", "InterpretError", "interpret"]
