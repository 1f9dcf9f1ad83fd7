"""Compile one LLVM module on several cores: split it by function into partitions, optimise and
codegen each in a forked process, and load the objects together into one engine.

LLVM's O3 and code generation are single-threaded and took 0.9 s of the W1 train step's 1.1 s
cold compile on a 2-core VM; every kernel is a `noinline` function of its own, so little is lost
when each partition is compiled alone (LLVM's parallel LTO code generation splits modules the
same way). The module graphc emits and dumps stays one module; only its compilation is split.

A partition holds whole functions, balanced by size; a function called (or passed to the thread
pool) from another partition becomes a hidden external symbol named `<prefix>.<name>`, the prefix
being the entry point, which is unique among the objects one engine holds. Private constants and
declarations are copied into every partition (constants unused there are dropped by O3). A module
with a mutable global is never split.

Forking is safe here because the child only compiles: it touches no pool, no Python state it
shares, and leaves with os._exit. Should a child fail, or not answer in time (another thread held
LLVM's lock at the fork, say), the parent compiles that partition itself: a failure costs time,
never a wrong or missing object.
"""
from __future__ import annotations

import os
import re
import select
import time
from typing import Callable, Sequence

from .jit import object_code

_NAME = re.compile(r'@"([^"]+)"')
_LINKAGE = re.compile(r"^define (?:internal |private )")
_MUTABLE_GLOBAL = re.compile(r'^@"?[^ ]+"? = (?:[a-z_]+ )*global ', re.M)
# LLVM took about 2.5 µs a character of IR on this 2-core VM (the W1 train step's 186 KB: 480 ms
# whole, 230-270 ms in two partitions, 2026-12-02); a fork of a 400 MB process costs 4-6 ms, so
# splitting pays from a few tens of KB. W1 inference's 25 KB stay whole.
MIN_SPLIT_CHARS = 40_000
CHILD_PATIENCE = 3.0  # a child may take this many times the parent's own partition ...
MIN_PATIENCE_S = 2.0  # ... and at least this long


def split_module(ir_text: str, parts: int, prefix: str) -> list[str]:
    """`ir_text` as up to `parts` modules that together define each of its functions once."""
    head, functions = _top_level(ir_text)
    found = [_NAME.search(text.split("\n", 1)[0]) for text in functions]
    if parts < 2 or len(functions) < 2 or _MUTABLE_GLOBAL.search(head) or not all(found):
        return [ir_text]  # unquoted names (not graphc's IR) are not followed: such a module stays whole
    names = [match.group(1) for match in found]
    home, sizes = {}, [0] * parts
    for name, text in sorted(zip(names, functions), key=lambda item: -len(item[1])):
        part = sizes.index(min(sizes))  # the largest first, each to the emptiest partition
        home[name], sizes[part] = part, sizes[part] + len(text)
    defined = set(names)
    uses = {name: set(_NAME.findall(text)) & defined for name, text in zip(names, functions)}
    crossing = {used for name in names for used in uses[name] if home[used] != home[name]}
    # private functions called across partitions become hidden ones of a unique name; an
    # external one (the entry point) is already visible and keeps its name
    local = {name for name, text in zip(names, functions) if _LINKAGE.match(text)} & crossing

    def renamed(text: str) -> str:
        return _NAME.sub(lambda m: f'@"{prefix}.{m.group(1)}"' if m.group(1) in local else m.group(0), text)

    modules = []
    for part in range(parts):
        mine = [(name, text) for name, text in zip(names, functions) if home[name] == part]
        if not mine:
            continue
        wanted = {used for name, _ in mine for used in uses[name] if home[used] != part}
        declarations = [_declaration(renamed(text)) for name, text in zip(names, functions) if name in wanted]
        bodies = [_LINKAGE.sub("define hidden ", renamed(text)) if name in local else renamed(text)
                  for name, text in mine]
        modules.append(head + "".join(declarations) + "".join(bodies))
    return modules


def _top_level(ir_text: str) -> tuple[str, list[str]]:
    """Everything but the function definitions, and the definitions (`define` to its `}`)."""
    head, functions, current = [], [], None
    for line in ir_text.splitlines(keepends=True):
        if current is not None:
            current.append(line)
            if line.startswith("}"):
                functions.append("".join(current))
                current = None
        elif line.startswith("define"):
            current = [line]
        else:
            head.append(line)
    return "".join(head), functions


def _declaration(definition: str) -> str:
    """`declare` for a definition: its first line up to the end of its parameter list."""
    line = _LINKAGE.sub("define ", definition.split("\n", 1)[0]).replace("define ", "declare ", 1)
    start = line.index("(", line.index("@"))
    depth = 0
    for end in range(start, len(line)):
        depth += {"(": 1, ")": -1}.get(line[end], 0)
        if depth == 0:
            return line[:end + 1] + "\n"
    raise ValueError(f"no parameter list in {line!r}")


def compile_objects(ir_text: str, opt: int, prefix: str, threads: int) -> list[bytes]:
    """The object code of `ir_text` at level `opt` (jit.object_code): one object, or for a large
    module and `threads` > 1 one object per partition, compiled in parallel."""
    if threads < 2 or len(ir_text) < MIN_SPLIT_CHARS or not prefix:
        return [object_code(ir_text, opt)]
    return compile_parallel(split_module(ir_text, threads, prefix), lambda text: object_code(text, opt))


def compile_parallel(modules: Sequence[str], compile_one: Callable[[str], bytes]) -> list[bytes]:
    """`compile_one` of every module, the first in this process and each other in a forked child."""
    if len(modules) == 1 or not hasattr(os, "fork"):
        return [compile_one(text) for text in modules]
    children = [_fork(text, compile_one) for text in modules[1:]]
    start = time.perf_counter()
    objects = [compile_one(modules[0])]
    patience = max(MIN_PATIENCE_S, CHILD_PATIENCE * (time.perf_counter() - start))
    for text, child in zip(modules[1:], children):
        obj = _collect(child, start + patience) if child is not None else None
        objects.append(obj if obj else compile_one(text))
    return objects


def _fork(text: str, compile_one: Callable[[str], bytes]) -> tuple[int, int] | None:
    """(pid, read end of its pipe) of a child that writes `compile_one(text)` and exits."""
    try:
        read, write = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return None
    if pid == 0:  # the child: compile, write, leave without running any of the parent's exit handlers
        status = 1
        try:
            os.close(read)
            data, view = compile_one(text), None
            view = memoryview(data)
            while view:
                view = view[os.write(write, view):]
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    return pid, read


def _collect(child: tuple[int, int], deadline: float) -> bytes | None:
    """The child's object code, or None if it failed or the deadline passed (it is killed)."""
    pid, read = child
    chunks, ok = [], False
    try:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0 or not select.select([read], [], [], left)[0]:
                break
            chunk = os.read(read, 1 << 20)
            if not chunk:
                ok = True
                break
            chunks.append(chunk)
    finally:
        os.close(read)
    if not ok:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks) if ok and os.waitstatus_to_exitcode(status) == 0 else None
