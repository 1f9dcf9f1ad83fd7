"""Basic indexing (`x[1, ::2, None, ...]`) as one strided `slice` and a reshape.

Ints pick one element of a dim (and drop it), slices with positive steps keep a strided window,
None adds a dim of size 1 and Ellipsis stands for the dims not named. So indexing is traced and
differentiated like any op; tensors, lists and bools as indices (advanced indexing) are eager only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BasicIndex:
    """x[index] is reshape(slice(x, starts, steps, window), shape)."""

    starts: tuple[int, ...]
    steps: tuple[int, ...]
    window: tuple[int, ...]
    shape: tuple[int, ...]


def _is_int(i: Any) -> bool:
    if isinstance(i, (bool, np.bool_)):
        return False
    if isinstance(i, (int, np.integer)):
        return True
    # a 0-d integer tensor is an int index, as in PyTorch
    return getattr(i, "_data", None) is not None and i.ndim == 0 and i.dtype == "int64"


def basic_index(index: Any, shape: tuple[int, ...]) -> BasicIndex | None:
    """The window `index` selects from a tensor of `shape`, or None for advanced indexing."""
    items = index if isinstance(index, tuple) else (index,)
    if not all(_is_int(i) or isinstance(i, slice) or i is None or i is Ellipsis for i in items):
        return None
    if sum(i is Ellipsis for i in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    named = sum(1 for i in items if i is not None and i is not Ellipsis)
    if named > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if Ellipsis in items:
        at = next(k for k, i in enumerate(items) if i is Ellipsis)
        items = items[:at] + (slice(None),) * (len(shape) - named) + items[at + 1:]
    else:
        items = items + (slice(None),) * (len(shape) - named)
    starts, steps, window, out = [], [], [], []
    dim = 0
    for i in items:
        if i is None:
            out.append(1)
            continue
        n = shape[dim]
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            count = len(range(start, stop, step))
            starts.append(start if count else 0)
            steps.append(step)
            window.append(count)
            out.append(count)
        else:
            k = int(i)
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for dimension {dim} with size {n}")
            starts.append(k % n)
            steps.append(1)
            window.append(1)
        dim += 1
    return BasicIndex(tuple(starts), tuple(steps), tuple(window), tuple(out))
