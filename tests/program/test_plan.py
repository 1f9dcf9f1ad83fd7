"""Buffer planning: the printed plan, results kept, and a checker that simulates the entry's memory."""
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings, strategies as st

import graphc
from graphc.ir import GraphBuilder, interpret
from graphc.lower import lower
from graphc.lower.kernel import itemsize
from graphc.ops import OPS, ShapeError, TensorType
from graphc.passes import KERNEL_PIPELINE, optimize
from graphc.program import ALIASES, Location, build_program, format_plan, kernel_program, planned, workspace_bytes
from graphc.program.plan import ALIGNMENT, in_place_updates, live_ranges, plan_buffers
from harness import Native
from test_differential import build, programs

rng = np.random.default_rng(7)


def small_graph(update_bias: bool = True):
    """fc1 -> relu -> sum (an output in its own buffer), and the bias stepped by a column sum."""
    g = GraphBuilder()
    x = g.input("x", "data", (4, 8), "float32")
    w = g.input("fc1.weight", "param", (16, 8), "float32")
    bias = g.input("fc1.bias", "param", (16,), "float32")
    h = g.add("matmul", (x, w), {"transpose_a": False, "transpose_b": True}, (4, 16), "float32",
              module_path="fc1", module_type="Linear")
    h = g.add("add", (h, bias), {}, (4, 16), "float32", module_path="fc1", module_type="Linear")
    r = g.add("relu", (h,), {}, (4, 16), "float32", module_path="act", module_type="ReLU")
    flat = g.add("reshape", (r,), {"shape": (64,)}, (64,), "float32")
    total = g.add("sum", (flat,), {"dims": (0,), "keepdim": False}, (), "float32")
    column = g.add("sum", (r,), {"dims": (0,), "keepdim": False}, (16,), "float32")
    new_bias = g.add("sub", (bias, column), {}, (16,), "float32", module_path="fc1.bias", module_type="SGD")
    return g.finish([total], ["total"], [(new_bias, bias)] if update_bias else [])


def one_per_node(graph, in_place: bool = True):
    """The planned program of `graph` lowered one kernel per node, in node order."""
    return planned(kernel_program(graph), in_place)


def test_plan_text_lists_buffers_live_ranges_and_the_peak():
    graph = small_graph()
    assert format_plan(one_per_node(graph, in_place=False)) == "\n".join([
        "workspace plan: 5 buffers",
        "  value  op      module    bytes  offset  live",
        "  %3     matmul  fc1         256       0  k0..k1",
        "  %4     add     fc1         256     256  k1..k2",
        "  %5     relu    act         256       0  k2..k4",
        "  %8     sum     -            64     256  k4..k5",
        "  %9     sub     fc1.bias     64       0  k5..end",
        "planned peak: 512 bytes (unplanned 896 bytes)",
    ])


def test_an_elementwise_update_is_computed_in_its_input_without_noalias_or_memcpy():
    graph = small_graph()
    program = one_per_node(graph)
    locations = program.locations
    assert locations[9] == locations[2] == Location("arg", 2)
    assert format_plan(program).splitlines()[-2:] == [
        "in place: %9 sub (fc1.bias) written into input %2 fc1.bias, 64 bytes",
        "planned peak: 512 bytes (unplanned 896 bytes)"]
    text = lower(graph).ir_text
    assert ('@"k9_sub_fc1_bias"(ptr nonnull dereferenceable(64) %"out", ptr nonnull dereferenceable(64) %"in0", '
            'ptr noalias nonnull') in text
    assert "call void @llvm.memcpy" not in text
    inputs = [rng.standard_normal(n.shape).astype(np.float32) for n in graph.inputs]
    expected = [a.copy() for a in inputs]
    (total,) = Native(graph)(*inputs)
    np.testing.assert_allclose(total, interpret(graph, expected)[0], rtol=1e-5)
    np.testing.assert_allclose(inputs[2], expected[2], rtol=1e-5)


@pytest.mark.parametrize("late_read, late_check, expected", [(False, False, True), (True, False, False),
                                                          (False, True, False)])
