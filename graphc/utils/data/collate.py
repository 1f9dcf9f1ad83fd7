"""default_collate: a list of samples becomes one batch, structured like a sample.

Tensors and numpy arrays are stacked along a new first dimension, Python numbers become 1-D
tensors with PyTorch's dtypes (int -> int64, float -> float64, bool -> bool), strings stay a
list, and dicts, named tuples and sequences are collated field by field (a tuple of fields comes
back as a list, as in PyTorch). Collation runs eagerly on data: it stacks the arrays behind the
tensors, so a batch never carries autograd history.
"""
from __future__ import annotations

import collections.abc
import copy
from typing import Any, Sequence

import numpy as np

from ...arrays import c_contiguous
from ...tensor import Tensor, as_tensor, tensor

_NOT_COLLATABLE = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _stack(batch: Sequence[Tensor]) -> Tensor:
    arrays = [t._concrete("collating a batch") for t in batch]
    for i, array in enumerate(arrays):
        if array.shape != arrays[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(arrays[0].shape)} "
                               f"at entry 0 and {list(array.shape)} at entry {i}")
    return Tensor._wrap(c_contiguous(np.stack(arrays)))


def _is_numpy(value: Any) -> bool:
    return isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, (np.str_, np.bytes_))


def default_collate(batch: Sequence[Any]) -> Any:
    """Merge a list of samples into a batch (see the module's docstring)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(batch)
    if _is_numpy(elem):
        if elem.dtype.kind in "SUO":
            raise TypeError(_NOT_COLLATABLE.format(elem.dtype))
        if isinstance(elem, np.ndarray) and elem.ndim:
            return _stack([as_tensor(np.asarray(b)) for b in batch])
        return tensor(np.array(batch))  # numpy scalars keep their dtype
    if isinstance(elem, bool):
        return tensor(batch, dtype="bool")
    if isinstance(elem, int):
        return tensor(batch, dtype="int64")
    if isinstance(elem, float):
        return tensor(batch, dtype="float64")
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        fields = {key: default_collate([sample[key] for sample in batch]) for key in elem}
        if isinstance(elem, collections.abc.MutableMapping):
            merged = copy.copy(elem)  # keeps the mapping's type and any attributes it carries
            merged.update(fields)
            return merged
        return _rebuilt(type(elem), fields, dict)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a named tuple
        return type(elem)(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(samples) for samples in zip(*batch)]  # strings stay a tuple, as in PyTorch
        return fields if isinstance(elem, tuple) else _rebuilt(type(elem), fields, list)
    raise TypeError(_NOT_COLLATABLE.format(type(elem)))


def _rebuilt(kind: type, fields: Any, fallback: type) -> Any:
    """`fields` in the sample's own container type, when that type can be built from them."""
    try:
        return kind(fields)
    except TypeError:
        return fallback(fields)


def default_convert(data: Any) -> Any:
    """What a DataLoader without batching (`batch_size=None`) yields: numpy arrays and scalars
    become tensors, containers are converted element by element, anything else is kept."""
    if isinstance(data, Tensor):
        return data
    if _is_numpy(data):
        return data if data.dtype.kind in "SUO" else tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        fields = {key: default_convert(value) for key, value in data.items()}
        if isinstance(data, collections.abc.MutableMapping):
            merged = copy.copy(data)
            merged.update(fields)
            return merged
        return _rebuilt(type(data), fields, dict)
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _rebuilt(type(data), [default_convert(d) for d in data], list)
    return data
