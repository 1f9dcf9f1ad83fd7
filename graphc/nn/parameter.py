"""Parameter: a tensor that a Module registers as trainable state when assigned to an attribute."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..tensor import Tensor, _Modes, _unwrap, tensor

_REQUIRES_GRAD = Tensor.requires_grad  # the slot, read and written past the property below


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

    @property
    def requires_grad(self) -> bool:
        return _REQUIRES_GRAD.__get__(self, Parameter)

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        """A change moves modes(): compiled models key on their parameters' requires_grad and
        look at them again only then."""
        try:
            changed = value != _REQUIRES_GRAD.__get__(self, Parameter)
        except AttributeError:  # being initialised
            changed = False
        if changed:
            _Modes.bump()
        _REQUIRES_GRAD.__set__(self, value)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