def test_an_update_stays_a_copy_when_the_old_value_is_read_later_or_a_check_follows(late_read, late_check, expected):
    g = GraphBuilder()
    w = g.input("w", "param", (3,), "float64")
    index = g.input("index", "data", (2,), "int64")
    new_w = g.add("mul", (w, w), {}, (3,), "float64")
    out = g.add("exp", (w if late_read else new_w,), {}, (3,), "float64")
    if late_check:
        g.add("check_index", (index,), {"high": 3, "ignore": -100, "error": "IndexError", "message": "{value}"},
              (2,), "int64")
    graph = g.finish([out], updates=[(new_w, w)])
    assert (in_place_updates(kernel_program(graph)) == {new_w: w}) == expected
    assert plan_buffers(graph)[new_w].kind == ("arg" if expected else "workspace")
    check_plan(one_per_node(graph))


# -- the checker -------------------------------------------------------------------------------

def _elementwise(node) -> bool:
    return OPS[node.op].kind in ("fused", "elementwise")


def _is_check(node) -> bool:
    return OPS.get(node.op) is not None and OPS[node.op].kind == "check"


def check_plan(program, in_place_allowed: bool = True, locations=None) -> None:
    """Simulate the entry point's memory under the program's plan (or `locations`) and fail on
    any clobbered read.

    Kernels run in schedule order, each reading all its inputs and then writing its outputs,
    then outputs are copied, then updates. Every read of a value (directly or through aliases
    and checks) must find all its bytes last written by that value; a kernel's output may not
    overlap its inputs (noalias) except an elementwise kernel writing exactly over one of them
    (an in-place update), and nothing is written into an input before the last check.
    Independently of that, values whose lifetimes (first write to last read) intersect must not
    share a workspace byte, and workspace slots are 64-byte aligned."""
    graph = program.graph
    locations = program.locations if locations is None else locations
    nodes, count = graph.nodes, len(program.kernels)
    base: dict[int, int] = {}
    for n in nodes:
        base[n.id] = base[n.inputs[0]] if (n.op in ALIASES or _is_check(n)) else n.id
    written_by_kernels = {v for k in program.kernels if k.template != "check" for v in k.outputs}
    assert {v for v in locations if nodes[v].op not in ALIASES and not _is_check(nodes[v])} == (
        {n.id for n in graph.inputs} | {n.id for n in nodes if n.op == "constant"} | written_by_kernels)

    def region(node_id, location=None):
        location = location or locations[base[node_id]]
        node = nodes[node_id]
        nbytes = node.size * itemsize(node.dtype)
        if location.kind == "workspace":
            assert location.index % ALIGNMENT == 0, f"%{node_id} at unaligned offset {location.index}"
            return "workspace", location.index, location.index + nbytes
        return (location.kind, location.index), 0, nbytes

    def overlap(a, b):
        return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]

    writes: list[tuple[int, int, tuple]] = []  # (time, value, region), in time order
    written: dict[int, int] = {}
    last_read: dict[int, int] = {}

    def write(time, value, where):
        writes.append((time, value, where))
        written[value] = time

    def read(time, node_id):
        value = base[node_id]
        where = region(value)
        assert value in written, f"%{value} read at {time} before it was written"
        for when, other, place in writes:
            if written[value] < when < time and other != value and overlap(place, where):
                raise AssertionError(f"%{value} (read at {time}) was overwritten by %{other} at {when}")
        last_read[value] = time

    for n in nodes:
        if n.op in ("input", "constant"):
            write(-1, n.id, region(n.id))
    last_check = max((k for k, kernel in enumerate(program.kernels) if kernel.template == "check"), default=-1)
    for time, kernel in enumerate(program.kernels):
        for i in kernel.inputs:
            read(time, i)
        if kernel.template == "check":
            continue
        for v in kernel.outputs:
            n, out = nodes[v], region(v)
            into_input = locations[v].kind == "arg" and locations[v].index < len(graph.inputs)
            for i in kernel.inputs:
                if overlap(out, region(base[i])):
                    exact = out == region(base[i])
                    assert in_place_allowed and into_input and exact and _elementwise(n), f"%{v} overlaps its input %{i}"
            for w in kernel.outputs:
                assert w == v or not overlap(out, region(w)), f"%{v} and %{w} of one kernel overlap"
            if into_input:
                assert in_place_allowed, f"%{v} is written into an input"
                assert time > last_check, f"%{v} writes into an input before the check at k{last_check}"
        for v in kernel.outputs:
            write(time, v, region(v))
    time = count
    first_output = len(graph.inputs)
    for j, node_id in enumerate(graph.outputs):
        read(time, node_id)
        destination = Location("arg", first_output + j)
        if locations[base[node_id]] != destination:
            write(time, -1 - j, region(node_id, destination))
        time += 1
    for value, target in graph.updates:
        read(time, value)
        if locations[base[value]] != locations[target]:
            write(time, target, region(target))
        time += 1

    lifetimes = [(written[v], last_read.get(v, written[v]), region(v)) for v in written
                 if v >= 0 and locations[v].kind == "workspace"]
    for k, (start, end, where) in enumerate(lifetimes):
        for start2, end2, where2 in lifetimes[k + 1:]:
            if start <= end2 and start2 <= end:
                assert not overlap(where, where2), f"live values share bytes: {where} and {where2}"


