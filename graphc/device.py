"""graphc.device: PyTorch's device object. graphc compiles for the host CPU only, so 'cpu' is
the one device that exists; other PyTorch device types are recognised and refused clearly."""
from __future__ import annotations

from typing import Any

# PyTorch's device types, so 'cuda' is refused as unavailable rather than as a typo
TORCH_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga",
                      "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


def _parse(text: str) -> tuple[str, int | None]:
    kind, colon, index = text.partition(":")
    if kind not in TORCH_DEVICE_TYPES:
        raise RuntimeError(f"Expected one of {', '.join(TORCH_DEVICE_TYPES)} device type at start of "
                           f"device string: {text}")
    if colon and not index.isdigit():
        raise RuntimeError(f"Invalid device string: '{text}'")
    return kind, int(index) if colon else None


def _type_name(value: Any) -> str:
    return type(value).__name__  # device.__init__ names its argument `type`, as PyTorch does


class device:  # noqa: N801  (PyTorch's name)
    """`graphc.device('cpu')`, `device('cpu', 0)` or `device('cpu:0')`; prints and compares as
    PyTorch's (`device(type='cpu')`, str 'cpu'); any other type raises a RuntimeError."""

    __slots__ = ("type", "index")
    type: str
    index: int | None

    def __init__(self, type: Any, index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            kind, parsed = type.type, type.index
        elif isinstance(type, str):
            kind, parsed = _parse(type)
        elif hasattr(type, "type") and hasattr(type, "index"):  # a torch.device
            kind, parsed = type.type, type.index
        else:
            raise TypeError(f"device() expected a string or a device, got {_type_name(type)}")
        if index is not None:
            if parsed is not None:
                raise RuntimeError(f"type (string) must not include an index because index was passed "
                                   f"explicitly: {type}")
            parsed = int(index)
        if kind != "cpu":
            raise RuntimeError(f"graphc runs on the CPU only: device '{kind}' is not available "
                               "(use 'cpu')")
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "index", parsed)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"device.{name} is read-only")

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __reduce__(self) -> tuple:
        return device, (str(self),)


CPU = device("cpu")


def is_device(value: Any) -> bool:
    """Whether a `to(...)` argument names a device rather than a dtype: a device, a torch.device
    or a string naming a device type (graphc dtypes are strings too, but of class dtypes.dtype)."""
    from .dtypes import dtype
    if isinstance(value, device):
        return True
    if isinstance(value, str):
        return not isinstance(value, dtype) and value.partition(":")[0] in TORCH_DEVICE_TYPES
    return type(value).__name__ == "device" and hasattr(value, "index")


def split_to_arguments(args: tuple, kwargs: dict) -> tuple["device | None", Any, Any]:
    """PyTorch's `to(device=None, dtype=None)`, `to(dtype)`, `to(tensor)` spellings: the device
    (checked), the dtype and the tensor whose dtype was asked for, each None when not given."""
    unknown = set(kwargs) - {"device", "dtype", "non_blocking", "copy", "memory_format"}
    if unknown:
        raise TypeError(f"to() got an unexpected keyword argument '{sorted(unknown)[0]}'")
    target_device, dtype_, like = kwargs.get("device"), kwargs.get("dtype"), None
    for a in args:
        if is_device(a):
            target_device = a
        elif hasattr(a, "dtype") and hasattr(a, "shape"):  # a tensor: its dtype (and device)
            like = a
        elif isinstance(a, bool):  # non_blocking / copy given positionally
            continue
        else:
            dtype_ = a
    return (device(target_device) if target_device is not None else None), dtype_, like
