"""The one place that turns arrays into the layout graphc's kernels read: C order, native bytes."""
from __future__ import annotations

from typing import Any

import numpy as np


def c_contiguous(arr: Any, dtype: Any = None) -> np.ndarray:
    """`arr` as a C-contiguous array in native byte order (converted to `dtype` if given), keeping
    its shape: a 0-d array stays 0-d, unlike `np.ascontiguousarray`. An array that already fits
    is returned as it is, not copied."""
    out = np.asarray(arr, dtype=dtype, order="C")
    if not out.dtype.isnative:
        out = out.astype(out.dtype.newbyteorder("="))
    return out
