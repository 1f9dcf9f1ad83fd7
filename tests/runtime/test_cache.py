"""The on-disk compile cache: hits load the same code; an entry that is not exactly the one asked
for (another graph's, damaged, hostile, not a regular file, in a folder others can write) is
recompiled, never loaded.

Faults that could crash or hang the process on a careless cache run in a fresh interpreter
(`isolated`), so they fail their test instead of the test run.
"""
import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from graphc import config
from graphc.cli import main
from graphc.ir import GraphBuilder
from runtime import cache
from graphc.stages import compile_graph
from runtime.jit import compile_ir, object_code

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

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
SIG = "abi=1 entry=add in=float32[64];float32[64] out=float32[64] workspace=0"


def run_add(native):
    import ctypes
    a, b, out = (np.arange(64, dtype=np.float32), np.ones(64, np.float32), np.zeros(64, np.float32))
    fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(native.address("add"))
    fn(a.ctypes.data, b.ctypes.data, out.ctypes.data)
    np.testing.assert_array_equal(out, a + 1)


def add_cached(signature=SIG):
    return cache.compile_cached(ADD, signature, "add")


def linear(batch):
    """x[batch,16] @ w[3,16].T: the same graph at another batch size has another ABI."""
    b = GraphBuilder()
    x = b.input("x", "user", (batch, 16), "float32")
    w = b.input("w", "user", (3, 16), "float32")
    return b.finish([b.add("matmul", [x, w], {"transpose_a": False, "transpose_b": True}, (batch, 3), "float32")])


def check_linear(batch):
    rng = np.random.default_rng()  # new values each call: stale memory cannot pass for a result
    x, w = rng.standard_normal((batch, 16)).astype(np.float32), rng.standard_normal((3, 16)).astype(np.float32)
    np.testing.assert_allclose(compile_graph(linear(batch)).run([x, w])[0], x @ w.T, rtol=1e-5, atol=1e-5)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    from runtime import pool
    pool.ensure_started()  # the thread pool is cached too: its entry stays out of the test's folder
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    monkeypatch.delenv("GRAPHC_CACHE_MAX_BYTES", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def compiles(monkeypatch):
    """The IR texts compiled afresh (not loaded from the cache) during the test."""
    calls = []
    compile_objects = cache.compile_objects
    monkeypatch.setattr(cache, "compile_objects", lambda ir_text, *a: calls.append(ir_text) or compile_objects(ir_text, *a))
    return calls


def entries(folder):
    """The object code entries (a build by the driver also keeps its record)."""
    return sorted(p for p in folder.iterdir() if p.suffix == ".o" and not is_record(p))


def is_record(path):
    """A build record (graphc/stages.py) rather than object code."""
    return b' record"}\n' in path.read_bytes()[:4096].split(b"\n", 2)[1] + b"\n"


def entry_path(folder, signature=SIG, ir_text=ADD):
    return folder / f"{cache.cache_key(ir_text, signature)}.o"


def new_entry(folder, make):
    """The one entry that `make()` adds to the folder (the thread pool, cached too, is started first)."""
    from runtime import pool
    pool.ensure_started()
    before = set(entries(folder)) if folder.exists() else set()
    make()
    (entry,) = set(entries(folder)) - before
    return entry


def isolated(code):
    """Run `code` in a fresh interpreter limited to 4 GiB and 60 s, with this module's names."""
    prelude = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
               f"sys.path.insert(0, {HERE!r})\nfrom test_cache import *\n")
    result = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stderr[-3000:]}"


def test_a_miss_writes_an_entry_and_a_hit_reuses_it(folder, compiles):
    run_add(add_cached())
    (entry,) = entries(folder)
    data, inode = entry.read_bytes(), entry.stat().st_ino
    os.utime(entry, (1000, 1000))
    native = add_cached()
    run_add(native)
    assert len(compiles) == 1 and entries(folder) == [entry]
    assert entry.read_bytes() == data and entry.stat().st_ino == inode
    assert entry.stat().st_mtime > 1000  # a hit counts as a use for eviction
    assert "add" in native.assembly()


def test_an_entry_names_its_format_full_key_signature_and_digest(folder):
    add_cached()
    lines = entry_path(folder).read_bytes().split(b"\n", 3)
    assert lines[0] == cache.FORMAT.encode()
    assert json.loads(lines[1]) == {"key": cache.key_text(ADD, SIG), "signature": SIG}
    assert lines[2] == b"sha256 " + hashlib.sha256(lines[3]).hexdigest().encode()
    (obj,) = cache.unpack_objects(lines[3])  # a small module: one object
    assert lines[3] == cache.pack_objects([obj])


