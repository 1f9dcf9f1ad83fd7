"""In-place methods and operators: eager values and autograd against PyTorch, traced residual
adds, and parameter updates through `.data` that compiled programs see on their next call."""
import numpy as np
import pytest

import graphc
import graphc.nn as nn

torch = pytest.importorskip("torch")
rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4)).astype(np.float32)
Y = rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32)

# name -> f(x, y) that updates x in place, for graphc and torch alike
UPDATES = {
    "add_": lambda x, y: x.add_(y), "add_alpha": lambda x, y: x.add_(y, alpha=-0.5),
    "sub_": lambda x, y: x.sub_(y), "sub_alpha": lambda x, y: x.sub_(y[0], alpha=2),
    "mul_": lambda x, y: x.mul_(y), "div_": lambda x, y: x.div_(y), "pow_": lambda x, y: x.pow_(2),
    "pow_tensor": lambda x, y: x.mul_(x).pow_(y),
    "zero_": lambda x, y: x.zero_(), "fill_": lambda x, y: x.fill_(2.5), "copy_": lambda x, y: x.copy_(y[1]),
    "clamp_": lambda x, y: x.clamp_(-0.5, 0.5), "clamp_min": lambda x, y: x.clamp_(min=0.0),
    "masked_fill_": lambda x, y: x.masked_fill_(y > 1, 0.25),
    "neg_": lambda x, y: x.neg_(), "relu_": lambda x, y: x.relu_(), "sqrt_": lambda x, y: x.mul_(x).sqrt_(),
    "iadd": lambda x, y: x.__iadd__(y), "isub_scalar": lambda x, y: x.__isub__(1.5),
    "imul": lambda x, y: x.__imul__(y), "itruediv": lambda x, y: x.__itruediv__(2), "ipow": lambda x, y: x.__ipow__(2),
}


def _pairs(requires_grad=False):
    g = [graphc.tensor(a, requires_grad=requires_grad) for a in (X, Y)]
    t = [torch.tensor(a, requires_grad=requires_grad) for a in (X, Y)]
    return g, t


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_eager_update_writes_the_same_array(name):
    (gx, gy), (tx, ty) = _pairs()
    array = gx._data
    out = UPDATES[name](gx, gy)
    UPDATES[name](tx, ty)
    assert out is gx and gx._data is array  # in place: every holder of the array sees it
    np.testing.assert_allclose(gx.numpy(), tx.numpy(), rtol=1e-6)


# PyTorch refuses these on a non-leaf (a value saved for its gradient is overwritten)
TORCH_REFUSES = {"sqrt_", "pow_tensor"}


@pytest.mark.parametrize("name", sorted(set(UPDATES) - TORCH_REFUSES))
def test_updates_of_non_leaves_are_differentiated_like_torch(name):
    (gx, gy), (tx, ty) = _pairs(requires_grad=True)
    gz, tz = gx * 1.5, tx * 1.5
    UPDATES[name](gz, gy)
    UPDATES[name](tz, ty)
    np.testing.assert_allclose(gz.detach().numpy(), tz.detach().numpy(), rtol=1e-6)
    (gz * graphc.tensor(X)).sum().backward()
    (tz * torch.tensor(X)).sum().backward()
    for g, t in ((gx, tx), (gy, ty)):
        expected = np.zeros(X.shape, np.float32) if t.grad is None else t.grad.numpy()
        got = np.zeros(X.shape, np.float32) if g.grad is None else g.grad.numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_in_place_on_a_leaf_that_requires_grad_raises_outside_no_grad():
    w = graphc.tensor(X, requires_grad=True)
    for update in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.zero_(), lambda: w.__iadd__(1)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
            update()
    with graphc.no_grad():
        w.add_(1).mul_(2)
    np.testing.assert_allclose(w.detach().numpy(), (X + 1) * 2, rtol=1e-6)
    assert w.is_leaf and w.requires_grad


def test_result_dtype_and_shape_rules_match_torch():
    ints = graphc.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        ints.add_(0.5)
    with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"):
        graphc.zeros(3).add_(graphc.ones(2, 3))
    floats = graphc.zeros(3)
    floats += ints  # int into float: fine
    floats += graphc.ones(3, dtype=graphc.float64)  # float64 into float32: fine
    bools = graphc.tensor([True, False])
    with pytest.raises(RuntimeError, match="result type Long can't be cast to the desired output type Bool"):
        bools += 1
    ints *= 2
    assert floats.dtype == graphc.float32 and ints.tolist() == [2, 4, 6]


