"""fuse_matmul_epilogue: a matmul and the elementwise work on its result become one kernel.

When a matmul's only user is a `fused` node (or one elementwise node) of the matmul's shape and
dtype that reads the matmul once, the pair becomes one `matmul_epilogue` node whose body is the
user's, with the product as `in0` and the user's other inputs after a and b: the Linear layer's
bias and activation are applied to the accumulators before they are stored, so the product never
goes to memory and back. Operands the epilogue cannot read by output row and column (see
`ops.linalg.epilogue_strides`) keep the pair apart. Runs after fuse_elementwise, so a chain after
the matmul is already one node.
"""
from __future__ import annotations

from ..ir import Graph, GraphBuilder, Node
from ..ops.fused import Body
from ..ops.registry import OPS, ShapeError, TensorType
from .rewrite import finish_like


def _body_of(user: Node, product: int) -> tuple[Body, list[int]] | None:
    """The user's body with the product as in0, and its other inputs in order (in1, ...)."""
    if user.inputs.count(product) != 1:
        return None
    others = [i for i in user.inputs if i != product]
    if user.op == "fused":
        names = {i: f"in{others.index(i) + 1}" if i != product else "in0" for i in user.inputs}
        renamed = {f"in{j}": names[i] for j, i in enumerate(user.inputs)}
        steps = tuple((op, tuple(renamed.get(a, a) for a in args), attrs, dtype)
                      for op, args, attrs, dtype in user.attr("body"))
        return Body(steps), others
    if user.op in OPS and OPS[user.op].kind == "elementwise":
        if len(set(others)) != len(others):
            return None
        args = tuple("in0" if i == product else f"in{others.index(i) + 1}" for i in user.inputs)
        return Body(((user.op, args, user.attrs, user.dtype),)), others
    return None


def _product_attrs(matmul: Node) -> dict:
    """The matmul's transposes (and packed panels, see prepare.py), which its epilogue keeps."""
    return {name: value for name, value in matmul.attrs if name in ("transpose_a", "transpose_b", "packed_n")}


def epilogue_pairs(graph: Graph) -> dict[int, tuple[Node, Body, list[int]]]:
    """user id -> (its matmul, the epilogue body, the body's other operands) for each pair that fuses."""
    users = graph.users()
    pinned = set(graph.outputs) | {v for v, _ in graph.updates}
    pairs = {}
    for node in graph.nodes:
        if node.op != "matmul" or node.id in pinned or len(users[node.id]) != 1:
            continue
        if not node.attr_dict.get("packed_n", 0) and (node.attr("transpose_a") or not node.attr("transpose_b")):
            # only the dot-product form (x @ W.T, a Linear layer) applies the body per finished
            # scalar; the outer-product tiles apply it lane by lane, which made a W1 train step's
            # IR so large that its cold compile went from 1.2 s to 4.4 s (packed panels always
            # take the micro-kernel, whose epilogue is a loop over the stored tile)
            continue
        user = graph.nodes[users[node.id][0]]
        found = _body_of(user, node.id) if (user.shape, user.dtype) == (node.shape, node.dtype) else None
        if found is None:
            continue
        body, others = found
        types = [TensorType(graph.nodes[i].shape, graph.nodes[i].dtype) for i in (*node.inputs, *others)]
        try:
            OPS["matmul_epilogue"].infer(*types, **_product_attrs(node), body=body)
        except ShapeError:  # an operand the epilogue cannot read by rows and columns
            continue
        pairs[user.id] = (node, body, others)
    return pairs


def fuse_matmul_epilogue(graph: Graph) -> Graph:
    pairs = epilogue_pairs(graph)
    fused_away = {matmul.id for matmul, _, _ in pairs.values()}
    builder, new = GraphBuilder(), {}
    for node in graph.nodes:
        if node.id in pairs:
            new[node.id] = _emit_pair(node, *pairs[node.id], builder, new)
        elif node.id not in fused_away:
            new[node.id] = builder.copy_node(node, tuple(new[i] for i in node.inputs))
    return finish_like(graph, builder, new)


def _emit_pair(user: Node, matmul: Node, body: Body, others: list[int], builder: GraphBuilder,
               new: dict[int, int]) -> int:
    """One matmul_epilogue at the user's place (its operands all exist by then), named after both."""
    user_paths = ("" if p == "<root>" else p for p in user.module_path.split("+"))
    paths = list(dict.fromkeys([matmul.module_path, *user_paths]))
    path = paths[0] if len(paths) == 1 else "+".join(p or "<root>" for p in paths)
    types = "+".join(dict.fromkeys(t for t in (matmul.module_type, *user.module_type.split("+")) if t))
    attrs = {**_product_attrs(matmul), "body": body}
    inputs = [new[i] for i in (*matmul.inputs, *others)]
    return builder.add("matmul_epilogue", inputs, attrs, user.shape, user.dtype, path, types, user.source)