def test_the_key_follows_the_ir_the_signature_and_the_machine(monkeypatch):
    assert cache.cache_key(ADD, SIG) != cache.cache_key(ADD.replace("64", "32"), SIG)
    assert cache.cache_key(ADD, SIG) != cache.cache_key(ADD, SIG.replace("64", "32"))
    before = cache.key_text(ADD, SIG)
    monkeypatch.setattr(cache, "machine_description", lambda opt=3: "another cpu")
    assert cache.key_text(ADD, SIG) != before and "another cpu" in cache.key_text(ADD, SIG)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage", "no object", "header only"])
def test_damaged_entries_are_recompiled_not_loaded(folder, damage):
    add_cached()
    entry = entry_path(folder)
    data = entry.read_bytes()
    header_end = data.index(b"\nsha256 ") + 1
    entry.write_bytes({"truncate": data[: len(data) // 2], "flip": data[:-10] + bytes(10), "empty": b"",
                       "garbage": os.urandom(len(data)), "no object": data[:header_end + 72],
                       "header only": data[:header_end]}[damage])
    run_add(add_cached())
    assert entry.read_bytes() == data  # rewritten whole


def test_a_smaller_batchs_entry_under_a_larger_batchs_key_is_recompiled(folder):
    small, large = new_entry(folder, lambda: check_linear(4)), new_entry(folder, lambda: check_linear(8))
    expected = large.read_bytes()
    large.write_bytes(small.read_bytes())
    check_linear(8)  # loading the batch-4 code left rows 4..7 unwritten
    assert large.read_bytes() == expected


@pytest.mark.parametrize("batch", [8, 2048])
def test_a_larger_batchs_entry_under_a_smaller_batchs_key_is_recompiled(folder, batch):
    # plant and load in one process, so every compile lowers the graph alike
    isolated(f"""
        folder = Path(os.environ["GRAPHC_CACHE_DIR"])
        small, large = new_entry(folder, lambda: check_linear(4)), new_entry(folder, lambda: check_linear({batch}))
        expected = small.read_bytes()
        small.write_bytes(large.read_bytes())
        check_linear(4)  # loading the planted code would write past the batch-4 buffers
        assert small.read_bytes() == expected
    """)


@pytest.mark.parametrize("fake", ["old format, valid digest", "header of another key"])
def test_random_object_bytes_are_never_loaded(folder, fake):
    add_cached()
    entry = entry_path(folder)
    expected, noise = entry.read_bytes(), os.urandom(4096)
    other = "abi=1 entry=add in=float32[32];float32[32] out=float32[32] workspace=0"
    entry.write_bytes(b"graphc-object-1\n" + hashlib.sha256(noise).digest() + noise if fake.startswith("old")
                      else cache.encode_entry(cache.key_text(ADD, other), other, noise))
    isolated("run_add(add_cached())")
    assert entry.read_bytes() == expected


def test_an_entry_without_the_entry_symbol_is_recompiled(folder, compiles):
    entry = entry_path(folder)
    folder.mkdir(mode=0o700)
    entry.write_bytes(cache.encode_entry(cache.key_text(ADD, SIG), SIG,
                                        cache.pack_objects([object_code(ADD.replace("@add", "@other"))])))
    run_add(add_cached())
    assert len(compiles) == 1
    run_add(add_cached())
    assert len(compiles) == 1  # the rewritten entry is a hit


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero", "symlink to a file"])
def test_an_entry_that_is_not_a_regular_file_is_replaced_not_followed(folder, tmp_path, kind):
    entry = entry_path(folder)
    folder.mkdir(mode=0o700)
    outside = tmp_path / "outside"
    outside.write_bytes(b"not yours to overwrite")
    if kind == "fifo":
        os.mkfifo(entry)
    else:
        entry.symlink_to("/dev/zero" if "zero" in kind else outside)
    isolated("run_add(add_cached())")  # opening a FIFO blocks; reading /dev/zero never ends
    assert stat.S_ISREG(entry.lstat().st_mode) and entry.read_bytes().startswith(cache.FORMAT.encode() + b"\n")
    assert outside.read_bytes() == b"not yours to overwrite"


def test_a_folder_in_the_entrys_place_still_compiles(folder, compiles):
    entry_path(folder).mkdir(parents=True)
    run_add(add_cached())
    run_add(add_cached())
    assert len(compiles) == 2


def test_an_oversized_entry_is_not_read(folder, compiles, monkeypatch):
    add_cached()
    monkeypatch.setattr(cache, "MAX_ENTRY_BYTES", entry_path(folder).stat().st_size - 1)
    run_add(add_cached())
    assert len(compiles) == 2


def test_the_folder_and_its_missing_parents_are_created_private(tmp_path, monkeypatch):
    leaf = tmp_path / "a" / "b" / "cache"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(leaf))
    old_umask = os.umask(0)
    try:
        run_add(add_cached())
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(leaf.stat().st_mode) == 0o700 and len(entries(leaf)) == 1