def test_sgd_through_data_is_seen_by_compiled_programs():
    """pytorch/examples regression/main.py: `param.data.add_(-lr * param.grad.data)`."""
    graphc.manual_seed(0)
    model = nn.Linear(4, 1)
    compiled = graphc.compile(model)
    x, y = graphc.randn(8, 4), graphc.randn(8, 1)
    losses = []
    for _ in range(3):
        model.zero_grad()
        loss = ((compiled(x) - y) ** 2).mean()
        loss.backward()
        losses.append(loss.item())
        for param in model.parameters():
            param.data.add_(-0.1 * param.grad.data)
        np.testing.assert_allclose(compiled(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-6)
    assert losses[2] < losses[1] < losses[0]


def test_in_place_writes_into_parameters_are_seen_by_a_train_step():
    graphc.manual_seed(0)
    model = nn.Linear(3, 2)
    step = graphc.compile_train_step(model, nn.MSELoss(), graphc.optim.SGD(model.parameters(), lr=0.0))
    x, y = graphc.randn(4, 3), graphc.randn(4, 2)
    before = step(x, y)
    with graphc.no_grad():
        model.weight.mul_(0.0)
        model.bias.fill_(1.0)
        model.weight[0, 1] = 2.0
    after = step(x, y)
    expected = nn.MSELoss()(model(x), y).item()
    assert abs(float(after) - expected) < 1e-5 and abs(float(after) - float(before)) > 1e-3


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        identity = x
        out = self.fc(x)
        out += identity  # a residual add, recorded into the graph
        out *= 2
        out.sub_(x[:, :1], alpha=0.5)
        return out.relu()


def test_traced_in_place_ops_record_the_right_graph():
    graphc.manual_seed(0)
    model = Residual()
    program = graphc.trace(model, graphc.randn(2, 4))
    ops = [n.op for n in program.graph.nodes]
    assert ops.count("add") >= 1 and ops.count("mul") >= 1 and "sub" in ops
    x = graphc.tensor(X[:, :4].copy(), requires_grad=True)
    x_eager = graphc.tensor(X[:, :4].copy(), requires_grad=True)
    compiled_out, eager_out = graphc.compile(model)(x), model(x_eager)
    np.testing.assert_allclose(compiled_out.detach().numpy(), eager_out.detach().numpy(), rtol=1e-6)
    compiled_out.sum().backward()
    eager_out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x_eager.grad.numpy(), rtol=1e-6)

    tmodel = torch.nn.Module()
    tmodel.fc = torch.nn.Linear(4, 4)
    tmodel.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    tx = torch.tensor(X[:, :4].copy(), requires_grad=True)
    identity = tx
    out = tmodel.fc(tx)
    out += identity
    out *= 2
    out.sub_(tx[:, :1], alpha=0.5)
    out = out.relu()
    np.testing.assert_allclose(eager_out.detach().numpy(), out.detach().numpy(), rtol=1e-5)
    out.sum().backward()
    np.testing.assert_allclose(x_eager.grad.numpy(), tx.grad.numpy(), rtol=1e-5)


def test_train_step_through_a_residual_with_in_place_add():
    graphc.manual_seed(0)
    model = Residual()
    reference = Residual()
    reference.load_state_dict(model.state_dict())
    step = graphc.compile_train_step(model, nn.MSELoss(), graphc.optim.SGD(model.parameters(), lr=0.1))
    opt = graphc.optim.SGD(reference.parameters(), lr=0.1)
    x, y = graphc.randn(5, 4), graphc.randn(5, 4)
    for _ in range(2):
        loss = step(x, y)
        opt.zero_grad()
        expected = nn.MSELoss()(reference(x), y)
        expected.backward()
        opt.step()
        assert abs(float(loss) - expected.item()) < 1e-5
    np.testing.assert_allclose(model.fc.weight.detach().numpy(), reference.fc.weight.detach().numpy(), rtol=1e-5)


def test_in_place_updates_of_a_buffer_in_a_traced_forward_are_graph_updates_and_of_a_parameter_raise():
    class Counts(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", graphc.zeros(1))

        def forward(self, x):
            self.count.add_(1)
            return x * self.count

    model = Counts()
    program = graphc.trace(model, graphc.randn(2))
    assert len(program.graph.updates) == 1 and model.count.numpy().tolist() == [0.0]  # tracing writes nothing
    compiled = graphc.compile(model)
    x = graphc.ones(2)
    assert compiled(x).numpy().tolist() == [1.0, 1.0] and compiled(x).numpy().tolist() == [2.0, 2.0]
    assert model.count.numpy().tolist() == [2.0]

    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(graphc.zeros(1))

        def forward(self, x):
            with graphc.no_grad():
                self.w.add_(1)
            return x

    with pytest.raises(graphc.TraceError, match=r"must write a module buffer.*not a parameter"):
        graphc.trace(Bad(), graphc.randn(2))


