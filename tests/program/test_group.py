"""group_kernels: multi-output map kernels, golden text, no cycles, results kept."""
import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, note, settings, strategies as st

from graphc.ir import GraphBuilder, interpret
from graphc.program import build_program, group_kernels, kernel_program, planned, verify_program
from harness import Native
from test_plan import check_plan


def momentum_graph():
    """SGD with momentum for one parameter, unfused: buf = mu * buf + g; w = w - lr * buf."""
    g = GraphBuilder()
    w = g.input("w", "param", (4,), "float32")
    buf = g.input("w:momentum_buffer", "state", (4,), "float32")
    grad = g.input("grad", "data", (4,), "float32")
    mu = g.input("momentum", "hyper", (), "float32")
    lr = g.input("lr", "hyper", (), "float32")
    scaled = g.add("mul", (buf, mu), {}, (4,), "float32", module_path="w", module_type="SGD")
    new_buf = g.add("add", (scaled, grad), {}, (4,), "float32", module_path="w", module_type="SGD")
    step = g.add("mul", (new_buf, lr), {}, (4,), "float32", module_path="w", module_type="SGD")
    new_w = g.add("sub", (w, step), {}, (4,), "float32", module_path="w", module_type="SGD")
    total = g.add("sum", (grad,), {"dims": (0,), "keepdim": False}, (), "float32")
    return g.finish([total], ["total"], [(new_buf, buf), (new_w, w)])


def test_an_sgd_momentum_update_is_one_kernel_writing_the_buffer_and_the_parameter():
    program = group_kernels(kernel_program(momentum_graph()))
    assert str(program).split("kernels: ")[1] == "\n".join([
        "2, in schedule order",
        "    0 k8_mapx4_w  map  nodes %5 %6 %7 %8  writes %6 %8  reads %1 %3 %2 %4 %0  [w]",
        "    1 k9_sum  reduce  nodes %9  writes %9  reads %2  [<root>]",
    ])
    plan = planned(program)
    assert plan.locations[6] == plan.locations[1] and plan.locations[8] == plan.locations[0]  # in place
    assert 5 not in plan.locations and 7 not in plan.locations  # in registers only
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(n.shape).astype(np.float32) for n in plan.graph.inputs]
    expected = [a.copy() for a in inputs]
    (total,) = interpret(plan.graph, expected)
    (got,) = Native(plan)(*inputs)
    np.testing.assert_allclose(got, total, rtol=1e-6)
    for a, b in zip(inputs[:2], expected[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_kernel_never_joins_a_group_another_kernel_it_reads_depends_on():
    g = GraphBuilder()
    x = g.input("x", "data", (4,), "float32")
    e = g.add("exp", (x,), {}, (4,), "float32")
    total = g.add("sum", (e,), {"dims": (0,), "keepdim": True}, (1,), "float32")
    shifted = g.add("sub", (x, total), {}, (4,), "float32")  # shares x with exp, but reads the sum of exp
    program = group_kernels(kernel_program(g.finish([shifted])))
    assert [k.nodes for k in program.kernels] == [(e,), (total,), (shifted,)]


def test_a_kernel_never_joins_a_group_whose_value_it_reads_through_an_alias():
    g = GraphBuilder()
    x = g.input("x", "data", (4,), "float32")
    e = g.add("exp", (x,), {}, (4,), "float32")
    seen = g.add("detach", (e,), {}, (4,), "float32")
    out = g.add("add", (x, seen), {}, (4,), "float32")
    program = group_kernels(kernel_program(g.finish([out])))
    assert [k.nodes for k in program.kernels] == [(e,), (out,)]


def test_the_adam_step_of_an_mlp_has_one_update_kernel_per_parameter():
    import graphc
    import graphc.nn as nn
    from graphc.stages import Driver
    from graphc.train_step import TrainStep

    seen = []
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    step = TrainStep(model, nn.CrossEntropyLoss(), graphc.optim.Adam(model.parameters()))
    step._build((graphc.randn(5, 6), graphc.tensor(np.arange(5) % 3)), Driver(seen.append))
    program = [s.value for s in seen if s.name == "planned"][-1]
    for name, param in model.named_parameters():
        writing = [k for k in program.kernels if set(k.outputs) & {v for v, _ in program.graph.updates
                                                                    if program.graph.nodes[_].attr("name").startswith(name)}]
        assert len(writing) == 1 and writing[0].template == "map", (name, [k.name for k in writing])
        assert len(writing[0].outputs) == 3  # the parameter and both moments, in place
        assert name in writing[0].module_paths


# -- random graphs -----------------------------------------------------------------------------

@st.composite
def map_graphs(draw):
    """Elementwise DAGs over a matrix and its column sums, broadcast back, with aliases between
    them and state inputs updated elementwise: many groups to join and many cycles to avoid."""
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    g = GraphBuilder()
    full = [g.input("x", "data", (rows, cols), "float64")]
    states = [g.input(f"s{k}", "state", (rows, cols), "float64") for k in range(draw(st.integers(0, 2)))]
    full += states
    row = [g.input("v", "data", (1, cols), "float64")]
    pick = lambda pool: pool[draw(st.integers(0, len(pool) - 1))]  # noqa: E731
    updates, pending = [], list(states)
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            full.append(g.add(draw(st.sampled_from(["tanh", "neg", "relu", "exp"])), (pick(full),), {},
                              (rows, cols), "float64"))
        elif kind == 1:
            full.append(g.add(draw(st.sampled_from(["add", "mul", "sub", "maximum"])),
                              (pick(full), pick(full + row)), {}, (rows, cols), "float64"))
        elif kind == 2:
            row.append(g.add("sum", (pick(full),), {"dims": (0,), "keepdim": True}, (1, cols), "float64"))
        elif kind == 3:
            full.append(g.add("detach", (pick(full),), {}, (rows, cols), "float64"))
        elif kind == 4 and pending:
            target = pending.pop(0)
            node = g.add("add", (target, pick(full)), {}, (rows, cols), "float64")
            updates.append((node, target))
            full.append(node)
        else:
            row.append(g.add("mul", (pick(row), pick(row)), {}, (1, cols), "float64"))
    outputs = draw(st.lists(st.sampled_from(full + row), min_size=1, max_size=3))
    return g.finish(outputs, updates=updates)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(map_graphs())
def test_grouped_random_programs_keep_their_results_and_a_sound_plan(graph):
    program = planned(build_program(graph))
    note(str(program))
    verify_program(program)
    check_plan(program)
    rng = np.random.default_rng(len(graph))
    inputs = [rng.standard_normal(n.shape) for n in graph.inputs]
    expected_inputs = [a.copy() for a in inputs]
    interpret(graph, expected_inputs)
    expected = interpret(dataclasses.replace(graph, updates=()), [a.copy() for a in inputs])
    for got, want in zip(Native(program)(*inputs), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for got, want in zip(inputs, expected_inputs):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