@pytest.mark.parametrize("unsafe", ["group-writable", "world-writable", "another owner"])
def test_a_folder_others_can_write_is_not_used(folder, compiles, monkeypatch, unsafe):
    folder.mkdir()
    # an entry someone else left for us: valid for this key, but it adds the first 32 floats only
    planted = cache.encode_entry(cache.key_text(ADD, SIG), SIG, cache.pack_objects([object_code(ADD.replace("64", "32"))]))
    entry_path(folder).write_bytes(planted)
    os.chmod(folder, {"group-writable": 0o770, "world-writable": 0o777, "another owner": 0o700}[unsafe])
    if unsafe == "another owner":
        uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    with pytest.warns(UserWarning, match="not using the compile cache"):
        run_add(add_cached())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per folder
        run_add(add_cached())
    assert len(compiles) == 2 and entry_path(folder).read_bytes() == planted


def test_the_size_bound_evicts_the_least_recently_used(folder, monkeypatch):
    signatures = [f"abi=1 entry=add variant={i}" for i in range(4)]  # same IR: entries of one size
    a, b, c = (new_entry(folder, lambda s=s: add_cached(s)) for s in signatures[:3])
    for age, entry in zip((300, 200, 100), (a, b, c)):
        os.utime(entry, (entry.stat().st_atime, entry.stat().st_mtime - age))
    add_cached(signatures[0])  # a hit: `a` is now the most recently used
    size = a.stat().st_size
    monkeypatch.setenv("GRAPHC_CACHE_MAX_BYTES", str(3 * size))
    d = new_entry(folder, lambda: add_cached(signatures[3]))
    assert set(entries(folder)) == {a, c, d}


@pytest.mark.parametrize("value", ["lots", "-1"])
def test_a_bad_size_bound_warns_and_uses_the_default(monkeypatch, value):
    config.reset_warnings()
    monkeypatch.setenv("GRAPHC_CACHE_MAX_BYTES", value)
    with pytest.warns(RuntimeWarning, match="GRAPHC_CACHE_MAX_BYTES"):
        assert cache.max_bytes() == cache.DEFAULT_MAX_BYTES


def test_cache_info_and_clear_count_only_graphc_entries(folder):
    add_cached()
    add_cached("another signature")
    (folder / f"{cache.TEMPORARY_PREFIX}leftover").write_bytes(b"half an entry")
    (folder / "notes.txt").write_text("mine")
    info = cache.cache_info()
    assert info == {"folder": str(folder), "state": "on", "entries": 2,
                    "bytes": sum(p.stat().st_size for p in entries(folder)), "max_bytes": cache.DEFAULT_MAX_BYTES}
    assert cache.cache_clear() == 2
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert cache.cache_info()["entries"] == 0 and cache.cache_clear() == 0


def test_switched_off_writes_nothing(folder, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    run_add(add_cached())
    assert not folder.exists()
    assert cache.cache_info()["state"].startswith("off")


def test_an_unwritable_folder_still_compiles(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(blocker / "cache"))
    run_add(add_cached())


def test_a_read_only_folder_still_compiles(folder, monkeypatch):
    folder.mkdir(mode=0o700)
    monkeypatch.setattr(cache.tempfile, "mkstemp", lambda **kw: (_ for _ in ()).throw(OSError(30, "read-only")))
    run_add(add_cached())
    assert entries(folder) == []


def test_cached_code_equals_fresh_code(folder):
    run_add(compile_ir(ADD))
    run_add(add_cached())
    run_add(add_cached())


def test_graphc_cache_info_and_clear_on_the_command_line(folder, capsys):
    add_cached()
    assert main(["cache", "info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"folder: {folder}" in lines and "entries: 1" in lines and "state: on" in lines
    assert any(line.startswith("bytes: ") for line in lines)
    assert f"max_bytes: {cache.DEFAULT_MAX_BYTES}" in lines
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == f"removed 1 entry from {folder}"
    assert entries(folder) == []
