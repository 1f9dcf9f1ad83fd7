"""Buffer planning, a Program -> Program pass: where each value lives (an entry-point argument,
a private constant, or a workspace offset), with workspace bytes reused between values whose
lifetimes do not overlap.

Time is the schedule: a value is live from the position of the kernel that writes it to the
last kernel that reads it, reads through aliases and checks counting as reads of the value
itself; values read after the last kernel (outputs, update sources) stay live to the end.
Live ranges are closed, so a kernel's outputs never share bytes with an input whose last use is
that kernel: kernels mark their pointers `noalias` and read their inputs while writing.
A value only its own kernel reads lives in registers and gets no buffer.

An update whose new value is computed elementwise at the target's shape and dtype, after the
last check, when nothing later reads the old value, is written straight into the target's
buffer and its memcpy disappears: the parameter or optimizer state is updated in place. A
kernel reads every element of its inputs before it stores that element, so its own reads of
the old value are still right.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..ir import Graph, Node
from ..ops.registry import OPS
from .build import bases, computed, is_check, kernel_program
from .records import ALIASES, Buffer, Location, Program

ALIGNMENT = 64


@dataclass(frozen=True)
class LiveRange:
    """A workspace candidate: written at schedule position `start`, last read at `end`
    (len(kernels) when it is read after the last kernel), `nbytes` 64-byte aligned."""

    value: int
    start: int
    end: int
    nbytes: int

    def overlaps(self, other: "LiveRange") -> bool:
        return self.start <= other.end and other.start <= self.end


def plan_program(program: Program, in_place: bool = True) -> Program:
    """`program` with a buffer for every value: inputs and constants keep theirs, a computed
    graph output is written straight into the (first) output buffer listing it, aliases and
    checks take their input's location, in-place updates their target's, and other written
    values share workspace bytes when their live ranges are disjoint (greedy by size,
    best-fitting gap; 64-byte aligned)."""
    graph = program.graph
    input_slot = {node.id: i for i, node in enumerate(graph.inputs)}
    output_slot = _output_slots(program)
    updated = in_place_updates(program) if in_place else {}
    ranges = {r.value: r for r in live_ranges(program)}
    offsets = _offsets([r for r in ranges.values() if r.value not in updated])
    written = _written(program)
    base = bases(graph)
    end = len(program.kernels)
    locations: dict[int, Location] = {}
    buffers: list[Buffer] = []
    for node in graph.nodes:
        if node.op == "input":
            location = Location("arg", input_slot[node.id])
        elif node.op == "constant":
            location = Location("constant", node.id)
        elif node.op in ALIASES or is_check(node):
            location = locations.get(node.inputs[0])
        elif node.id not in written:
            continue  # in registers only
        elif node.id in output_slot:
            location = Location("arg", output_slot[node.id])
        elif node.id in updated:
            location = Location("arg", input_slot[updated[node.id]])
        else:
            location = Location("workspace", offsets[node.id])
        if location is None:
            continue
        locations[node.id] = location
        shared = next((b for b in buffers if b.value == base[node.id]), None) if base[node.id] != node.id else None
        if shared is not None:  # an alias or a check: its input's buffer
            buffers.append(replace(shared, value=node.id, shares=shared.shares or shared.value))
            continue
        r = ranges.get(node.id)
        start = program.position(node.id) if computed(node) else -1
        buffers.append(Buffer(node.id, location, start, r.end if r else end, r.nbytes if r else _aligned(node),
                              updated.get(node.id)))
    planned = replace(program, buffers=tuple(buffers))
    return replace(planned, workspace=_extent(graph, planned.locations))


def plan_buffers(graph: Graph, in_place: bool = True) -> dict[int, Location]:
    """The locations of a graph lowered one kernel per node, in node order."""
    return plan_program(kernel_program(graph), in_place).locations


def workspace_bytes(program: Program) -> int:
    """Bytes of scratch the planned program uses (at least 1, so callers never allocate nothing)."""
    return max(1, program.workspace)


def live_ranges(program: Program) -> list[LiveRange]:
    """The live range of every written value that is not an alias, a check or a graph output
    kept in its output buffer, in node order."""
    graph = program.graph
    base = bases(graph)
    last_read = _last_reads(program, base)
    end = len(program.kernels)
    for value_id in (*graph.outputs, *(v for v, _ in graph.updates)):
        last_read[base[value_id]] = end
    output_slot = _output_slots(program)
    written = _written(program)
    ranges = []
    for n in graph.nodes:
        if n.id in written and n.id not in output_slot:
            start = program.position(n.id)
            ranges.append(LiveRange(n.id, start, max(start, last_read.get(n.id, start)), _aligned(n)))
    return ranges


def in_place_updates(program: Program) -> dict[int, int]:
    """{value id: input id} of the updates whose value can be computed in the input's buffer:
    an elementwise kernel (same index read and written) of the input's shape and dtype, after
    every check (a failed check must leave the inputs untouched), whose input no later kernel
    reads, not even the end of the entry, and that is no output and no other update's source."""
    graph = program.graph
    base = bases(graph)
    last_read = _last_reads(program, base)
    read_at_end = [base[i] for i in (*graph.outputs, *(v for v, _ in graph.updates))]
    last_check = max((k for k, kernel in enumerate(program.kernels) if kernel.template == "check"), default=-1)
    targets = [t for _, t in graph.updates]
    chosen: dict[int, int] = {}
    for value_id, target_id in graph.updates:
        node, target = graph.nodes[value_id], graph.nodes[target_id]
        if not computed(node) or is_check(node):
            continue
        at = program.position(value_id)
        if (node.op in OPS and OPS[node.op].kind in ("fused", "elementwise") and node.shape == target.shape
                and node.dtype == target.dtype and node.size > 0 and target.op == "input"
                and at > last_check and last_read.get(target_id, -1) <= at
                and target_id not in read_at_end and read_at_end.count(value_id) == 1
                and value_id not in graph.outputs and targets.count(target_id) == 1):
            chosen[value_id] = target_id
    return chosen


