"""trace: the module tree apart from the graph, module paths, shared parameters, TraceError."""
import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.ir import verify


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.register_buffer("scale", graphc.tensor([2.0]))

    def forward(self, x):
        return self.layers(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(8, 3)

    def forward(self, x, temperature=1.0):
        h = self.block(x)
        if x.shape[0] > 4:              # control flow on shapes: specialised
            h = h + 1.0
        return F.log_softmax(self.head(h) / temperature, dim=1)   # LINE_HEAD


def line_of(marker):
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if marker in line and "line_of" not in line)


def test_graph_nodes_know_their_module_and_source_line():
    program = graphc.trace(Net(), graphc.randn(2, 4))
    verify(program.graph)
    by_path = {}
    for node in program.graph.nodes:
        by_path.setdefault(node.module_path, set()).add(node.op)
    assert "matmul" in by_path["block.layers.0"] and "relu" in by_path["block.layers.1"]
    assert "mul" in by_path["block"] and "matmul" in by_path["head"]
    (head_mm,) = [n for n in program.graph.nodes if n.op == "matmul" and n.module_path == "head"]
    assert head_mm.module_type == "Linear"
    assert head_mm.source == f"test_trace.py:{line_of('LINE_HEAD')}"
    text = str(program.graph)
    assert "# head (Linear)  test_trace.py:" in text and "# block.layers.1 (ReLU)" in text


def test_tree_is_separate_data_with_owners_and_types():
    program = graphc.trace(Net(), graphc.randn(2, 4))
    tree = program.tree
    assert tree.type_name == "Net" and [c.path for c in tree.children] == ["block", "head"]
    block = tree.find("block")
    assert [s.name for s in block.slots] == ["block.scale"] and block.slots[0].kind == "buffer"
    assert [s.name for s in tree.find("block.layers.0").slots] == ["block.layers.0.weight", "block.layers.0.bias"]
    assert "weight: f32[8,4]" in str(tree)


def test_params_are_named_inputs_and_the_program_runs_the_interpreter():
    model = Net()
    x = graphc.randn(2, 4)
    program = graphc.trace(model, x)
    names = [n.attr("name") for n in program.graph.inputs]
    assert names[0] == "x"
    assert set(names[1:]) == {"block.layers.0.weight", "block.layers.0.bias", "block.scale", "head.weight", "head.bias"}
    assert set(program.params) == set(names[1:])
    np.testing.assert_allclose(program(x).numpy(), model(x).detach().numpy(), rtol=1e-6)


def test_a_parameter_shared_by_two_modules_is_one_input():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    program = graphc.trace(Tied(), graphc.randn(3, 4))
    weights = [n for n in program.graph.inputs if n.attr("name").endswith("weight")]
    assert [n.attr("name") for n in weights] == ["a.weight"]
    assert program.tree.find("b").slots[0].shared_with == "a.weight"


def test_shape_control_flow_and_static_arguments_are_specialised():
    model = Net()
    small, large = graphc.randn(2, 4), graphc.randn(6, 4)
    assert len(graphc.trace(model, large).graph) == len(graphc.trace(model, small).graph) + 2  # constant + add
    hot = graphc.trace(model, small, 2.0)
    np.testing.assert_allclose(hot(small, 2.0).numpy(), model(small, 2.0).detach().numpy(), rtol=1e-6)


def test_keyword_arguments_trace_as_static_values_or_inputs():
    model, x = Net(), graphc.randn(2, 4)
    hot = graphc.trace(model, x, kwargs={"temperature": 2.0})
    assert hot.input_names == ("x",) and hot.static_args == (2.0,)
    np.testing.assert_allclose(hot(x, 2.0).numpy(), model(x, temperature=2.0).detach().numpy(), rtol=1e-6)
    temperature = graphc.tensor([3.0])
    program = graphc.trace(model, x, kwargs={"temperature": temperature})  # a tensor by keyword: an input
    assert program.input_names == ("x", "temperature")
    np.testing.assert_allclose(program(x, temperature).numpy(),
                               model(x, temperature=temperature).detach().numpy(), rtol=1e-6)


