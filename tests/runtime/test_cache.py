"""The on-disk compile cache: hits load the same code, damaged entries are recompiled."""
import os

import numpy as np
import pytest

from runtime import cache
from runtime.jit import compile_ir

ADD = """
define void @add(ptr noalias %a, ptr noalias %b, ptr noalias %out) {
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%next, %loop]
  %pa = getelementptr float, ptr %a, i64 %i
  %pb = getelementptr float, ptr %b, i64 %i
  %po = getelementptr float, ptr %out, i64 %i
  %x = load float, ptr %pa
  %y = load float, ptr %pb
  %s = fadd float %x, %y
  store float %s, ptr %po
  %next = add i64 %i, 1
  %done = icmp eq i64 %next, 64
  br i1 %done, label %exit, label %loop
exit:
  ret void
}
"""


def run_add(native):
    import ctypes
    a, b, out = (np.arange(64, dtype=np.float32), np.ones(64, np.float32), np.zeros(64, np.float32))
    fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(native.address("add"))
    fn(a.ctypes.data, b.ctypes.data, out.ctypes.data)
    np.testing.assert_array_equal(out, a + 1)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    return tmp_path


def entries(folder):
    return sorted(p for p in folder.iterdir() if p.suffix == ".o")


def test_a_miss_writes_an_entry_and_a_hit_reuses_it(folder):
    run_add(cache.compile_cached(ADD))
    (entry,) = entries(folder)
    stamp = entry.stat().st_mtime_ns
    native = cache.compile_cached(ADD)
    run_add(native)
    assert entries(folder) == [entry] and entry.stat().st_mtime_ns == stamp
    assert "add" in native.assembly()


def test_the_key_follows_the_ir_and_the_machine(folder, monkeypatch):
    assert cache.cache_key(ADD) != cache.cache_key(ADD.replace("64", "32"))
    before = cache.cache_key(ADD)
    monkeypatch.setattr(cache, "machine_description", lambda: "another cpu")
    assert cache.cache_key(ADD) != before


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_entries_are_recompiled_not_loaded(folder, damage):
    cache.compile_cached(ADD)
    (entry,) = entries(folder)
    data = entry.read_bytes()
    entry.write_bytes({"truncate": data[: len(data) // 2], "flip": data[:-10] + bytes(10), "empty": b"",
                       "garbage": os.urandom(len(data))}[damage])
    run_add(cache.compile_cached(ADD))
    assert entry.read_bytes() == data  # rewritten whole


def test_switched_off_writes_nothing(folder, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    run_add(cache.compile_cached(ADD))
    assert entries(folder) == []


def test_an_unwritable_folder_still_compiles(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(blocker / "cache"))
    run_add(cache.compile_cached(ADD))


def test_cached_code_equals_fresh_code(folder):
    run_add(compile_ir(ADD))
    run_add(cache.compile_cached(ADD))
    run_add(cache.compile_cached(ADD))
