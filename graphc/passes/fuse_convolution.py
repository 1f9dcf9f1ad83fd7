"""fuse_convolution: an im2col convolution and the elementwise work after it become one node.

    reshape(permute(matmul[_epilogue](reshape(window_gather(x, tables)), w, bias...), (0, 2, 1)))
      [-> elementwise or fused user]   ->   convolution(x, w, bias..., user operands...)

F.conv*d traces a convolution as a gather of the windows into [N, *out, C * kernel], a matmul
against the weights with the bias (and a folded BatchNorm) in its epilogue, and a permute back to
[N, O, *out]; the ReLU after it is a separate kernel. One `convolution` node computes all of it
(lower/convolution.py): the windows are read from x inside the kernel, never stored, the result is
written channels first, and the user's body joins the matmul's epilogue. It applies only where
the direct kernel is the faster one (`lower.convolution.direct_pays`); the im2col nodes stay
otherwise. Where the gathered windows have another user (a train step's weight gradient) the
gather stays for it. Runs after fuse_matmul_epilogue, whose bias body it extends.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..ir import Graph, GraphBuilder, Node
from ..ir.graph import literal_value
from ..lower.convolution import direct_pays
from ..ops.convolution import Geometry, output_size
from ..ops.fused import Body
from ..ops.window import window_table
from .fuse_matmul_epilogue import _body_of
from .rewrite import finish_like, live_nodes, rebuild


def table_geometry(table: np.ndarray, size: int) -> tuple[int, int, tuple[int, int]] | None:
    """(stride, dilation, (low, high) padding) of a zero-padding window table of an input of
    `size`, or None when the table is no such window (reflect padding, adaptive bins). A step the
    table does not show (one valid entry in its row or column) is searched for."""
    outs, kernel = table.shape
    valid = np.argwhere(table >= 0)
    if len(valid) == 0:
        return None
    o, k = valid[0]
    row, column = np.flatnonzero(table[o] >= 0), np.flatnonzero(table[:, k] >= 0)
    limit = size + kernel + outs + 1
    dilations = [int(table[o, row[1]] - table[o, row[0]]) // int(row[1] - row[0])] if len(row) > 1 else range(1, limit)
    strides = [int(table[column[1], k] - table[column[0], k]) // int(column[1] - column[0])] if len(column) > 1 \
        else range(1, limit)
    for stride, dilation in itertools.product(strides, dilations):
        low = int(o * stride + k * dilation - table[o, k])
        high = max(0, (outs - 1) * stride + dilation * (kernel - 1) + 1 - size - low)  # the floor rule may drop a tail
        if (stride >= 1 and dilation >= 1 and low >= 0 and high >= 0
                and output_size(size, kernel, stride, dilation, (low, high)) == outs
                and np.array_equal(window_table(size, kernel, stride, (low, high), dilation), table)):
            return stride, dilation, (low, high)
    return None


@dataclass(frozen=True)
class Match:
    """The nodes of one im2col convolution, from the gather to the value that leaves."""

    gather: Node
    geometry: Geometry
    matmul: Node
    result: Node  # the reshape to [N, O, *out]
    user: Node | None  # the elementwise user whose body joins, if any


def window_geometry(graph: Graph, window: Node) -> Geometry | None:
    """The zero-padding geometry of a window_gather's or window_scatter's constant tables, or None."""
    sizes = window.attr("size") if window.op == "window_scatter" else graph.nodes[window.inputs[0]].shape[2:]
    found = []
    for t, size in zip(window.inputs[1:], sizes):
        table = literal_value(graph.nodes[t])
        found.append(None if table is None else table_geometry(table, size))
    if None in found:
        return None
    kernel = tuple(graph.nodes[t].shape[1] for t in window.inputs[1:])
    stride, dilation, padding = (tuple(f[i] for f in found) for i in range(3))
    return kernel, stride, dilation, padding


def _only_user(graph: Graph, users: dict[int, list[int]], node: Node, op: str) -> Node | None:
    found = users[node.id]
    return graph.nodes[found[0]] if len(found) == 1 and graph.nodes[found[0]].op == op else None


def _channel_operand(graph: Graph, i: int, channels: int) -> bool:
    """Whether a matmul epilogue operand (read at [N, P, O]) varies along the channels only."""
    shape = graph.nodes[i].shape
    return all(d == 1 for d in shape[:-1]) and (not shape or shape[-1] in (1, channels))


def match(graph: Graph, matmul: Node, users: dict[int, list[int]], pinned: set[int]) -> Match | None:
    """The convolution whose matmul is `matmul`, if it is one the direct kernel should compute.
    The gather may have other users (a train step's weight gradient reads the windows): they keep it."""
    if (matmul.op not in ("matmul", "matmul_epilogue") or matmul.attr("transpose_a") or not matmul.attr("transpose_b")
            or matmul.id in pinned or len(graph.nodes[matmul.inputs[1]].shape) != 2):
        return None
    flat = graph.nodes[matmul.inputs[0]]
    if flat.op != "reshape" or users[flat.id] != [matmul.id] or flat.id in pinned or len(flat.shape) != 3:
        return None
    gather = graph.nodes[flat.inputs[0]]
    if gather.op != "window_gather" or gather.attr("pad_value") != 0.0 or len(gather.inputs) not in (2, 3):
        return None
    channels = matmul.shape[-1]
    if not all(_channel_operand(graph, i, channels) for i in matmul.inputs[2:]):
        return None
    moved = _only_user(graph, users, matmul, "permute")
    if moved is None or moved.attr("dims") != (0, 2, 1):
        return None
    x = graph.nodes[gather.inputs[0]]
    expected = (x.shape[0], channels) + gather.shape[1:len(x.shape) - 1]  # [N, O, *out]
    result = _only_user(graph, users, moved, "reshape")
    if result is None or result.shape != expected:
        result = moved if moved.shape == expected else None  # 1-d: the permute is [N, O, out] already
    if result is None or (result is not moved and moved.id in pinned):
        return None
    geometry = window_geometry(graph, gather)
    if geometry is None or not direct_pays(x.shape, channels, geometry, x.dtype):
        return None
    user = graph.nodes[users[result.id][0]] if result.id not in pinned and len(users[result.id]) == 1 else None
    if user is not None and ((user.shape, user.dtype) != (result.shape, result.dtype)
                             or _body_of(user, result.id) is None):
        user = None  # the convolution's value leaves as it is (an output, read twice, not elementwise)
    return Match(gather, geometry, matmul, result, user)


def _channel_vector(builder: GraphBuilder, like: Node, value: int, dims: int) -> int:
    """A matmul epilogue operand ([O], [1, O], ...) reshaped to broadcast over [N, O, *out]."""
    node = builder.nodes[value]
    shape = (node.size,) + (1,) * dims if node.size > 1 else ()
    if node.shape == shape:
        return value
    return builder.add("reshape", [value], {"shape": shape}, shape, node.dtype, like.module_path, like.module_type,
                       like.source)


def _composed(first: Body | None, extras: int, then: Body | None) -> Body | None:
    """`then` applied to the result of `first` (whose operands in1..in<extras> come first)."""
    if then is None:
        return first
    if first is None:
        return then
    offset = len(first)

    def renamed(arg: str) -> str:
        if arg == "in0":
            return f"s{offset - 1}"
        if arg.startswith("in"):
            return f"in{int(arg[2:]) + extras}"
        return f"s{int(arg[1:]) + offset}"
    steps = tuple((op, tuple(renamed(a) for a in args), attrs, dtype) for op, args, attrs, dtype in then)
    return Body(first.steps + steps)


def _emit(m: Match, builder: GraphBuilder, new: dict[int, int]) -> int:
    kernel, stride, dilation, padding = m.geometry
    bias = [_channel_vector(builder, m.matmul, new[i], len(kernel)) for i in m.matmul.inputs[2:]]
    first = m.matmul.attr("body") if m.matmul.op == "matmul_epilogue" else None
    then, others = _body_of(m.user, m.result.id) if m.user is not None else (None, [])
    body = _composed(first, len(bias), then)
    last = m.user or m.result
    nodes = [m.matmul] + ([m.user] if m.user is not None else [])
    paths = list(dict.fromkeys("" if p == "<root>" else p for n in nodes for p in n.module_path.split("+")))
    path = paths[0] if len(paths) == 1 else "+".join(p or "<root>" for p in paths)  # as fuse_matmul_epilogue names
    types = "+".join(dict.fromkeys(t for n in nodes for t in n.module_type.split("+") if t))
    attrs = {"kernel": kernel, "stride": stride, "dilation": dilation, "padding": padding, "body": body}
    inputs = [new[m.gather.inputs[0]], new[m.matmul.inputs[1]], *bias, *(new[i] for i in others)]
    return builder.add("convolution", inputs, attrs, last.shape, last.dtype, path, types, last.source)


def fuse_convolution(graph: Graph) -> Graph:
    users = graph.users()
    pinned = set(graph.outputs) | {v for v, _ in graph.updates}
    matches = [m for m in (match(graph, n, users, pinned) for n in graph.nodes) if m]
    at = {(m.user or m.result).id: m for m in matches}
    builder, new = GraphBuilder(), {}
    for node in graph.nodes:
        if node.id in at:
            new[node.id] = _emit(at[node.id], builder, new)
        else:
            new[node.id] = builder.copy_node(node, tuple(new[i] for i in node.inputs))
    fused = finish_like(graph, builder, new)
    return rebuild(fused, keep=live_nodes(fused))  # the gather, matmul and permute are no longer read
