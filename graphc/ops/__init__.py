"""The op table (`OPS`) and the op functions that eager code, tracing and gradients share."""
from .registry import OPS, OpDef, ShapeError, TensorType
from . import checks, elementwise, fused, linalg, reduce, shape, softmax, window, pool, convolution, index, random  # noqa: F401  (registration)
from . import functions

__all__ = ["OPS", "OpDef", "ShapeError", "TensorType", "functions"]
