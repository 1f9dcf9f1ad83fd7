"""graphc.save and graphc.load: checkpoints as safetensors files, with no pickle anywhere.

The file is a plain safetensors file: the arrays are its tensors, and the structure around them
(dicts, OrderedDicts, int keys, lists, tuples, numbers, strings, None) is JSON in the header's
metadata, under a format name and version. Each node of that JSON says what it is, so a load
rebuilds exactly the types that were saved; a tensor node names its array, whose key is the
node's path in the structure (`model/fc1.weight`, or just `fc1.weight` for a state_dict), so
safetensors' own tools read a graphc state_dict with its usual keys. Loading evaluates nothing:
the header is checked against the schema and anything else is a `CheckpointError`.

The schema (version 1), one JSON object per node:
    {"type": "none"}                          {"type": "bool"|"int"|"str", "value": ...}
    {"type": "float", "value": 0.5 | "nan" | "inf" | "-inf"}
    {"type": "tensor", "key": <the array's key in the file>}
    {"type": "list"|"tuple", "items": [node, ...]}
    {"type": "dict"|"OrderedDict", "items": [[key node, value node], ...]}
"""
from __future__ import annotations

import io
import json
import math
import os
import secrets
import stat
from collections import OrderedDict
from typing import Any, BinaryIO, Union

import numpy as np
import safetensors
import safetensors.numpy

from .arrays import c_contiguous
from .errors import CheckpointError
from .tensor import Tensor

FORMAT, VERSION = "graphc.checkpoint", 1
FileLike = Union[str, "os.PathLike[str]", BinaryIO]

_HEADER_LIMIT = 100 * 1024 * 1024  # safetensors refuses larger headers too
_SCALARS = {"bool": bool, "int": int, "float": float, "str": str}  # bool first: bool is an int
_CONTAINERS = {"list": list, "tuple": tuple}
_MAPPINGS = {"dict": dict, "OrderedDict": OrderedDict}
_DTYPES = ("float32", "float64", "int64", "bool")  # what a graphc tensor can hold


# --- saving -------------------------------------------------------------------------------
class _Encoder:
    """Turns an object into a JSON node and a dict of arrays keyed by path."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.keys_of: dict[int, str] = {}  # one tensor saved twice is stored once and loads as one
        self.open: set[int] = set()

    def encode(self, value: Any, path: tuple[str, ...]) -> dict[str, Any]:
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":  # numpy scalars store as numbers
            value = value.item()
        if value is None:
            return {"type": "none"}
        for name, kind in _SCALARS.items():
            if isinstance(value, kind):  # subclasses (np.float64, IntEnum) store as the base type
                return {"type": name, "value": _scalar_json(kind(value))}
        if isinstance(value, Tensor):
            return {"type": "tensor", "key": self.tensor_key(value, path)}
        if type(value) in _MAPPINGS.values() or type(value) in _CONTAINERS.values():
            if id(value) in self.open:
                raise ValueError(f"graphc.save: the object at {_shown(path)} contains itself")
            self.open.add(id(value))
            try:
                if isinstance(value, dict):
                    return {"type": type(value).__name__,
                            "items": [[self.encode_key(k, path), self.encode(v, path + (str(k),))]
                                      for k, v in value.items()]}
                return {"type": type(value).__name__,
                        "items": [self.encode(v, path + (str(i),)) for i, v in enumerate(value)]}
            finally:
                self.open.discard(id(value))
        raise TypeError(f"graphc.save cannot store a {type(value).__name__} (at {_shown(path)}); it stores "
                        "Tensors, dicts, OrderedDicts, lists, tuples, numbers, strings and None")

    def encode_key(self, key: Any, path: tuple[str, ...]) -> dict[str, Any]:
        if isinstance(key, (Tensor, dict, list)):
            raise TypeError(f"graphc.save cannot store a dict key of type {type(key).__name__} (at {_shown(path)})")
        return self.encode(key, path)

    def tensor_key(self, tensor: Tensor, path: tuple[str, ...]) -> str:
        if id(tensor) in self.keys_of:
            return self.keys_of[id(tensor)]
        key, n = "/".join(path) or "tensor", 1
        while key in self.arrays or key == "__metadata__":  # a key such as "a/b" at two paths
            key, n = f"{'/'.join(path)}#{n}", n + 1
        array = tensor._concrete("graphc.save")
        self.arrays[key] = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")  # keeps 0-d
        self.keys_of[id(tensor)] = key
        return key


def _scalar_json(value: Any) -> Any:
    """Finite floats are JSON numbers (written to round-trip exactly); nan and infinities strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _shown(path: tuple[str, ...]) -> str:
    return "/".join(path) if path else "the top level"


