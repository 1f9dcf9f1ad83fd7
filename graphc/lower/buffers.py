"""Buffer planning: where each value lives (an entry-point argument, a private constant, or a
workspace offset), with workspace bytes reused between values whose lifetimes do not overlap.

The entry point runs the kernels in node order, then copies outputs, then memcpys
`graph.updates` (module.py). A value is live from the node that computes it to the last node
that reads it, reads through aliases and checks counting as reads of the value itself; values
read after the last kernel (outputs, update sources) stay live to the end. Live ranges are
closed, so a node's output never shares bytes with an input whose last use is that node:
kernels mark their pointers `noalias` and read their inputs while writing their output.

An update whose new value is computed elementwise at the target's shape and dtype, after the
last check, when nothing later reads the old value, is written straight into the target's
buffer and its memcpy disappears (module.py leaves `noalias` off the pointers that kernel shares).
Its readers then read it there; the old value is dead by then.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph, Node
from .elementwise import SCALAR_OPS
from .emitters import ALIASES, CHECKS
from .kernel import itemsize

ALIGNMENT = 64


@dataclass(frozen=True)
class Location:
    """kind 'arg': index into the entry's pointer array (inputs, then outputs);
    'workspace': byte offset into the scratch arena; 'constant': id of the constant node."""

    kind: str
    index: int


@dataclass(frozen=True)
class LiveRange:
    """A value the old layout gave its own workspace slot: computed at node `start`, last read
    by node `end` (len(graph) when it is read after the last kernel), `nbytes` 64-byte aligned."""

    value: int
    start: int
    end: int
    nbytes: int

    def overlaps(self, other: "LiveRange") -> bool:
        return self.start <= other.end and other.start <= self.end


def plan_buffers(graph: Graph, in_place: bool = True) -> dict[int, Location]:
    """A location for every node: inputs and constants keep theirs, a computed graph output is
    written straight into the (first) output buffer listing it, aliases and checks take their
    input's location, in-place updates their target's, and other values share workspace bytes
    when their live ranges are disjoint (greedy by size, best-fitting gap; 64-byte aligned)."""
    input_slot = {node.id: i for i, node in enumerate(graph.inputs)}
    output_slot = _output_slots(graph)
    updated = in_place_updates(graph) if in_place else {}
    offsets = _offsets([r for r in live_ranges(graph) if r.value not in updated])
    locations: dict[int, Location] = {}
    for node in graph.nodes:
        if node.op == "input":
            locations[node.id] = Location("arg", input_slot[node.id])
        elif node.op == "constant":
            locations[node.id] = Location("constant", node.id)
        elif node.op in ALIASES or node.op in CHECKS:
            locations[node.id] = locations[node.inputs[0]]
        elif node.id in output_slot:
            locations[node.id] = Location("arg", output_slot[node.id])
        elif node.id in updated:
            locations[node.id] = Location("arg", input_slot[updated[node.id]])
        else:
            locations[node.id] = Location("workspace", offsets[node.id])
    return locations


assign_buffers = plan_buffers  # the name module.py and older tests use


def workspace_bytes(graph: Graph, locations: dict[int, Location]) -> int:
    """Bytes of scratch the locations use (at least 1, so callers never allocate nothing)."""
    return max(1, _extent(graph, locations))


def live_ranges(graph: Graph) -> list[LiveRange]:
    """The live range of every computed value that is not an alias, a check or a graph output
    kept in its output buffer, in node order."""
    base = _bases(graph)
    last_read = _last_reads(graph, base)
    end = len(graph.nodes)
    for value_id in (*graph.outputs, *(v for v, _ in graph.updates)):
        last_read[base[value_id]] = end
    output_slot = _output_slots(graph)
    return [LiveRange(n.id, n.id, max(n.id, last_read.get(n.id, n.id)), _aligned(n))
            for n in graph.nodes if _computed(n) and n.id not in output_slot]


def in_place_updates(graph: Graph) -> dict[int, int]:
    """{value id: input id} of the updates whose value can be computed in the input's buffer:
    an elementwise kernel (same index read and written) of the input's shape and dtype, after
    every check (a failed check must leave the inputs untouched), whose input nobody reads
    after it, not even the end of the entry, and that is no output and no other update's source."""
    base = _bases(graph)
    last_read = _last_reads(graph, base)
    read_at_end = [base[i] for i in (*graph.outputs, *(v for v, _ in graph.updates))]
    last_check = max((n.id for n in graph.nodes if n.op in CHECKS), default=-1)
    targets = [t for _, t in graph.updates]
    chosen: dict[int, int] = {}
    for value_id, target_id in graph.updates:
        node, target = graph.nodes[value_id], graph.nodes[target_id]
        if ((node.op == "fused" or node.op in SCALAR_OPS) and node.shape == target.shape
                and node.dtype == target.dtype and node.size > 0 and target.op == "input"
                and value_id > last_check and last_read.get(target_id, -1) <= value_id
                and target_id not in read_at_end and read_at_end.count(value_id) == 1
                and value_id not in graph.outputs and targets.count(target_id) == 1):
            chosen[value_id] = target_id
    return chosen


