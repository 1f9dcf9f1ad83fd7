"""schedule_kernels: checks first, else the dependence order kept."""
from graphc.ir import GraphBuilder
from graphc.program import kernel_program, planned, schedule_kernels
from graphc.program.plan import in_place_updates


def late_check_graph():
    """An update computed before an index check in node order: hoisting the check lets the
    update be written in place."""
    g = GraphBuilder()
    w = g.input("w", "param", (3,), "float64")
    index = g.input("index", "data", (2,), "int64")
    new_w = g.add("mul", (w, w), {}, (3,), "float64")
    checked = g.add("check_index", (index,), {"high": 3, "ignore": -100, "error": "IndexError",
                                               "message": "{value}"}, (2,), "int64")
    picked = g.add("one_hot", (checked,), {"num_classes": 3, "dtype": "float64"}, (2, 3), "float64")
    return g.finish([picked], updates=[(new_w, w)]), new_w, w


def test_checks_run_first_and_the_rest_keeps_its_order():
    graph, new_w, w = late_check_graph()
    before = kernel_program(graph)
    assert [k.name for k in before.kernels] == ["k2_mul", "k3_check_index", "k4_one_hot"]
    after = schedule_kernels(before)
    assert [k.name for k in after.kernels] == ["k3_check_index", "k2_mul", "k4_one_hot"]
    assert in_place_updates(before) == {} and in_place_updates(after) == {new_w: w}
    assert planned(after).locations[new_w] == planned(after).locations[w]


def test_a_program_already_in_order_is_returned_unchanged():
    graph, _, _ = late_check_graph()
    once = schedule_kernels(kernel_program(graph))
    assert schedule_kernels(once) is once