def save(obj: Any, f: FileLike) -> None:
    """Write `obj` (a state_dict, an optimizer's state_dict, or dicts of those and numbers) to `f`,
    a path or a binary file object. A path is replaced atomically: the bytes go to a temporary
    file in the same folder, are flushed to disk and renamed over the old file, so a crash at any
    point leaves the previous checkpoint whole."""
    encoder = _Encoder()
    structure = encoder.encode(obj, ())
    metadata = {"format": FORMAT, "version": str(VERSION),
                "structure": json.dumps(structure, allow_nan=False, separators=(",", ":"))}
    data = safetensors.numpy.save(encoder.arrays, metadata=metadata)
    if hasattr(f, "write"):
        f.write(data)
    else:
        _replace_atomically(os.fspath(f), data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _replace_atomically(path: str, data: bytes) -> None:
    """Write into an unnamed file in the target's folder (Linux's O_TMPFILE), then give it a name
    and rename it over `path`: a process killed while writing leaves no file behind. Where
    unnamed files are not supported a named temporary file is used and removed on failure."""
    folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    temporary = f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp"
    try:
        fd, named = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o666, dir_fd=folder), False
    except (AttributeError, OSError):
        fd, named = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=folder), True
    try:
        _write_all(fd, data)
        os.fsync(fd)
        if not named:  # the /proc link is how Linux names an O_TMPFILE file
            os.link(f"/proc/self/fd/{fd}", temporary, dst_dir_fd=folder, follow_symlinks=True)
            named = True
        os.replace(temporary, os.path.basename(path), src_dir_fd=folder, dst_dir_fd=folder)
        os.fsync(folder)  # the rename itself reaches the disk
    except BaseException:
        if named:
            try:
                os.unlink(temporary, dir_fd=folder)
            except FileNotFoundError:
                pass
        raise
    finally:
        os.close(fd)
        os.close(folder)


# --- loading ------------------------------------------------------------------------------
def load(f: FileLike, map_location: Any = None, weights_only: bool = True) -> Any:
    """Read what `save` wrote. `map_location` may only name the CPU (graphc runs there);
    `weights_only` is accepted for PyTorch's signature: the format holds data only, so every
    load is weights-only. A safetensors file without graphc's metadata (written by
    `safetensors.torch.save_file`, say) loads as an OrderedDict of tensors."""
    if map_location is not None and str(map_location) != "cpu":
        raise ValueError(f"graphc.load: map_location={map_location!r}, but graphc keeps tensors on the cpu only")
    name = _name_of(f)
    data = _read(f, name)
    header = _header(data, name)
    metadata = _metadata(header, name)
    try:
        arrays = safetensors.numpy.load(data)
    except (safetensors.SafetensorError, ValueError, TypeError) as ex:
        raise CheckpointError(f"cannot load checkpoint {name}: {ex}") from None
    tensors = {}
    for key, array in arrays.items():
        if array.dtype.name not in _DTYPES:
            raise CheckpointError(f"cannot load checkpoint {name}: tensor {key!r} has dtype {array.dtype.name}; "
                                  "graphc tensors hold float32, float64, int64 or bool")
        array = c_contiguous(array)
        tensors[key] = Tensor._wrap(array if array.flags.writeable else array.copy())
    if metadata.get("format") != FORMAT:
        if metadata.get("structure") is not None:
            raise CheckpointError(f"cannot load checkpoint {name}: its metadata names format "
                                  f"{metadata.get('format')!r}, not {FORMAT!r}")
        # a plain safetensors file: its tensors in the order they are stored
        return OrderedDict(sorted(tensors.items(), key=lambda item: header[item[0]]["data_offsets"][0]))
    if metadata.get("version") != str(VERSION):
        raise CheckpointError(f"cannot load checkpoint {name}: format version {metadata.get('version')!r} "
                              f"is not one this graphc reads ({VERSION})")
    try:
        structure = json.loads(metadata.get("structure") or "null")
        decoder = _Decoder(tensors)
        obj = decoder.decode(structure)
    except (ValueError, TypeError, KeyError, RecursionError) as ex:
        raise CheckpointError(f"cannot load checkpoint {name}: the structure does not match graphc's "
                              f"schema: {ex}") from None
    unused = sorted(set(tensors) - decoder.used)
    if unused:
        raise CheckpointError(f"cannot load checkpoint {name}: tensors {unused[:5]} are not part of its structure")
    return obj


