"""The native thread pool: parallel kernels are correct under concurrency, fork and exit."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from graphc.ir import GraphBuilder
from graphc.stages import compile_graph
from runtime.link import linker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def big_matmul(m=96, k=512, n=256):
    b = GraphBuilder()
    x = b.input("x", "user", (m, k), "float32")
    w = b.input("w", "user", (n, k), "float32")
    out = b.add("matmul", [x, w], {"transpose_a": False, "transpose_b": True}, (m, n), "float32")
    relu = b.add("relu", [out], {}, (m, n), "float32")
    return b.finish([relu])


def operands(seed, m=96, k=512, n=256):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32)]


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "2")


def test_kernels_split_across_the_pool_are_correct_many_times(two_threads):
    compiled = compile_graph(big_matmul())
    assert "graphc_parallel" in compiled.artifact.ir_text
    x, w = operands(0)
    expected = np.maximum(x @ w.T, 0)
    for _ in range(200):
        np.testing.assert_allclose(compiled.run([x, w])[0], expected, rtol=1e-4, atol=1e-4)


def test_graphs_running_in_several_python_threads_share_the_pool(two_threads):
    graphs = [compile_graph(big_matmul()), compile_graph(big_matmul(64, 256, 512))]
    inputs = [operands(1), operands(2, 64, 256, 512)]
    expected = [np.maximum(x @ w.T, 0) for x, w in inputs]
    failures = []

    def work(i):
        for _ in range(100):
            got = graphs[i % 2].run(inputs[i % 2])[0]
            if not np.allclose(got, expected[i % 2], rtol=1e-4, atol=1e-4):
                failures.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and not failures


SCRIPT = """
import os, sys, numpy as np
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
os.environ["GRAPHC_NUM_THREADS"] = "2"
from test_pool import big_matmul, operands
from graphc.stages import compile_graph
compiled = compile_graph(big_matmul())
x, w = operands(3)
expected = np.maximum(x @ w.T, 0)
assert np.allclose(compiled.run([x, w])[0], expected, rtol=1e-4, atol=1e-4)
{extra}
print("done")
"""

FORK = """
pid = os.fork()
if pid == 0:
    ok = np.allclose(compiled.run([x, w])[0], expected, rtol=1e-4, atol=1e-4)
    again = compile_graph(big_matmul())
    ok = ok and np.allclose(again.run([x, w])[0], expected, rtol=1e-4, atol=1e-4)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
assert np.allclose(compiled.run([x, w])[0], expected, rtol=1e-4, atol=1e-4)
"""


@pytest.mark.parametrize("extra", ["", FORK], ids=["exit", "fork"])
def test_processes_exit_cleanly_and_forked_children_compute(extra):
    script = SCRIPT.format(root=ROOT, tests=os.path.dirname(os.path.abspath(__file__)), extra=extra)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


def test_without_workers_split_kernels_run_in_turn():
    script = SCRIPT.format(root=ROOT, tests=os.path.dirname(os.path.abspath(__file__)), extra=(
        "from runtime import pool\nassert pool._started == 0, pool._started"))
    script = script.replace('os.environ["GRAPHC_NUM_THREADS"] = "2"', (
        'os.environ["GRAPHC_NUM_THREADS"] = "1"\n'
        'import graphc.lower.linalg as linalg\nlinalg.num_threads = lambda: 2  # split anyway'))
    script = script.replace("compiled = compile_graph(big_matmul())",
                            "compiled = compile_graph(big_matmul())\nassert 'graphc_parallel' in compiled.artifact.ir_text")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


@pytest.mark.parametrize("machine", ["x86_64", "aarch64", "riscv64"])
def test_pool_module_is_valid_ir_for_each_machine(machine):
    import llvmlite.binding as llvm
    from runtime.pool import pool_ir
    text = pool_ir(machine)
    llvm.parse_assembly(text).verify()
    assert ("llvm.x86.sse2.pause" in text) == (machine == "x86_64")


def test_the_pool_loads_from_the_disk_cache_in_a_new_process(tmp_path):
    """Compiling the pool cost each new process about 25 ms (at O3: 50 ms) of a warm start."""
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / "cache"))
    start = "from runtime import pool\npool.ensure_started()\nassert pool._started >= 0\n"
    no_compiling = ("import runtime.cache\n"
                    "def refuse(*args): raise AssertionError('compiled although cached')\n"
                    "runtime.cache.compile_objects = refuse\n")
    for code in (start, no_compiling + start):
        subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_the_pool_joins_the_first_engine_of_a_process():
    """Through MCJIT, the first object code a process loads shares its engine with the pool (one
    engine's creation less of a warm start); later ones resolve the pool by its symbol."""
    script = SCRIPT.format(root=ROOT, tests=os.path.dirname(os.path.abspath(__file__)), extra=(
        "from runtime import pool\n"
        "assert pool._engine is first.native, 'the pool has an engine of its own'\n"
        "second = compile_graph(big_matmul())\n"
        "assert second.native is not pool._engine\n"
        "assert np.allclose(second.run([x, w])[0], expected, rtol=1e-4, atol=1e-4)\n"
        "assert pool._started == 1, pool._started"))
    script = script.replace("compiled = compile_graph(big_matmul())", "compiled = first = compile_graph(big_matmul())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT, GRAPHC_CACHE="0", GRAPHC_LINKER="none"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


@pytest.mark.skipif(linker() is None, reason="no linker: compiled code loads through MCJIT")
def test_as_shared_libraries_the_pool_is_loaded_first_and_kernels_resolve_it():
    """Linked code: the pool is a library of its own whose symbols are global, and each graph's
    library finds `graphc_parallel` in it when it is opened; no MCJIT engine is made."""
    script = SCRIPT.format(root=ROOT, tests=os.path.dirname(os.path.abspath(__file__)), extra=(
        "from runtime import pool\n"
        "assert pool._engine is not first.native and pool._engine.engine is None, pool._engine\n"
        "assert first.native.engine is None and len(first.native.libraries) == 1\n"
        "second = compile_graph(big_matmul())\n"
        "assert np.allclose(second.run([x, w])[0], expected, rtol=1e-4, atol=1e-4)\n"
        "assert pool._started == 1, pool._started"))
    script = script.replace("compiled = compile_graph(big_matmul())", "compiled = first = compile_graph(big_matmul())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT, GRAPHC_CACHE="0"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
