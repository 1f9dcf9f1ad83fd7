"""fold_batch_norm: an eval-mode BatchNorm after a matmul becomes the matmul's weights and bias.

    (x @ Wᵀ + b) * s + t   ->   x @ (W * s[:, None])ᵀ + (b * s + t)

`F.batch_norm` in eval mode is `y * scale + shift`, scale and shift per channel and made of
parameters and buffers only. Where y is a matmul's output (plus a bias), possibly moved by
reshapes and permutes that keep the channel axis whole (channels-last -> channels-first, as a
convolution lowered to a matmul does), and the channel axis is the matmul's output-column axis,
the scale goes into the weights and everything else (the layer's bias, added before or after the
moves, and the shift) into one bias on the matmul; the reshapes and permutes follow. The new
weights and bias read parameters, buffers and constants only, so a prepare step can hoist them
out of the per-call program. Values are equal up to rounding (the
products are taken in another order). Nodes left unused are for dead_code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..ir import Graph, GraphBuilder, Node
from ..ops.registry import OPS, TensorType
from .rewrite import finish_like


def parameter_only(graph: Graph) -> set[int]:
    """Nodes computed from parameters, buffers and constants alone (no user input, no state)."""
    fixed: set[int] = set()
    for node in graph.nodes:
        if node.op == "input":
            if node.role.kind in ("param", "buffer"):
                fixed.add(node.id)
        elif node.op == "constant" or (node.inputs and all(i in fixed for i in node.inputs)):
            fixed.add(node.id)
    return fixed


def channel_axis(factor: Node, shape: Sequence[int]) -> int | None:
    """The one axis of `shape` along which `factor` (broadcast to it) varies: -1 when it is
    uniform (one element), None when it varies along several or broadcasts `shape` up."""
    lead = len(shape) - len(factor.shape)
    if lead < 0:
        return None
    varying = [lead + k for k, d in enumerate(factor.shape) if d != 1]
    if any(factor.shape[a - lead] != shape[a] for a in varying) or len(varying) > 1:
        return None
    return varying[0] if varying else -1


def axis_before(node: Node, axis: int, operand: Node) -> int | None:
    """The axis of a reshape or permute's operand that becomes `axis` of its result, if whole."""
    if node.op == "permute":
        return node.attr("dims")[axis]
    inner, outer = int(np.prod(node.shape[axis + 1:])), node.shape[axis]
    for b, size in enumerate(operand.shape):
        if size == outer and int(np.prod(operand.shape[b + 1:])) == inner:
            return b
    return None


@dataclass(frozen=True)
class Fold:
    """A match: the matmul, its bias (or None), the moves after it, the scale and the shift."""

    matmul: Node
    bias: Node | None
    moves: tuple[Node, ...]  # the reshapes and permutes from the matmul to the scale, in order
    scale: Node
    shift: Node
    product: Node  # the BatchNorm's multiply: its provenance goes to the scaled weights


def _split(node: Node, graph: Graph, fixed: set[int]) -> tuple[Node, Node] | None:
    """(the operand computed per call, the parameter-only operand) of a binary node, or None."""
    a, b = (graph.nodes[i] for i in node.inputs)
    for value, const in ((a, b), (b, a)):
        if const.id in fixed and value.id not in fixed and value.shape == node.shape:
            return value, const
    return None