def format_plan(program: Program) -> str:
    """The plan as text: one row per workspace value in node order (its aligned slot size,
    offset and live range in schedule positions), the updates computed in place, then
    `planned peak: <N> bytes (unplanned <M> bytes)`, M being what one slot per value took."""
    graph, locations = program.graph, program.locations
    ranges = live_ranges(program)
    rows = [("value", "op", "module", "bytes", "offset", "live")]
    for r in ranges:
        location, node = locations[r.value], graph.nodes[r.value]
        if location.kind == "workspace":
            last = "end" if r.end == len(program.kernels) else f"k{r.end}"
            rows.append((f"%{r.value}", node.op, node.module_path or "-", str(r.nbytes), str(location.index),
                         f"k{r.start}..{last}"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    right = {3, 4}  # numbers
    lines = [f"workspace plan: {len(rows) - 1} buffers"]
    for row in rows:
        cells = [cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    for value_id, target_id in graph.updates:
        node = graph.nodes[value_id]
        if value_id in locations and computed(node) and locations[value_id] == locations[target_id]:
            lines.append(f"in place: %{value_id} {node.op} ({node.module_path or '-'}) written into input "
                         f"%{target_id} {graph.nodes[target_id].attr('name')}, {_aligned(node)} bytes")
    unplanned = sum(r.nbytes for r in ranges)
    lines.append(f"planned peak: {program.workspace} bytes (unplanned {unplanned} bytes)")
    return "\n".join(lines)


def _written(program: Program) -> set[int]:
    """Values some kernel stores (checks store nothing: their value is their input's buffer)."""
    return {v for kernel in program.kernels if kernel.template != "check" for v in kernel.outputs}


def _itemsize(node: Node) -> int:
    return np.dtype(node.dtype).itemsize


def _aligned(node: Node) -> int:
    return -(-node.size * _itemsize(node) // ALIGNMENT) * ALIGNMENT


def _output_slots(program: Program) -> dict[int, int]:
    """Written graph outputs -> the first output argument listing them."""
    graph, written = program.graph, _written(program)
    slots: dict[int, int] = {}
    for j, node_id in enumerate(graph.outputs):
        if node_id in written:
            slots.setdefault(node_id, len(graph.inputs) + j)
    return slots


def _last_reads(program: Program, base: dict[int, int]) -> dict[int, int]:
    """The position of the last kernel that reads each value (aliases run no code: their
    readers read the base)."""
    last: dict[int, int] = {}
    for k, kernel in enumerate(program.kernels):
        for i in kernel.inputs:
            last[base[i]] = k
    return last


def _offsets(ranges: list[LiveRange]) -> dict[int, int]:
    """Byte offsets such that values live at the same time never share a byte: largest values
    first, each in the smallest gap left by the values already placed that overlap it in time,
    or on top of them (Pisarchyk and Lee's greedy by size). Sizes are multiples of ALIGNMENT,
    so every offset is too."""
    placed: list[LiveRange] = []
    offsets: dict[int, int] = {}
    for r in sorted(ranges, key=lambda r: (-r.nbytes, r.start)):
        busy = sorted((offsets[q.value], offsets[q.value] + q.nbytes) for q in placed if q.overlaps(r))
        best, best_gap, top = None, None, 0
        for start, stop in busy:
            gap = start - top
            if gap >= r.nbytes and (best_gap is None or gap < best_gap):
                best, best_gap = top, gap
            top = max(top, stop)
        offsets[r.value] = top if best is None else best
        placed.append(r)
    return offsets


def _extent(graph: Graph, locations: dict[int, Location]) -> int:
    """One past the last workspace byte any value uses (0 without workspace)."""
    ends = [loc.index + graph.nodes[i].size * _itemsize(graph.nodes[i])
            for i, loc in locations.items() if loc.kind == "workspace"]
    return max([0, *ends])