def test_control_flow_on_tensor_values_raises_trace_error_with_path_and_line():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x):
            return self.inner(x)

    class Inner(nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # LINE_BRANCH
                return x
            return -x

    with pytest.raises(graphc.TraceError) as info:
        graphc.trace(Branchy(), graphc.randn(3))
    message = str(info.value)
    assert "'inner' (Inner)" in message and f"test_trace.py:{line_of('LINE_BRANCH')}" in message


def test_item_and_numpy_raise_trace_error():
    class ItemUser(nn.Module):
        def forward(self, x):
            return x * x.mean().item()

    with pytest.raises(graphc.TraceError, match="item"):
        graphc.trace(ItemUser(), graphc.randn(3))


def test_shape_errors_name_the_module():
    with pytest.raises(graphc.ShapeError, match=r"module 'block.layers.0' \(Linear\).*matmul"):
        graphc.trace(Net(), graphc.randn(2, 5))


def test_forward_hooks_run_while_tracing():
    model = Net()
    model.head.register_forward_hook(lambda module, args, out: out * 2.0)
    x = graphc.randn(2, 4)
    np.testing.assert_allclose(graphc.trace(model, x)(x).numpy(), model(x).detach().numpy(), rtol=1e-6)


def test_in_place_writes_into_buffers_become_graph_updates():
    class Running(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", graphc.zeros(3))

        def forward(self, x):
            self.mean.copy_(x.mean(0))
            return x + self.mean  # reads the value just written

    model, x = Running(), graphc.randn(2, 3)
    program = graphc.trace(model, x)
    ((value, target),) = program.graph.updates
    assert program.graph.nodes[target].attr("name") == "mean" and not model.mean.numpy().any()  # tracing writes nothing
    np.testing.assert_allclose(program(x).numpy(), (x + x.mean(0)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.mean.numpy(), x.mean(0).numpy(), rtol=1e-6)  # the reference run updates it


def test_in_place_writes_into_other_tensors_raise_a_clear_trace_error():
    class Writes(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(graphc.zeros(3))

        def forward(self, x):
            self.w.copy_(x.mean(0))
            return x

    with pytest.raises(graphc.TraceError, match=r"'<root>' \(Writes\).*must write a module buffer.*not a parameter"):
        graphc.trace(Writes(), graphc.randn(2, 3))
    # an intermediate value written in place is rebound, as `out += identity` is (PyTorch allows both)
    program = graphc.trace(lambda x: (x * 2).copy_(x + 1), graphc.randn(2, 3))
    assert not program.graph.updates


def test_a_buffer_filled_while_tracing_is_filled_by_the_graph_only():
    class Fills(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("b", graphc.ones(3))

        def forward(self, x):
            self.b.fill_(2.0)
            return x * self.b

    model, x = Fills(), graphc.randn(2, 3)
    program = graphc.trace(model, x)
    assert len(program.graph.updates) == 1 and model.b.numpy().tolist() == [1, 1, 1]
    np.testing.assert_allclose(program(x).numpy(), x.numpy() * 2, rtol=1e-6)
    assert model.b.numpy().tolist() == [2, 2, 2]


def test_a_write_of_another_shape_into_a_buffer_raises_a_trace_error():
    class Copies(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("b", graphc.ones(3))

        def forward(self, x):
            return self.b.copy_(x)

    with pytest.raises(graphc.TraceError, match=r"cannot broadcast a value of shape \[2, 3\] to the buffer's shape \[3\]"):
        graphc.trace(Copies(), graphc.randn(2, 3))


def test_assigning_a_buffer_in_a_traced_forward_is_a_graph_update():
    class Assigns(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", graphc.zeros(3))

        def forward(self, x):
            self.mean = self.mean * 0.9 + x.mean(0) * 0.1
            return x - self.mean

    eager, compiled = Assigns(), Assigns()
    fast = graphc.compile(compiled)
    buffer = compiled.mean
    for _ in range(2):
        x = graphc.randn(4, 3)
        np.testing.assert_allclose(fast(x).numpy(), eager(x).numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(compiled.mean.numpy(), eager.mean.numpy(), rtol=1e-6, atol=1e-7)
    assert compiled.mean is buffer  # written in place: the model still holds a real tensor