class _Decoder:
    """Rebuilds an object from its JSON node, checking every node against the schema."""

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        self.tensors, self.used = tensors, set()

    def decode(self, node: Any) -> Any:
        kind = node.get("type") if isinstance(node, dict) else None
        if kind == "none" and set(node) == {"type"}:
            return None
        if kind in _SCALARS and set(node) == {"type", "value"}:
            return _scalar(kind, node["value"])
        if kind == "tensor" and set(node) == {"type", "key"}:
            if node["key"] not in self.tensors:
                raise KeyError(f"tensor {node['key']!r} is not in the file")
            self.used.add(node["key"])
            return self.tensors[node["key"]]
        if kind in _CONTAINERS and set(node) == {"type", "items"} and isinstance(node["items"], list):
            return _CONTAINERS[kind](self.decode(item) for item in node["items"])
        if kind in _MAPPINGS and set(node) == {"type", "items"} and isinstance(node["items"], list):
            if not all(isinstance(item, list) and len(item) == 2 for item in node["items"]):
                raise ValueError(f"the items of a {kind} must be [key, value] pairs")
            return _MAPPINGS[kind]((self.decode_key(k), self.decode(v)) for k, v in node["items"])
        raise ValueError(f"unexpected node {json.dumps(node)[:200]}")

    def decode_key(self, node: Any) -> Any:
        key = self.decode(node)
        if isinstance(key, Tensor):
            raise ValueError("a dict key cannot be a tensor")
        hash(key)  # a tuple key holding a list is rejected here
        return key


def _scalar(kind: str, value: Any) -> Any:
    if kind == "float" and isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    expected = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}[kind]
    if not isinstance(value, expected) or (kind in ("int", "float") and isinstance(value, bool)):
        raise ValueError(f"a {kind} node holds {value!r}")
    return _SCALARS[kind](value)


def _name_of(f: FileLike) -> str:
    if hasattr(f, "read"):
        return repr(getattr(f, "name", None) or f"<{type(f).__name__}>")
    return repr(os.fspath(f))


def _read(f: FileLike, name: str) -> bytes:
    """The file's bytes; only a regular file is read (a folder or a FIFO is refused, unopened)."""
    if hasattr(f, "read"):
        data = f.read()
        if not isinstance(data, (bytes, bytearray)):
            raise CheckpointError(f"cannot load checkpoint {name}: the file object is not opened in binary mode")
        return bytes(data)
    fd = os.open(os.fspath(f), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointError(f"cannot load checkpoint {name}: it is not a regular file")
    with io.FileIO(fd, "rb") as file:
        return file.read()


def _header(data: bytes, name: str) -> dict[str, Any]:
    """The JSON header of a safetensors file, after checking its length against the file."""
    if len(data) < 8:
        raise CheckpointError(f"cannot load checkpoint {name}: the file has {len(data)} bytes, too few for a "
                              "safetensors header (is it a checkpoint graphc.save wrote?)")
    length = int.from_bytes(data[:8], "little")
    if length > _HEADER_LIMIT:
        raise CheckpointError(f"cannot load checkpoint {name}: its header claims {length} bytes, more than "
                              f"the {_HEADER_LIMIT} graphc reads (a pickle or some other file?)")
    if 8 + length > len(data):
        raise CheckpointError(f"cannot load checkpoint {name}: its header claims {length} bytes but the file "
                              f"has only {len(data) - 8} after the length (truncated?)")
    try:
        header = json.loads(data[8:8 + length])
    except (ValueError, RecursionError) as ex:
        raise CheckpointError(f"cannot load checkpoint {name}: its header is not JSON ({ex})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"cannot load checkpoint {name}: its header is not a JSON object")
    return header


def _metadata(header: dict[str, Any], name: str) -> dict[str, str]:
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"cannot load checkpoint {name}: its __metadata__ is not a map of strings")
    return metadata