def test_checker_catches_reuse_of_a_live_value_and_overlap_with_an_input():
    program = one_per_node(small_graph())
    locations = program.locations
    check_plan(program)
    with pytest.raises(AssertionError, match="overlaps its input"):
        check_plan(program, locations={**locations, 4: locations[3]})  # add written over the matmul it reads
    with pytest.raises(AssertionError, match="overwritten"):
        check_plan(program, locations={**locations, 8: Location("arg", 2)})  # the column sum over the bias %9 reads
    with pytest.raises(AssertionError, match="unaligned"):
        check_plan(program, locations={**locations, 3: Location("workspace", 1024 + 4)})


# -- random graphs -----------------------------------------------------------------------------

UNARY = ("tanh", "neg", "relu", "sigmoid")
BINARY = ("add", "sub", "mul", "maximum")


def _node(g: GraphBuilder, op: str, ins, **attrs):
    """Append `op` if its infer rule accepts the operands, else return None."""
    try:
        out = OPS[op].infer(*(TensorType(g.nodes[i].shape, g.nodes[i].dtype) for i in ins), **attrs)
    except ShapeError:
        return None
    return g.add(op, ins, attrs, out.shape, out.dtype)


@st.composite
def planned_graphs(draw):
    """Random DAGs over a matrix, a vector, optimizer-like state inputs updated by elementwise
    or reduced values (sometimes read again after their update is computed), reshapes and
    detaches (aliases), matmuls, and an index check feeding one_hot; random outputs."""
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    g = GraphBuilder()
    pool = [g.input("x", "data", (rows, cols), "float64"), g.input("v", "data", (cols,), "float64")]
    states = [g.input(f"s{k}", "state", (rows, cols) if k % 2 == 0 else (cols,), "float64")
              for k in range(draw(st.integers(0, 3)))]
    pool += states
    index = g.input("index", "data", (rows,), "int64") if draw(st.booleans()) else None
    pick = lambda: pool[draw(st.integers(0, len(pool) - 1))]  # noqa: E731
    updates, pending = [], list(states)
    for _ in range(draw(st.integers(1, 12))):
        kind, a, b = draw(st.integers(0, 8)), pick(), pick()
        node = None
        if kind == 0:
            node = _node(g, draw(st.sampled_from(UNARY)), (a,))
        elif kind == 1:
            node = _node(g, draw(st.sampled_from(BINARY)), (a, b))
        elif kind == 2 and g.nodes[a].shape:
            node = _node(g, draw(st.sampled_from(["sum", "amax"])), (a,), dims=(0,), keepdim=draw(st.booleans()))
        elif kind == 3:
            flat = draw(st.booleans())
            node = _node(g, "reshape", (a,), shape=(g.nodes[a].size,)) if flat else _node(g, "detach", (a,))
        elif kind == 4 and len(g.nodes[a].shape) == 2:
            node = _node(g, "permute", (a,), dims=(1, 0))
        elif kind == 5:
            node = _node(g, "matmul", (a, b), transpose_a=False, transpose_b=True)
        elif kind in (6, 7) and pending:
            target = pending.pop(0)
            t = g.nodes[target]
            if kind == 7 and len(t.shape) == 1 and len(g.nodes[a].shape) == 2 and g.nodes[a].shape[1] == cols:
                node = _node(g, "sum", (a,), dims=(0,), keepdim=False)  # not elementwise: copied at the end
            else:
                other = a if g.nodes[a].shape == t.shape else target
                node = _node(g, draw(st.sampled_from(BINARY)), (target, other))
            updates.append((node, target))
        elif kind == 8 and index is not None:
            checked = g.add("check_index", (index,), {"high": cols, "ignore": -100, "error": "IndexError",
                                                     "message": "index {value} is out of range"}, (rows,), "int64")
            node = _node(g, "one_hot", (checked,), num_classes=cols, dtype="float64")
            index = None
        pool.append(node if node is not None else _node(g, "relu", (a,)))
    outputs = draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=4))
    return g.finish([pool[k] for k in outputs], updates=updates), (rows, cols)


