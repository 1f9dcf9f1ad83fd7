"""On-disk cache of compiled object code, so a graph compiled once loads in milliseconds.

An entry is keyed by everything that decides the machine code: the IR text graphc emitted,
graphc's version and the cache format, llvmlite's version, the target triple, CPU name and
features, and the optimisation settings. Entries carry a digest of their bytes and are checked
before LLVM sees them (a truncated or damaged file is recompiled, never loaded); they are
written to a temporary file and renamed, so readers never see half an entry.
GRAPHC_CACHE_DIR picks the folder (default: $XDG_CACHE_HOME/graphc or ~/.cache/graphc);
GRAPHC_CACHE=0 switches the cache off.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from graphc.debug import log

from .jit import NativeModule, load_object, machine_description, object_code

FORMAT = b"graphc-object-1\n"
_DIGEST = 32


def cache_dir() -> Path | None:
    if os.environ.get("GRAPHC_CACHE", "1") == "0":
        return None
    if os.environ.get("GRAPHC_CACHE_DIR"):
        return Path(os.environ["GRAPHC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc"


def cache_key(ir_text: str) -> str:
    from graphc import __version__
    parts = (FORMAT.decode(), __version__, machine_description(), ir_text)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _read(path: Path) -> bytes | None:
    """The object bytes of a whole, undamaged entry, else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header, digest, obj = data[:len(FORMAT)], data[len(FORMAT):len(FORMAT) + _DIGEST], data[len(FORMAT) + _DIGEST:]
    if header != FORMAT or hashlib.sha256(obj).digest() != digest or not obj:
        return None
    return obj


def _write(path: Path, obj: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(FORMAT + hashlib.sha256(obj).digest() + obj)
        os.replace(temporary, path)
    except OSError as error:  # a read-only or full disk costs speed, not correctness
        log(1, f"could not write the compile cache at {path}: {error}")


def compile_cached(ir_text: str) -> NativeModule:
    """Native code for `ir_text`, from the cache when an entry exists, else compiled and stored."""
    folder = cache_dir()
    if folder is None:
        return load_object(object_code(ir_text), ir_text)
    path = folder / f"{cache_key(ir_text)}.o"
    obj = _read(path)
    if obj is not None:
        log(1, f"compile cache hit {path.name[:16]}")
        return load_object(obj, ir_text)
    obj = object_code(ir_text)
    _write(path, obj)
    return load_object(obj, ir_text)