def format_plan(graph: Graph, locations: dict[int, Location]) -> str:
    """The plan as text: one row per workspace value in node order (its aligned slot size,
    offset and live range), the updates computed in place, then
    `planned peak: <N> bytes (unplanned <M> bytes)`, M being what one slot per value took."""
    ranges = live_ranges(graph)
    rows = [("value", "op", "module", "bytes", "offset", "live")]
    for r in ranges:
        location, node = locations[r.value], graph.nodes[r.value]
        if location.kind == "workspace":
            last = "end" if r.end == len(graph.nodes) else f"%{r.end}"
            rows.append((f"%{r.value}", node.op, node.module_path or "-", str(r.nbytes), str(location.index),
                         f"%{r.start}..{last}"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    right = {3, 4}  # numbers
    lines = [f"workspace plan: {len(rows) - 1} buffers"]
    for row in rows:
        cells = [cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    for value_id, target_id in graph.updates:
        node = graph.nodes[value_id]
        if _computed(node) and locations[value_id] == locations[target_id]:
            lines.append(f"in place: %{value_id} {node.op} ({node.module_path or '-'}) written into input "
                         f"%{target_id} {graph.nodes[target_id].attr('name')}, {_aligned(node)} bytes")
    unplanned = sum(r.nbytes for r in ranges)
    lines.append(f"planned peak: {_extent(graph, locations)} bytes (unplanned {unplanned} bytes)")
    return "\n".join(lines)


def _computed(node: Node) -> bool:
    """A node a kernel writes (not an input, a constant, an alias or a check)."""
    return node.op not in ("input", "constant") and node.op not in ALIASES and node.op not in CHECKS


def _aligned(node: Node) -> int:
    return -(-node.size * itemsize(node.dtype) // ALIGNMENT) * ALIGNMENT


def _output_slots(graph: Graph) -> dict[int, int]:
    """Computed graph outputs -> the first output argument listing them."""
    slots: dict[int, int] = {}
    for j, node_id in enumerate(graph.outputs):
        if _computed(graph.nodes[node_id]):
            slots.setdefault(node_id, len(graph.inputs) + j)
    return slots


def _bases(graph: Graph) -> dict[int, int]:
    """The value whose buffer each node uses: itself, or for aliases and checks their input's."""
    base: dict[int, int] = {}
    for node in graph.nodes:
        shares = node.op in ALIASES or node.op in CHECKS
        base[node.id] = base[node.inputs[0]] if shares else node.id
    return base


def _last_reads(graph: Graph, base: dict[int, int]) -> dict[int, int]:
    """The last node whose code reads each value (aliases run no code: their readers read the base)."""
    last: dict[int, int] = {}
    for node in graph.nodes:
        if node.op not in ALIASES:
            for i in node.inputs:
                last[base[i]] = node.id
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
    ends = [loc.index + graph.nodes[i].size * itemsize(graph.nodes[i].dtype)
            for i, loc in locations.items() if loc.kind == "workspace"]
    return max([0, *ends])
