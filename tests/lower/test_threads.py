"""Kernels split across threads give the results of one thread."""
import numpy as np
import pytest

from graphc.lower import lower
from graphc.lower.threads import MIN_FLOPS_PER_THREAD, split
from harness import run_op
from test_linalg import operands


@pytest.mark.parametrize("total, parts, multiple", [(128, 2, 4), (7, 2, 1), (13, 3, 6), (1, 4, 1), (5, 8, 4)])
def test_split_covers_the_range_once(total, parts, multiple):
    ranges = split(total, parts, multiple)
    assert [start for start, _ in ranges] == [sum(c for _, c in ranges[:i]) for i in range(len(ranges))]
    assert sum(count for _, count in ranges) == total
    assert len(ranges) <= parts and all(count % multiple == 0 for _, count in ranges[:-1])


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("m", [67, 128, 3, 1])
@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_threaded_matmul_matches_numpy(monkeypatch, ta, tb, m, threads):
    import graphc.config
    monkeypatch.setattr(graphc.config, "usable_cpus", lambda: 4)  # three-way splits on a 2-CPU machine too
    monkeypatch.setenv("GRAPHC_NUM_THREADS", threads)
    k, n = 2048, 512  # m = 67 makes two parts of enough work, m = 128 four
    assert 2 * 67 * k * n >= 2 * MIN_FLOPS_PER_THREAD
    a, b = operands((m, k), (k, n), ta, tb, "float32")
    native, expected = run_op("matmul", [a, b], transpose_a=ta, transpose_b=tb)
    np.testing.assert_allclose(native, expected, rtol=1e-4, atol=1e-4)


def test_large_matmuls_start_threads_and_small_ones_do_not(monkeypatch):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "2")
    from graphc.ir import GraphBuilder

    def matmul_ir(m, k=2048, n=512):
        b = GraphBuilder()
        x = b.input("x", "user", (m, k), "float32")
        w = b.input("w", "user", (n, k), "float32")
        out = b.add("matmul", [x, w], {"transpose_a": False, "transpose_b": True}, (m, n), "float32")
        return lower(b.finish([out])).ir_text

    assert "graphc_parallel" in matmul_ir(128) and "_parts" in matmul_ir(128)
    assert "graphc_parallel" in matmul_ir(1)  # one row: its columns split
    assert "graphc_parallel" not in matmul_ir(4, 64, 64)
    assert "graphc_parallel" not in matmul_ir(1, 64, 64)


@pytest.mark.parametrize("threads, once", [("2", True), ("3", False)])
def test_equal_parts_are_emitted_once(monkeypatch, threads, once):
    """512 columns split in two equal blocks: one body offset by the part's index; in three
    unequal blocks: a body per part behind a switch."""
    import re

    import graphc.config
    from graphc.ir import GraphBuilder
    monkeypatch.setattr(graphc.config, "usable_cpus", lambda: 4)
    monkeypatch.setenv("GRAPHC_NUM_THREADS", threads)
    b = GraphBuilder()
    x = b.input("x", "user", (128, 2048), "float32")
    w = b.input("w", "user", (512, 2048), "float32")
    out = b.add("matmul", [x, w], {"transpose_a": False, "transpose_b": True}, (128, 512), "float32")
    text = lower(b.finish([out])).ir_text
    parts = re.search(r'define internal void @"\w+_parts"\(.*?\n}\n', text, re.S).group(0)
    assert ("switch" not in parts) == once
