"""Lowering: a kernel program (graphc/program) becomes one LLVM module with one native entry point.

kernel.py      types, the Kernel context, counted loops and dim collapsing
elementwise.py SCALAR_OPS (one scalar expression per elementwise op) and the broadcasting loop
reduce.py      sum / amax;  linalg.py  matmul, one_hot;  shape.py  permute, expand
emitters.py    EMITTERS, the table parallel to graphc.ops.OPS
module.py      lower(): a planned kernel program (graphc/program) -> kernel functions + entry point
"""
from .emitters import EMITTERS
from .kernel import LoweringError
from .module import LoweredGraph, lower

__all__ = ["EMITTERS", "LoweredGraph", "LoweringError", "lower"]
