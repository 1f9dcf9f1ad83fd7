"""Graph -> Graph passes, one file each; `pipeline.optimize` runs them in order."""
from .cse import cse
from .dead_code import dead_code, drop_unused_inputs
from .fold_constants import fold_constants
from .fold_transpose import fold_transpose_into_matmul
from .pipeline import PASSES, PIPELINE, optimize
from .simplify import simplify

__all__ = ["cse", "dead_code", "drop_unused_inputs", "fold_constants", "fold_transpose_into_matmul",
           "simplify", "PASSES", "PIPELINE", "optimize"]
