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


# maps split their outermost loop across threads once each part moves MIN_MAP_BYTES_PER_THREAD:
# a 1-d map (one collapsed loop), a broadcast over rows, an odd outer size (a shorter last range)
@pytest.mark.parametrize("shapes", [[(401408,), (401408,)], [(513, 300), (300,)], [(7, 3, 40000), (7, 1, 40000)]],
                         ids=str)
@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_threaded_maps_match_numpy(monkeypatch, shapes, threads):
    import graphc.config
    monkeypatch.setattr(graphc.config, "usable_cpus", lambda: 4)
    monkeypatch.setenv("GRAPHC_NUM_THREADS", threads)
    rng = np.random.default_rng(8)
    a, b = (rng.uniform(-1, 1, s).astype(np.float32) for s in shapes)
    native, expected = run_op("sub", [a, b])
    np.testing.assert_array_equal(native, expected)


def test_large_maps_start_threads_and_small_ones_do_not(monkeypatch):
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "2")
    from graphc.ir import GraphBuilder
    from graphc.lower.elementwise import MIN_MAP_BYTES_PER_THREAD

    def add_ir(n):
        b = GraphBuilder()
        x, y = (b.input(name, "user", (n,), "float32") for name in "xy")
        return lower(b.finish([b.add("add", [x, y], {}, (n,), "float32")])).ir_text

    large = MIN_MAP_BYTES_PER_THREAD // 4  # three arrays of it: two parts' worth
    assert "graphc_parallel" in add_ir(large)
    assert "graphc_parallel" not in add_ir(large // 4)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_split_in_place_updates_train_as_eagerly(monkeypatch, momentum):
    """SGD's update of a 512 x 512 weight (with momentum: a map group of two outputs) runs on two
    threads, in place over the parameter and its momentum buffer."""
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "2")
    import graphc
    import graphc.nn as nn
    graphc.manual_seed(1)
    models = [nn.Linear(512, 512), nn.Linear(512, 512)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [graphc.optim.SGD(m.parameters(), lr=0.1, momentum=momentum) for m in models]
    step = graphc.compile_train_step(models[0], nn.MSELoss(), opts[0])
    x, y = graphc.randn(16, 512), graphc.randn(16, 512)
    for _ in range(3):
        step(x, y)
        opts[1].zero_grad()
        nn.MSELoss()(models[1](x), y).backward()
        opts[1].step()
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
