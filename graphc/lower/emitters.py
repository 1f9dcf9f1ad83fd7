"""EMITTERS: the lowering table, parallel to graphc.ops.OPS (one entry per op).

An emitter writes the body of one kernel function from a `Kernel` (see kernel.py). Ops
that need no code are listed in ALIASES (their value shares its input's buffer); checks
(CHECKS) share their input's buffer too, and their kernels report failures; `input`
and `constant` are not ops of the table: they are buffers the entry point already has.
"""
from __future__ import annotations

from typing import Callable

from .checks import emit_check_index, emit_check_range
from .convolution import emit_convolution
from .index import emit_gather_rows, emit_scatter_add_rows
from .elementwise import SCALAR_OPS, emit_elementwise, emit_fused
from .kernel import Kernel
from .linalg import emit_matmul, emit_one_hot, emit_pack_panels
from .pool import emit_pool, emit_pool_backward
from .weight_gradient import emit_convolution_weight_grad
from .random import emit_random_uniform
from .softmax import emit_row_softmax
from .window import emit_window_gather, emit_window_scatter
from .reduce import REDUCTIONS, emit_argmax, emit_reduce
from .shape import emit_cat, emit_expand, emit_permute, emit_slice, emit_slice_scatter


def _alias(k: Kernel) -> None:
    raise AssertionError("aliases share their input's buffer and are never emitted")


# reshape keeps the row-major order of a contiguous buffer; detach is the identity
from ..program.records import ALIASES  # noqa: E402  (the kernel level decides which values share buffers)

# check ops: their value is their input's buffer; their kernel returns i1 (1: failed) and
# takes the input and a pointer for the offending value (see checks.py)
CHECKS: dict[str, Callable[[Kernel, object], None]] = {
    "check_index": emit_check_index,
    "check_range": emit_check_range,
}

EMITTERS: dict[str, Callable[[Kernel], None]] = {
    **{op: emit_elementwise for op in SCALAR_OPS},
    **{op: emit_reduce for op in REDUCTIONS},
    "permute": emit_permute,
    "expand": emit_expand,
    "slice": emit_slice,
    "slice_scatter": emit_slice_scatter,
    "cat": emit_cat,
    "argmax": emit_argmax,
    "matmul": emit_matmul,
    "matmul_epilogue": emit_matmul,  # the matmul kernel, its body applied before each store
    "convolution": emit_convolution,
    "convolution_weight_grad": emit_convolution_weight_grad,
    "one_hot": emit_one_hot,
    "pack_panels": emit_pack_panels,
    "softmax": emit_row_softmax,
    "log_softmax": emit_row_softmax,
    "window_gather": emit_window_gather,
    "window_scatter": emit_window_scatter,
    "pool": emit_pool,
    "pool_backward": emit_pool_backward,
    "gather_rows": emit_gather_rows,
    "scatter_add_rows": emit_scatter_add_rows,
    "random_uniform": emit_random_uniform,
    "fused": emit_fused,
    **{op: _alias for op in ALIASES},
    **{op: _alias for op in CHECKS},
}
