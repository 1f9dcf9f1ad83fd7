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
