"""Parameter: a tensor that a Module registers as trainable state when assigned to an attribute."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..tensor import Tensor, _unwrap, tensor


class Parameter(Tensor):
    """Shares memory with `data` (a tensor or array), so loading and optimizer steps stay visible."""

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            array = np.empty((0,), dtype=dtypes.get_default_dtype())
        elif isinstance(data, np.ndarray):
            array = data
        elif isinstance(data, Tensor):
            array = data._concrete("Parameter()")
        else:  # a torch tensor (its numpy view shares its memory), a list or a scalar
            value = _unwrap(data)
            array = value if isinstance(value, np.ndarray) else tensor(value)._data
        self._init(array)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