def _inputs(graph, cols, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, cols, n.shape) if n.dtype == "int64" else rng.standard_normal(n.shape)
            for n in graph.inputs]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planned_graphs(), st.booleans())
def test_random_graphs_keep_their_results_and_a_sound_plan(drawn, fuse):
    graph, (rows, cols) = drawn
    if fuse:
        graph = optimize(graph, KERNEL_PIPELINE)
    program = build_program(graph) if fuse else kernel_program(graph)
    note(f"{program}\nupdates {graph.updates}\n{format_plan(planned(program))}")
    check_plan(planned(program, in_place=False), in_place_allowed=False)
    check_plan(planned(program))
    inputs = _inputs(graph, cols, len(graph))
    expected_inputs = [a.copy() for a in inputs]
    interpret(graph, expected_inputs)
    # outputs from a run without updates: the interpreter returns an alias of an updated input
    # (detach %2) as its new value, while compiled code copies outputs before the updates
    expected = interpret(dataclasses.replace(graph, updates=()), [a.copy() for a in inputs])
    for got, want in zip(Native(program)(*inputs), expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    for got, want in zip(inputs, expected_inputs):  # updates
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_differential_programs_and_their_backward_graphs_plan_soundly(program):
    """The graphs tests/test_differential.py compiles (and checks against the interpreter)."""
    from graphc.autodiff import build_backward, with_saved_outputs
    shape, steps, dtype = program
    x, y = np.ones(shape, dtype), np.ones(shape[-1:], dtype)
    forward = optimize(graphc.trace(build(steps), graphc.tensor(x), graphc.tensor(y)).graph)
    backward = build_backward(forward, [n.id for n in forward.inputs])
    for graph in (forward, with_saved_outputs(forward, backward.saved), backward.graph):
        program = planned(build_program(optimize(graph, KERNEL_PIPELINE)))
        check_plan(program)
        ranges = live_ranges(program)
        assert workspace_bytes(program) <= max(1, sum(r.nbytes for r in ranges))


# -- train steps -------------------------------------------------------------------------------

def mlp(sizes):
    layers = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layers += [graphc.nn.Linear(fan_in, fan_out), graphc.nn.ReLU()]
    return graphc.nn.Sequential(*layers[:-1])


def adam_step_plan(monkeypatch, sizes, batch):
    """One compiled Adam step of an MLP: the train step's planned kernel program (recorded where
    the staged driver plans, once for the cache lookup and lowering)."""
    import graphc.stages as stages
    plans = []

    def recording(program, in_place=True):
        plans.append(planned(program, in_place))
        return plans[-1]
    monkeypatch.setattr(stages, "planned", recording)
    model = mlp(sizes)
    step = graphc.compile_train_step(model, graphc.nn.CrossEntropyLoss(), graphc.optim.Adam(model.parameters()))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    step(graphc.tensor(x), graphc.tensor(rng.integers(0, sizes[-1], batch)))
    program, = [p for p in plans if p.graph.updates]
    assert step._cache.values()[0].compiled.artifact.workspace_bytes == workspace_bytes(program)
    return program


@pytest.mark.parametrize("sizes, batch", [((64, 128, 10), 32), ((784, 512, 512, 10), 64)])
def test_adam_train_step_plans_soundly_in_at_most_half_the_unplanned_bytes(monkeypatch, sizes, batch):
    program = adam_step_plan(monkeypatch, sizes, batch)
    graph, locations = program.graph, program.locations
    check_plan(program)
    check_plan(planned(program, in_place=False), in_place_allowed=False)
    used, unplanned = workspace_bytes(program), sum(r.nbytes for r in live_ranges(program))
    print(f"MLP {sizes} batch {batch} Adam step: planned {used} bytes, unplanned {unplanned} bytes")
    assert format_plan(program).endswith(f"planned peak: {used} bytes (unplanned {unplanned} bytes)")
    assert used <= unplanned // 2
    # every parameter and both Adam states are written in place: no update is copied at the end
    assert all(locations[value] == locations[target] for value, target in graph.updates)
