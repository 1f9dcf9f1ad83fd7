"""state_dict and load_state_dict with PyTorch's keys, key order and error messages.

Loading copies into the existing arrays, so parameters keep their identity (optimizers and
compiled programs that hold them see the new values). Every entry is checked (tensor-like,
numeric dtype, shape) before any is copied, so a load that fails changes nothing. Values may be
graphc tensors, numpy arrays or anything with `.detach().cpu().numpy()` (a torch tensor), so
checkpoints move both ways.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, NamedTuple

import numpy as np

from ..autograd import no_grad
from ..tensor import Size, Tensor


class _IncompatibleKeys(NamedTuple):
    """What load_state_dict returns, named as PyTorch's (so `type(result).__name__` matches)."""

    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"

    __str__ = __repr__


IncompatibleKeys = _IncompatibleKeys


def _local_state(module: Any) -> dict[str, Tensor]:
    """What one module saves itself: parameters, then persistent buffers (None entries skipped)."""
    state = {name: p for name, p in module._parameters.items() if p is not None}
    state.update((name, b) for name, b in module._buffers.items()
                 if b is not None and name not in module._non_persistent_buffers_set)
    return state


def save(module: Any, destination: Any, prefix: str, keep_vars: bool) -> Any:
    destination = OrderedDict() if destination is None else destination
    for name, value in _local_state(module).items():
        destination[prefix + name] = value if keep_vars else value.detach()
    for name, child in module._modules.items():
        if child is not None:
            save(child, destination, prefix + name + ".", keep_vars)
    return destination


def _as_array(value: Any) -> np.ndarray | None:
    """The value behind a checkpoint entry, or None when it is not tensor-like."""
    if isinstance(value, Tensor):
        return value._concrete("load_state_dict")
    if isinstance(value, np.ndarray):
        return value
    if all(hasattr(value, a) for a in ("detach", "cpu", "numpy")):
        return np.asarray(value.detach().cpu().numpy())
    return None


# numpy kinds graphc can load: bool, signed and unsigned integers, floating point
_LOADABLE_KINDS = "biuf"


def _checked_value(key: str, value: Any, target: Tensor) -> tuple[np.ndarray | None, str | None]:
    """The checkpoint value converted to the target's dtype, or the error that rules it out
    (checked in PyTorch's order: tensor-like, then shape, then whether the copy can happen)."""
    try:
        array, problem = _as_array(value), None
    except (TypeError, RuntimeError) as ex:  # a torch dtype numpy has no counterpart for, say
        array, problem = None, ex.args
    if array is None and problem is None:
        return None, (f'While copying the parameter named "{key}", expected Tensor or Tensor-like '
                      f"object from checkpoint but received {type(value)}")
    shape = Size(array.shape if array is not None else getattr(value, "shape", ()))
    if tuple(shape) != tuple(target.shape):
        return None, (f"size mismatch for {key}: copying a param with shape {shape!r} from "
                      f"checkpoint, the shape in current model is {target.shape!r}.")
    if array is not None and array.dtype.kind not in _LOADABLE_KINDS:
        problem = (f"cannot copy values of dtype {array.dtype} into a {target._dtype} tensor; "
                   "graphc loads bool, integer and floating-point values only",)
    if problem is not None:
        return None, (f'While copying the parameter named "{key}", whose dimensions in the model are '
                      f"{target.shape!r} and whose dimensions in the checkpoint are {shape!r}, "
                      f"an exception occurred : {problem}.")
    return np.asarray(array, dtype=target._dtype), None


def _check_local(module: Any, state_dict: Mapping[str, Any], prefix: str, copies: list[tuple[Tensor, np.ndarray]],
                 missing: list[str], unexpected: list[str], errors: list[str]) -> None:
    """Check one module's entries, queueing the copies; nothing is written here."""
    local = _local_state(module)
    for name, target in local.items():
        key = prefix + name
        if key not in state_dict:
            missing.append(key)
            continue
        array, error = _checked_value(key, state_dict[key], target)
        if error is None:
            copies.append((target, array))
        else:
            errors.append(error)
    for key in state_dict:
        if not key.startswith(prefix):
            continue
        head, dotted, _ = key[len(prefix):].partition(".")
        # a dotted key belongs to a child (checked there); an undotted one must be local state
        if (head not in module._modules) if dotted else (head not in local):
            unexpected.append(key)


def load(module: Any, state_dict: Mapping[str, Any], strict: bool) -> IncompatibleKeys:
    """Check every entry first and copy only when all of them can be loaded, so a failed load
    leaves every parameter and buffer as it was (PyTorch copies the entries before a bad one)."""
    copies: list[tuple[Tensor, np.ndarray]] = []
    missing: list[str] = []
    unexpected: list[str] = []
    errors: list[str] = []

    def visit(m: Any, prefix: str) -> None:
        _check_local(m, state_dict, prefix, copies, missing, unexpected, errors)
        for name, child in m._modules.items():
            if child is not None:
                visit(child, prefix + name + ".")

    if not isinstance(state_dict, Mapping):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
    visit(module, "")
    if strict:
        if unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in unexpected)))
        if missing:
            errors.insert(0, "Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing)))
    if errors:
        raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
            type(module).__name__, "\n\t".join(errors)))
    with no_grad():
        for target, array in copies:
            target._set(array)
    return IncompatibleKeys(missing, unexpected)
