"""The kernel level's records: a Program is the kernel graph (fused nodes, one value each), the
kernels that compute it in schedule order, and, once planned, a buffer for every value.

A kernel is one function of the lowered module. Most compute one node; a `map` kernel may
compute several elementwise nodes of one shape in one loop nest (several outputs: an Adam
update writes the parameter and both moments reading the gradient once). Values that only
members of their own kernel read never touch memory. Records are frozen and print as text
(`graphc dump --stage kernels` and `--stage plan` show them).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..ir import Graph, Node

# the op table's kinds -> the loop-nest template a kernel of that op follows
TEMPLATES = {"elementwise": "map", "fused": "map", "random": "map", "matmul": "contraction", "reduce": "reduce",
             "row": "row", "index": "index", "shape": "copy", "check": "check"}

# ops that run no code: their value is their input's buffer (reshape keeps the row-major order
# of a contiguous buffer; detach is the identity)
ALIASES = frozenset({"reshape", "detach"})


@dataclass(frozen=True)
class Location:
    """kind 'arg': index into the entry's pointer array (inputs, then outputs);
    'workspace': byte offset into the scratch arena; 'constant': id of the constant node."""

    kind: str
    index: int


@dataclass(frozen=True)
class Kernel:
    """One kernel function: the nodes it computes (in order), the values it writes to memory
    (`outputs`: the others stay in registers) and reads from memory (`inputs`)."""

    name: str
    template: str  # map, contraction, reduce, row, index, copy, check
    nodes: tuple[int, ...]
    outputs: tuple[int, ...]
    inputs: tuple[int, ...]
    module_paths: tuple[str, ...]

    def __str__(self) -> str:
        ids = lambda values: " ".join(f"%{v}" for v in values) or "-"  # noqa: E731
        paths = ", ".join(p or "<root>" for p in self.module_paths)
        return f"{self.name}  {self.template}  nodes {ids(self.nodes)}  writes {ids(self.outputs)}  " \
               f"reads {ids(self.inputs)}  [{paths}]"


@dataclass(frozen=True)
class Buffer:
    """Where one value lives, from the kernel that writes it (`start`, a schedule position) to
    the last that reads it (`end`; len(kernels) when it is read after the last one); `nbytes`
    is its slot size (64-byte aligned) for workspace values."""

    value: int
    location: Location
    start: int
    end: int
    nbytes: int
    shares: int | None = None  # the value whose bytes these are: an alias's or check's input, an in-place update's target


@dataclass(frozen=True)
class Program:
    """The kernel graph, its kernels in schedule order, and (after planning) its buffers."""

    graph: Graph
    kernels: tuple[Kernel, ...]
    buffers: tuple[Buffer, ...] | None = None
    workspace: int = 0  # bytes of scratch the plan uses
    _position: dict = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_position", {v: k for k, kernel in enumerate(self.kernels) for v in kernel.nodes})

    def position(self, value: int) -> int:
        """The schedule position of the kernel computing `value`."""
        return self._position[value]

    def kernel_of(self, value: int) -> Kernel | None:
        k = self._position.get(value)
        return None if k is None else self.kernels[k]

    @property
    def locations(self) -> dict[int, Location]:
        """{value id: location} of the planned program (aliases and checks share their input's)."""
        if self.buffers is None:
            raise ValueError("the program has no buffer plan yet")
        return {b.value: b.location for b in self.buffers}

    def __str__(self) -> str:
        """The kernel graph, then the kernels in schedule order."""
        lines = [str(self.graph), f"kernels: {len(self.kernels)}, in schedule order"]
        lines += [f"  {k:>3} {kernel}" for k, kernel in enumerate(self.kernels)]
        return "\n".join(lines)


def kernel_name(node: Node) -> str:
    """`k12_matmul_fc1`: node id, op (`_grad` when a gradient rule made it: `k19_matmul_grad_fc1`)
    and the module path made into an identifier."""
    path = re.sub(r"[^0-9A-Za-z]+", "_", node.module_path).strip("_")
    return f"k{node.id}_{node.op}" + ("_grad" if is_gradient(node) else "") + (f"_{path}" if path else "")


def is_gradient(node: Node) -> bool:
    """Whether a gradient rule made `node` (every member, for a fused node): autodiff marks
    their module type `Linear grad`."""
    return bool(node.module_type) and all(t.split(" ")[-1] == "grad" for t in node.module_type.split("+"))
