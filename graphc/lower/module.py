"""A planned kernel program -> one LLVM module: a function per kernel and one entry point that
calls them in schedule order.

Entry ABI: `i32 <entry>(ptr args, ptr workspace, ptr status)`. `args` holds one pointer per
graph input (graph.inputs order) then one per graph output (graph.outputs order), each a
C-contiguous array of the node's dtype and shape; `workspace` is `workspace_bytes` of 64-byte
aligned scratch; `status` is one i64. The entry runs the kernels in schedule order, then fills
outputs that no kernel wrote (inputs, constants, aliases, repeated outputs), then applies the
`graph.updates` not computed in place, and returns 0. When a check fails it returns at once
with k + 1, where k indexes `checks`, and the offending value in `status`: nothing has been
written to the inputs then (in-place updates follow every check, copies come last), so the
caller commits nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from runtime.abi import CheckSpec

from ..ir import Graph, Node
from ..program import Kernel as ProgramKernel
from ..program import Location, Program, kernel_name, kernel_program, planned, workspace_bytes
from .elementwise import broadcast_strides, element_of, emit_map_group
from .reduce import emit_reduction
from .softmax import emit_log_softmax_reduction
from .emitters import CHECKS, EMITTERS
from .kernel import I1, I8, I32, I64, PTR, Kernel, LoweringError, declare, i64, itemsize


@dataclass(frozen=True)
class LoweredGraph:
    """Everything the runtime needs to compile and call a graph."""

    ir_text: str  # textual LLVM IR of the whole module
    entry: str  # name of the entry function
    workspace_bytes: int  # size of the scratch arena the caller must pass (>= 1)
    input_ids: tuple[int, ...]  # graph input node ids, in ABI order (= graph.inputs order)
    output_ids: tuple[int, ...]  # graph.outputs
    checks: tuple[CheckSpec, ...] = ()  # by status code - 1


def lower(program: Program | Graph, name: str = "graphc_main") -> LoweredGraph:
    """Emit the LLVM module for a planned `program` (a graph is lowered one kernel per node, in
    node order), with entry point `name` (ABI in the module docstring)."""
    if isinstance(program, Graph):
        program = planned(kernel_program(program))
    graph, locations = program.graph, program.locations
    module = ir.Module(name=name)
    entry = ir.Function(module, ir.FunctionType(I32, [PTR, PTR, PTR]), name)
    args, workspace, status = entry.args
    args.name, workspace.name, status.name = "args", "workspace", "status"
    failed_checks = 0
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    pointers: dict[Location, ir.Value] = {}

    def pointer(location: Location) -> ir.Value:
        if location not in pointers:
            if location.kind == "arg":
                slot = b.gep(args, [i64(location.index)], inbounds=True, source_etype=PTR)
                pointers[location] = b.load(slot, typ=PTR, name=f"arg{location.index}")
            elif location.kind == "workspace":
                pointers[location] = b.gep(workspace, [i64(location.index)], inbounds=True, source_etype=I8)
            else:
                pointers[location] = _constant_global(module, graph.nodes[location.index])
        return pointers[location]

    for kernel in program.kernels:
        node = graph.nodes[kernel.nodes[-1]]
        if kernel.template == "check":
            failed = b.call(_check_function(module, graph, node), [pointer(locations[node.inputs[0]]), status])
            failed_checks += 1  # check k (in check_specs order) returns status k
            with b.if_then(failed, likely=False):
                b.ret(ir.Constant(I32, failed_checks))
        elif len(kernel.nodes) > 1:  # one pointer per distinct buffer (see _buffers_function)
            buffers = list(dict.fromkeys(locations[v] for v in (*kernel.outputs, *kernel.inputs)))
            build = _MULTI_NODE[kernel.template]
            b.call(build(module, graph, kernel, locations, buffers), [pointer(loc) for loc in buffers])
        else:
            function = _kernel_function(module, graph, node, locations)
            b.call(function, [pointer(locations[node.id]), *(pointer(locations[i]) for i in node.inputs)])

    first_output = len(graph.inputs)
    for j, node_id in enumerate(graph.outputs):
        _copy(b, pointer(Location("arg", first_output + j)), locations[node_id], pointer, graph.nodes[node_id])
    for value_id, input_id in graph.updates:
        _copy(b, pointer(locations[input_id]), locations[value_id], pointer, graph.nodes[value_id])
    b.ret(ir.Constant(I32, 0))
    return LoweredGraph(str(module), name, workspace_bytes(program),
                        tuple(n.id for n in graph.inputs), tuple(graph.outputs), check_specs(program))


def check_specs(program: Program | Graph) -> tuple[CheckSpec, ...]:
    """The checks in the order the entry point runs them: check k returns status k + 1."""
    if isinstance(program, Graph):
        program = kernel_program(program)
    nodes = (program.graph.nodes[k.nodes[-1]] for k in program.kernels if k.template == "check")
    return tuple(CheckSpec(n.attr("error"), n.attr("message"), n.where()) for n in nodes)


def _reduction_function(module: ir.Module, graph: Graph, kernel: ProgramKernel, locations: dict[int, Location],
                        buffers: list[Location]) -> ir.Function:
    """An internal function `void (ptr buffer...)` computing a reduction of an elementwise
    producer in one pass (storing the producer's value too when others read it)."""
    producer, reduction = (graph.nodes[v] for v in kernel.nodes)
    fn = _buffers_function(module, kernel, buffers, [producer, reduction])
    slot = {loc: fn.args[j] for j, loc in enumerate(buffers)}
    operands = [graph.nodes[i] for i in producer.inputs]
    sources = [(slot[locations[n.id]], n.dtype, broadcast_strides(n.shape, producer.shape)) for n in operands]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    stored = (slot[locations[producer.id]],) if producer.id in kernel.outputs else ()
    k = Kernel(b, reduction, (producer,), slot[locations[reduction.id]], ())
    try:
        emit_reduction(k, producer.shape, sources, lambda bld, values: element_of(bld, producer, values), stored)
    except Exception as error:
        raise LoweringError(f"while lowering kernel {kernel}: {error}") from error
    b.ret_void()
    return fn


def _row_reduction_function(module: ir.Module, graph: Graph, kernel: ProgramKernel, locations: dict[int, Location],
                            buffers: list[Location]) -> ir.Function:
    """An internal function `void (ptr buffer...)`: a log_softmax, the elementwise producer
    reading it and the reduction of that, as one row kernel (emit_log_softmax_reduction)."""
    row, producer, reduction = (graph.nodes[v] for v in kernel.nodes)
    fn = _buffers_function(module, kernel, buffers, [row, producer, reduction])
    slot = {loc: fn.args[j] for j, loc in enumerate(buffers)}
    written = lambda node: slot[locations[node.id]] if node.id in kernel.outputs else None  # noqa: E731
    operands = [(graph.nodes[i], slot[locations[i]]) for i in dict.fromkeys(producer.inputs) if i != row.id]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    k = Kernel(b, row, (graph.nodes[row.inputs[0]],), slot[locations[reduction.id]], ())
    try:
        emit_log_softmax_reduction(k, row, slot[locations[row.inputs[0]]], written(row), producer, operands,
                                   written(producer), reduction, slot[locations[reduction.id]])
    except Exception as error:
        raise LoweringError(f"while lowering kernel {kernel}: {error}") from error
    b.ret_void()
    return fn


def _buffers_function(module: ir.Module, kernel: ProgramKernel, buffers: list[Location], members: list[Node]
                      ) -> ir.Function:
    """`void <kernel name>(ptr buf0, ...)`: one noalias pointer per distinct buffer, tagged with
    the members' text."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * len(buffers)), kernel.name)
    _keep_name(fn)
    for j, arg in enumerate(fn.args):
        arg.name = f"buf{j}"
        arg.add_attribute("noalias")
        arg.add_attribute("nonnull")
    fn.set_metadata("graphc.node", module.add_metadata([ir.MetaDataString(module, "\n".join(map(str, members)))]))
    return fn


def _group_function(module: ir.Module, graph: Graph, kernel: ProgramKernel, locations: dict[int, Location],
                    buffers: list[Location]) -> ir.Function:
    """An internal function `void (ptr buffer...)` computing a multi-output map kernel: one
    pointer per distinct buffer it touches (an in-place output and the operand it overwrites
    share one), so every pointer is `noalias`."""
    members = [graph.nodes[v] for v in kernel.nodes]
    fn = _buffers_function(module, kernel, buffers, members)
    slot = {loc: fn.args[j] for j, loc in enumerate(buffers)}
    operands = [graph.nodes[i] for i in kernel.inputs]
    outputs = [graph.nodes[v] for v in kernel.outputs]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    try:
        emit_map_group(b, members, operands, [slot[locations[n.id]] for n in operands], outputs,
                       [slot[locations[n.id]] for n in outputs])
    except Exception as error:
        raise LoweringError(f"while lowering kernel {kernel}: {error}") from error
    b.ret_void()
    return fn


def _kernel_function(module: ir.Module, graph: Graph, node: Node, locations: dict[int, Location]) -> ir.Function:
    """An internal function `void (ptr out, ptr in...)` computing `node`, tagged with its text."""
    if node.op not in EMITTERS:
        raise LoweringError(f"no emitter for op {node.op!r}: {node}")
    operands = tuple(graph.nodes[i] for i in node.inputs)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * (1 + len(operands))), kernel_name(node))
    _keep_name(fn)
    # outputs never overlap inputs (graphc/program/plan.py), except an elementwise update computed in place
    # over the input it reads at the same index: only those pointers may alias
    in_place = {locations[node.id]} & {locations[i] for i in node.inputs}
    for arg, value, arg_name in zip(fn.args, (node, *operands), ("out", *(f"in{i}" for i in range(len(operands))))):
        arg.name = arg_name
        if locations[value.id] not in in_place:
            arg.add_attribute("noalias")
        arg.add_attribute("nonnull")
        nbytes = value.size * itemsize(value.dtype)
        if nbytes:
            arg.attributes.dereferenceable = nbytes
    fn.set_metadata("graphc.node", module.add_metadata([ir.MetaDataString(module, str(node))]))
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    try:
        EMITTERS[node.op](Kernel(b, node, operands, fn.args[0], tuple(fn.args[1:])))
    except LoweringError as error:
        raise LoweringError(f"{error}\n  while lowering {node}") from None
    except Exception as error:
        shapes = ", ".join(n.type_str for n in operands)
        raise LoweringError(f"while lowering {node} (operands {shapes}): {error}") from error
    b.ret_void()
    return fn


def _check_function(module: ir.Module, graph: Graph, node: Node) -> ir.Function:
    """An internal function `i1 (ptr in, ptr detail)` that checks `node`'s input."""
    operand = graph.nodes[node.inputs[0]]
    fn = ir.Function(module, ir.FunctionType(I1, [PTR, PTR]), kernel_name(node))
    _keep_name(fn)
    fn.args[0].name, fn.args[1].name = "in0", "detail"
    fn.set_metadata("graphc.node", module.add_metadata([ir.MetaDataString(module, str(node))]))
    CHECKS[node.op](Kernel(ir.IRBuilder(fn.append_basic_block("entry")), node, (operand,), fn.args[0],
                           (fn.args[0],)), fn.args[1])
    return fn


def _keep_name(fn: ir.Function) -> None:
    """Internal, and never inlined into the entry point: each kernel stays a symbol of its own in
    the optimised IR, the assembly and a profiler's report (a call per kernel costs nanoseconds)."""
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    fn.attributes.add("nounwind")


# the kernels of several nodes, by template: a row kernel with its reduction (log_softmax, pick,
# sum), a reduction of its producer, a multi-output map
_MULTI_NODE = {"row": _row_reduction_function, "reduce": _reduction_function, "map": _group_function}


def _constant_global(module: ir.Module, node: Node) -> ir.GlobalVariable:
    """The constant's bytes as a private, 64-byte aligned global (an i8 array holds any dtype)."""
    data = node.attr("value").array().astype(node.dtype, copy=False).tobytes()
    ty = ir.ArrayType(I8, max(len(data), 1))
    var = ir.GlobalVariable(module, ty, f"const{node.id}")
    var.initializer = ir.Constant(ty, bytearray(data or b"\0"))
    var.global_constant = True
    var.linkage = "private"
    var.align = 64
    return var


def _copy(b: ir.IRBuilder, dst: ir.Value, src: Location, pointer, node: Node) -> None:
    """memcpy the value of `node` from `src` to `dst` unless it already lives there."""
    source = pointer(src)
    nbytes = node.size * itemsize(node.dtype)
    if source is dst or nbytes == 0:
        return
    memcpy = declare(b.module, "llvm.memcpy.p0.p0.i64", ir.VoidType(), [PTR, PTR, I64, I1])
    b.call(memcpy, [dst, source, i64(nbytes), ir.Constant(I1, 0)])