def match(graph: Graph, node: Node, users: dict[int, list[int]], fixed: set[int]) -> Fold | None:
    """add(mul(chain(matmul), scale), shift): `chain` is reshapes and permutes that keep the channel
    axis whole and at most one bias add (before or after them); scale, shift and bias per channel
    and parameter-only; every inner value used once; the channel axis the matmul's columns."""
    split = _split(node, graph, fixed) if node.op == "add" and node.dtype.startswith("float") else None
    if split is None or split[0].op != "mul" or users[split[0].id] != [node.id]:
        return None
    (product, shift), consumer = split, split[0]
    split = _split(product, graph, fixed)
    if split is None:
        return None
    value, scale = split
    axes = {channel_axis(scale, node.shape), channel_axis(shift, node.shape)} - {-1}
    if None in axes or len(axes) > 1:
        return None
    axis = axes.pop() if axes else len(node.shape) - 1
    moves, bias = [], None
    while users[value.id] == [consumer.id]:
        if value.op in ("reshape", "permute"):
            axis = axis_before(value, axis, graph.nodes[value.inputs[0]])
            if axis is None:
                return None
            moves.append(value)
            consumer, value = value, graph.nodes[value.inputs[0]]
        elif value.op == "add" and bias is None and _split(value, graph, fixed) is not None:
            inner, bias = _split(value, graph, fixed)
            if channel_axis(bias, value.shape) not in (-1, axis):
                return None
            consumer, value = value, inner
        else:
            break
    dtypes = {scale.dtype, shift.dtype} | ({bias.dtype} if bias is not None else set())
    if (value.op != "matmul" or users[value.id] != [consumer.id] or value.inputs[1] not in fixed
            or axis != len(value.shape) - 1 or dtypes != {value.dtype}):
        return None
    return Fold(value, bias, tuple(reversed(moves)), scale, shift, product)


def _emit(builder: GraphBuilder, like: Node, op: str, inputs: Sequence[int], **attrs) -> int:
    """`op` on `inputs` with the type its rule gives and `like`'s provenance."""
    out = OPS[op].infer(*(TensorType(builder.nodes[i].shape, builder.nodes[i].dtype) for i in inputs), **attrs)
    return builder.add(op, inputs, attrs, out.shape, out.dtype, like.module_path, like.module_type, like.source)


def _vector(builder: GraphBuilder, like: Node, value: int, channels: int) -> int:
    """A per-channel value as shape (C,), or () when it is uniform."""
    node = builder.nodes[value]
    while node.op == "reshape":  # BatchNorm's [C, 1, 1] of a [C] vector: reshape the vector
        node = builder.nodes[node.inputs[0]]
    value, shape = node.id, (channels,) if node.size == channels else ()
    return value if node.shape == shape else _emit(builder, like, "reshape", [value], shape=shape)


def emit_fold(fold: Fold, node: Node, builder: GraphBuilder, new: dict[int, int]) -> int:
    """The folded nodes; returns the id standing for the matched add."""
    matmul, channels = fold.matmul, fold.matmul.shape[-1]
    scale = _vector(builder, fold.product, new[fold.scale.id], channels)
    shift = _vector(builder, node, new[fold.shift.id], channels)
    weight_scale = scale
    if matmul.attr("transpose_b") and builder.nodes[scale].shape:  # W is (.., C, K): scale its rows
        weight_scale = _emit(builder, fold.product, "reshape", [scale], shape=(channels, 1))
    weight = _emit(builder, fold.product, "mul", [new[matmul.inputs[1]], weight_scale])
    product = builder.copy_node(matmul, (new[matmul.inputs[0]], weight))
    bias = shift
    if fold.bias is not None:
        scaled = _emit(builder, fold.product, "mul", [_vector(builder, node, new[fold.bias.id], channels), scale])
        bias = _emit(builder, node, "add", [scaled, shift])
    out = _emit(builder, node, "add", [product, bias])
    for move in fold.moves:
        out = builder.copy_node(move, (out,))
    return out


def fold_batch_norm(graph: Graph) -> Graph:
    users, fixed = graph.users(), parameter_only(graph)
    builder, new = GraphBuilder(), {}
    for node in graph.nodes:
        fold = match(graph, node, users, fixed)
        new[node.id] = (emit_fold(fold, node, builder, new) if fold is not None else
                        builder.copy_node(node, tuple(new[i] for i in node.inputs)))
    return finish_like(graph, builder, new)
