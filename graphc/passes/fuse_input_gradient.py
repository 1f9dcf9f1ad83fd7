"""fuse_input_gradient: a stride-1 convolution's input gradient as a direct convolution of dy.

    window_scatter(reshape(matmul(permute(reshape(dy), (0, 2, 1)), w)), tables)      # col2im
      ->   convolution(dy, reshape(permute(flip(reshape(w, [O, C, *kernel])), (1, 0, ...))))

The im2col form differentiates dX into dy @ w, [N, P, C * kernel] (prod(kernel) times x's size),
then adds the windows back into place (window_scatter). With unit strides, dX is the
convolution of dy, padded by d * (k - 1) - p on each side, with the kernel flipped and its
channel dims swapped: the direct kernel (lower/convolution.py) computes it from dy in place, so
neither the products nor dy's permute are stored, and nothing is scattered. The weight flip is
a copy of the weights (O * C * prod(kernel) elements). Applies where the direct kernel does
(`lower.convolution.direct_pays` over dy); strided convolutions keep col2im.

Measured on a 2-vCPU Xeon (Ice Lake server, AVX-512), 2 threads, whole SGD train steps with and
without this pass, alternating in one process (fastest of 100): 16x16x32x32 -> 32 3x3 p1 -> 32 3x3
p1: 12.7 -> 9.1 ms; 16x8x24x48 -> 16 5x5 p2 -> 16 5x5 p2: 21.6 -> 11.5 ms; LeNet (the second conv
6 -> 16 5x5 unpadded, so dy is padded by 4 on every side and a third of the products read zeros):
3.0 ms either way. The direct kernel is never the slower one there, so no rule beyond the
forward's picks between them.
"""
from __future__ import annotations

from ..ir import Graph, GraphBuilder, Node
from ..lower.convolution import direct_pays
from .fuse_convolution import window_geometry
from .rewrite import finish_like, live_nodes, rebuild


def match(graph: Graph, scatter: Node) -> tuple[int, int, dict] | None:
    """(dy, w, the convolution's geometry attrs) of a col2im the direct kernel should replace."""
    if scatter.op != "window_scatter":
        return None
    col = graph.nodes[scatter.inputs[0]]
    product = graph.nodes[col.inputs[0]] if col.op == "reshape" else None
    if (product is None or product.op != "matmul" or product.attr("transpose_a") or product.attr("transpose_b")
            or len(product.inputs) != 2):
        return None
    moved, w = (graph.nodes[i] for i in product.inputs)
    if moved.op != "permute" or moved.attr("dims") != (0, 2, 1) or len(w.shape) != 2:
        return None
    dy = graph.nodes[moved.inputs[0]]
    dims = len(scatter.attr("size"))
    if dy.op == "reshape" and dims > 1:  # [N, O, *out] grouped to [N, O, P]; a 1-d dy is that already
        dy = graph.nodes[dy.inputs[0]]
    geometry = window_geometry(graph, scatter)
    if geometry is None or len(dy.shape) != dims + 2 or dy.shape[1] != w.shape[0]:
        return None
    kernel, stride, dilation, padding = geometry
    if dims not in (1, 2) or set(stride) != {1}:
        return None
    reach = [d * (k - 1) for k, d in zip(kernel, dilation)]
    flipped = tuple((r - low, r - high) for r, (low, high) in zip(reach, padding))
    if min(p for pair in flipped for p in pair) < 0:  # padding beyond the window: not a plain convolution
        return None
    channels = scatter.shape[1]
    attrs = {"kernel": kernel, "stride": stride, "dilation": dilation, "padding": flipped, "body": None}
    if not direct_pays(dy.shape, channels, (kernel, stride, dilation, flipped), dy.dtype):
        return None
    return dy.id, w.id, attrs


def _flipped_weight(builder: GraphBuilder, like: Node, w: Node, new_w: int, kernel: tuple[int, ...],
                    channels: int) -> int:
    """w [O, C * kernel] as [C, O * kernel], each kernel flipped in every spatial dim."""
    def add(op, inputs, attrs, shape):
        return builder.add(op, inputs, attrs, shape, w.dtype, like.module_path, like.module_type, like.source)
    dims, outs = len(kernel), w.shape[0]
    grouped = (outs, channels) + tuple(kernel)
    value = add("reshape", [new_w], {"shape": grouped}, grouped)
    value = add("slice", [value], {"starts": (0, 0) + tuple(k - 1 for k in kernel), "steps": (1, 1) + (-1,) * dims,
                                   "shape": grouped}, grouped)
    swapped = (channels, outs) + tuple(kernel)
    value = add("permute", [value], {"dims": (1, 0) + tuple(range(2, 2 + dims))}, swapped)
    return add("reshape", [value], {"shape": (channels, w.size // channels)}, (channels, w.size // channels))


def fuse_input_gradient(graph: Graph) -> Graph:
    matches = {n.id: m for n in graph.nodes if (m := match(graph, n)) is not None}
    if not matches:
        return graph
    builder, new = GraphBuilder(), {}
    for node in graph.nodes:
        if node.id not in matches:
            new[node.id] = builder.copy_node(node, tuple(new[i] for i in node.inputs))
            continue
        dy, w, attrs = matches[node.id]
        weight = _flipped_weight(builder, node, graph.nodes[w], new[w], attrs["kernel"], node.shape[1])
        new[node.id] = builder.add("convolution", [new[dy], weight], attrs, node.shape, node.dtype, node.module_path,
                                   node.module_type, node.source)
    fused = finish_like(graph, builder, new)
    return rebuild(fused, keep=live_nodes(fused))  # the products and dy's permute are no longer read
