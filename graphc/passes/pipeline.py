"""The ordered pass pipeline. Each pass is a named function Graph -> Graph; verify runs after each."""
from __future__ import annotations

from typing import Callable

from ..ir import Graph, Verifier
from ..pass_runner import run_passes
from .cse import cse
from .fold_batch_norm import fold_batch_norm
from .dead_code import dead_code
from .fold_constants import fold_constants
from .fold_transpose import fold_transpose_into_matmul
from .fuse_convolution import fuse_convolution
from .fuse_elementwise import fuse_elementwise
from .fuse_input_gradient import fuse_input_gradient
from .fuse_matmul_epilogue import fuse_matmul_epilogue
from .fuse_weight_gradient import fuse_weight_gradient
from .simplify import simplify

Pass = Callable[[Graph], Graph]

PIPELINE: tuple[Pass, ...] = (
    fold_constants,
    simplify,
    fold_transpose_into_matmul,
    fold_batch_norm,  # after fold_transpose: it reads the matmul's transpose flags
    cse,
    dead_code,
)

# after autodiff, just before lowering: passes that make kernels rather than simplify math
KERNEL_PIPELINE: tuple[Pass, ...] = (
    fuse_elementwise,
    fuse_matmul_epilogue,
    fuse_convolution,  # after fuse_matmul_epilogue: it extends the bias body
    fuse_weight_gradient,  # after fuse_convolution: a gather it kept for the weight gradient goes
    fuse_input_gradient,  # after fuse_weight_gradient: dy's permute, read by both, goes
)

PASSES: dict[str, Pass] = {p.__name__: p for p in PIPELINE + KERNEL_PIPELINE}


def optimize(graph: Graph, passes: tuple[Pass, ...] = PIPELINE,
             after_each: Callable[[str, Graph, float], None] | None = None) -> Graph:
    """Run `passes` in order, verifying the graph after each one (its new nodes: ir.Verifier)."""
    return run_passes(graph, passes, Verifier(), after_each)
