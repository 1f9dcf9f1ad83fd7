"""fuse_reductions: a reduction evaluates its elementwise producer in the same pass."""
import numpy as np
import pytest

from graphc.ir import GraphBuilder, interpret
from graphc.program import build_program, fuse_reductions, kernel_program, planned
from harness import Native
from test_plan import check_plan


def squared_error(dims, keep_difference: bool):
    """sum((x - y) ** 2) over `dims`, the difference also an output when `keep_difference`."""
    g = GraphBuilder()
    x = g.input("x", "data", (3, 5), "float64")
    y = g.input("y", "data", (1, 5), "float64")
    diff = g.add("sub", (x, y), {}, (3, 5), "float64", module_path="loss", module_type="MSELoss")
    square = g.add("mul", (diff, diff), {}, (3, 5), "float64", module_path="loss", module_type="MSELoss")
    shape = tuple(n for d, n in enumerate((3, 5)) if d not in dims)
    total = g.add("sum", (square,), {"dims": dims, "keepdim": False}, shape, "float64", module_path="loss",
                  module_type="MSELoss")
    return g.finish([total, diff] if keep_difference else [total])


def test_a_sum_of_an_elementwise_kernel_is_one_kernel_that_never_stores_its_operand():
    program = fuse_reductions(kernel_program(squared_error((0, 1), keep_difference=False)))
    assert [str(k) for k in program.kernels] == [
        "k2_sub_loss  map  nodes %2  writes %2  reads %0 %1  [loss]",
        "k4_sum_of_mul_loss  reduce  nodes %3 %4  writes %4  reads %2  [loss]",
    ]
    assert 3 not in planned(program).locations  # the square stays in registers


@pytest.mark.parametrize("dims", [(0,), (1,), (0, 1)], ids=["kept-inner", "reduced-inner", "all"])
@pytest.mark.parametrize("keep", [False, True], ids=["alone", "also-read"])
def test_fused_reductions_keep_their_results(dims, keep):
    graph = squared_error(dims, keep)
    program = planned(build_program(graph))
    assert any(k.template == "reduce" and len(k.nodes) == 2 for k in program.kernels), str(program)
    check_plan(program)
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal(n.shape) for n in graph.inputs]
    for got, want in zip(Native(program)(*inputs), interpret(graph, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_producer_read_elsewhere_is_written_in_the_reducing_pass():
    g = GraphBuilder()
    x = g.input("x", "data", (4, 6), "float32")
    r = g.add("relu", (x,), {}, (4, 6), "float32")
    column = g.add("sum", (r,), {"dims": (0,), "keepdim": False}, (6,), "float32")
    doubled = g.add("add", (r, r), {}, (4, 6), "float32")
    program = fuse_reductions(kernel_program(g.finish([column, doubled])))
    assert [k.nodes for k in program.kernels] == [(r, column), (doubled,)]
    assert program.kernels[0].outputs == (r, column)


def picked_log_probabilities(dim: int, logp_read_later: bool):
    """Cross-entropy's core: sum over classes of where(w != 0, log_softmax(x), 0) * w."""
    g = GraphBuilder()
    x = g.input("x", "data", (4, 6), "float64")
    w = g.input("w", "data", (4, 6), "float64")
    logp = g.add("log_softmax", (x,), {"dim": dim}, (4, 6), "float64", module_path="loss", module_type="CrossEntropyLoss")
    zero = g.constant(np.zeros((), np.float64))
    nonzero = g.add("gt", (w, zero), {}, (4, 6), "bool")
    kept = g.add("where", (nonzero, logp, zero), {}, (4, 6), "float64")
    picked = g.add("mul", (kept, w), {}, (4, 6), "float64", module_path="loss", module_type="CrossEntropyLoss")
    total = g.add("sum", (picked,), {"dims": (1,), "keepdim": False}, (4,), "float64", module_path="loss",
                  module_type="CrossEntropyLoss")
    return g.finish([total, logp] if logp_read_later else [total])


@pytest.mark.parametrize("logp_read_later", [False, True], ids=["loss-only", "log-probabilities-too"])
def test_cross_entropy_is_one_row_kernel_over_the_logits(logp_read_later):
    from graphc.passes import KERNEL_PIPELINE, optimize
    graph = optimize(picked_log_probabilities(1, logp_read_later), KERNEL_PIPELINE)
    program = planned(build_program(graph))
    rows = [k for k in program.kernels if k.template == "row"]
    assert len(rows) == 1 and len(rows[0].nodes) == 3 and rows[0].name.startswith(f"k{rows[0].nodes[-1]}_sum_of_log_softmax")
    assert (rows[0].nodes[0] in rows[0].outputs) == logp_read_later
    check_plan(program)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 6)) * 5
    w = (rng.integers(0, 2, (4, 6)) * rng.random((4, 6))).astype(np.float64)
    for got, want in zip(Native(program)(x, w), interpret(graph, [x, w])):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_log_softmax_along_another_dim_stays_its_own_kernel():
    program = build_program(picked_log_probabilities(0, False))
    assert all(k.template != "row" or len(k.nodes) == 1 for k in program.kernels)
