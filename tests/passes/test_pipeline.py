"""The pipeline: every pass keeps results on the sample program, the whole pipeline makes it small,
and `optimize` verifies and reports after each pass in order."""
import numpy as np
import pytest

from graphc.ir import interpret, verify
from graphc.passes import KERNEL_PIPELINE, PASSES, PIPELINE, optimize
from pass_graphs import rng, sample_program


@pytest.mark.parametrize("pass_", PIPELINE + KERNEL_PIPELINE, ids=lambda p: p.__name__)
def test_pass_keeps_results(pass_):
    program = sample_program()
    x = rng.standard_normal((3, 4)).astype(np.float32)
    before = interpret(program.graph, [x])
    after_graph = verify(pass_(program.graph))
    np.testing.assert_allclose(interpret(after_graph, [x])[0], before[0], rtol=1e-6)


def test_pipeline_result_is_small_and_equal():
    program = sample_program()
    x = rng.standard_normal((3, 4)).astype(np.float32)
    optimized = optimize(program.graph)
    np.testing.assert_allclose(interpret(optimized, [x])[0], interpret(program.graph, [x])[0], rtol=1e-6)
    ops = [n.op for n in optimized.nodes]
    assert ops.count("matmul") == 1 and "exp" not in ops and "permute" not in ops
    assert len([n for n in optimized.nodes if n.op == "constant"]) >= 1  # w.t() of a captured tensor folded


def test_optimize_reports_each_pass_in_order_with_a_verified_graph():
    seen = []
    optimize(sample_program().graph, after_each=lambda name, graph, seconds: seen.append((name, verify(graph))))
    assert [name for name, _ in seen] == [p.__name__ for p in PIPELINE]
    assert set(PASSES) == {p.__name__ for p in PIPELINE + KERNEL_PIPELINE}
