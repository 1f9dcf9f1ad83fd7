"""Graph -> Graph passes, one file each; `pipeline.optimize` runs them in order."""
from .cse import cse
from .dead_code import dead_code, drop_unused_inputs
from .fold_batch_norm import fold_batch_norm
from .fold_constants import fold_constants
from .fold_transpose import fold_transpose_into_matmul
from .fuse_convolution import fuse_convolution
from .fuse_elementwise import fuse_elementwise
from .fuse_matmul_epilogue import fuse_matmul_epilogue
from .pipeline import KERNEL_PIPELINE, PASSES, PIPELINE, optimize
from .simplify import simplify

__all__ = ["cse", "dead_code", "drop_unused_inputs", "fold_batch_norm", "fold_constants", "fold_transpose_into_matmul", "fuse_convolution",
           "fuse_elementwise",
           "fuse_matmul_epilogue", "simplify", "KERNEL_PIPELINE", "PASSES", "PIPELINE", "optimize"]
