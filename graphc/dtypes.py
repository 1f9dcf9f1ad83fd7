"""dtype objects with PyTorch's names; they are strings underneath (numpy's names)."""
from __future__ import annotations

import numpy as np


class dtype(str):
    """`graphc.float32` compares equal to "float32" and prints as `graphc.float32`."""

    def __repr__(self) -> str:
        return f"graphc.{self}"

    @property
    def is_floating_point(self) -> bool:
        return self.startswith("float")


float32 = dtype("float32")
float64 = dtype("float64")
int64 = dtype("int64")
bool_ = dtype("bool")
float, double, long = float32, float64, int64  # noqa: A001  (PyTorch's aliases)

_KNOWN = {"float32": float32, "float64": float64, "int64": int64, "bool": bool_}
_default = float32
_SEEN: dict[np.dtype, dtype] = {}  # numpy dtypes already named, as arrays' dtypes are asked again and again


def canonical(value: object) -> dtype:
    """Accept graphc/numpy/PyTorch spellings of a supported dtype."""
    if value.__class__ is dtype:  # the common cases, on every op a trace records
        return value
    if value.__class__ is str:  # a tensor's own dtype name
        found = _KNOWN.get(value)
    else:
        found = _SEEN.get(value) if isinstance(value, np.dtype) else None
    if found is not None:
        return found
    name = str(value).removeprefix("torch.").removeprefix("graphc.")
    name = {"float": "float32", "double": "float64", "long": "int64", "int32": "int64"}.get(name, name)
    try:
        found = _KNOWN[np.dtype(name).newbyteorder("=").name]  # either byte order names the dtype
    except (KeyError, TypeError):
        raise TypeError(f"unsupported dtype {value!r}; graphc supports float32, float64, int64 and bool") from None
    if isinstance(value, np.dtype):
        _SEEN[value] = found
    return found


def get_default_dtype() -> dtype:
    return _default


def set_default_dtype(value: object) -> None:
    global _default
    _default = canonical(value)
