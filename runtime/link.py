"""Shared libraries: compiled objects linked by the system linker and loaded with dlopen.

A warm start spent about 2 ms of its 6 in LLVM's MCJIT (a target machine, an empty module, the
engine, relocating and finalising the objects); loading a linked library costs about 0.25 ms and
needs no LLVM at all. So where a linker exists (GRAPHC_LINKER, default `ld` on PATH) and the
platform can load a library from memory (Linux's memfd), the objects of one compiled graph are
linked into one shared library when they are compiled, the cache keeps that library, and every
load is a dlopen. Elsewhere, or with GRAPHC_LINKER=none, objects load through MCJIT as before.

Objects for a library are position-independent and use the small code model, MCJIT's use the
large one (its sections may lie far apart): the two kinds are compiled differently, so the
machine description that keys the cache names the kind (runtime/jit.py).

The bytes loaded are the ones the cache verified (runtime/cache.py): they are written to an
anonymous memory file and opened through /proc/self/fd, never through a path another process
could replace between the check and the load. The memory file stays open while the library is
loaded, which keeps its path unique: glibc's dlopen returns an already loaded library whose path
is the same string.
"""
from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import weakref
from typing import Sequence

import _ctypes

from graphc.config import env_str

LINK_TIMEOUT_S = 120
_ELF_TYPE = slice(16, 18)  # e_type in an ELF header: 1 a relocatable object, 3 a shared object
_SHARED = (3).to_bytes(2, "little")


class LinkError(RuntimeError):
    """The linker failed: what it said is in the message."""


@functools.cache
def linker() -> str | None:
    """The linker's path, or None when shared libraries are not used: GRAPHC_LINKER=none, no
    linker found, or a platform without memory files (not Linux)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "memfd_create"):
        return None
    choice = env_str("GRAPHC_LINKER", "ld")
    if choice.lower() == "none":
        return None
    return shutil.which(choice)


def is_shared_library(code: bytes) -> bool:
    return code[:4] == b"\x7fELF" and code[_ELF_TYPE] == _SHARED


def link_shared(objects: Sequence[bytes]) -> bytes:
    """One shared library of `objects`; undefined symbols (the thread pool's entry, memset, libm)
    are resolved when it is loaded, from what the process already has."""
    path = linker()
    if path is None:
        raise LinkError("no linker is configured (GRAPHC_LINKER)")
    with tempfile.TemporaryDirectory(prefix="graphc-link-") as folder:
        inputs = []
        for i, obj in enumerate(objects):
            inputs.append(os.path.join(folder, f"part{i}.o"))
            with open(inputs[-1], "wb") as f:
                f.write(obj)
        output = os.path.join(folder, "code.so")
        command = [path, "-shared", "--build-id=none", "-z", "noexecstack", "-o", output, *inputs]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=LINK_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise LinkError(f"{path} could not link: {error}") from None
        if done.returncode:
            raise LinkError(f"{path} failed ({done.returncode}): {done.stderr.strip()[:2000]}")
        with open(output, "rb") as f:
            return f.read()


class SharedLibrary:
    """A loaded library and the memory file behind it; both are released when this is dropped."""

    def __init__(self, code: bytes, global_symbols: bool = False):
        fd = os.memfd_create("graphc-code", os.MFD_CLOEXEC)
        try:
            view = memoryview(code)
            while view:
                view = view[os.write(fd, view):]
            mode = ctypes.RTLD_GLOBAL if global_symbols else ctypes.RTLD_LOCAL
            self._library = ctypes.CDLL(f"/proc/self/fd/{fd}", mode=mode)
        except BaseException:
            os.close(fd)
            raise
        self._release = weakref.finalize(self, _unload, self._library._handle, fd, global_symbols)

    def address(self, name: str) -> int:
        """The address of an exported symbol, or 0 when the library has none of that name."""
        try:
            return ctypes.cast(getattr(self._library, name), ctypes.c_void_p).value or 0
        except AttributeError:
            return 0


def _unload(handle: int, fd: int, keep: bool) -> None:
    """dlclose, then close the memory file. A library others link against (the pool) stays."""
    if not keep:
        try:
            _ctypes.dlclose(handle)
        except OSError:
            pass
    os.close(fd)
