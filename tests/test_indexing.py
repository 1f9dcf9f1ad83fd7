"""Indexing against PyTorch: basic indices (ints, slices, None, Ellipsis) eager, traced and
compiled with gradients; advanced indices eagerly; item assignment on untracked tensors."""
import numpy as np
import pytest

import graphc
from graphc.indexing import basic_index

torch = pytest.importorskip("torch")
rng = np.random.default_rng(0)
X = rng.standard_normal((4, 5, 6)).astype(np.float32)

BASIC = [
    0, -1, 3, slice(None), slice(1, 3), slice(None, None, 2), slice(-3, None), slice(1, 100, 3), slice(5, 2),
    (1, 2), (-1, -2, -3), (slice(None), 1), (Ellipsis, 1), (1, Ellipsis), (None,), (None, 0, None),
    (slice(None), None, slice(1, 4, 2)), (Ellipsis, None), (0, Ellipsis, slice(None, None, 4)),
    (slice(2, None), slice(None, None, 2), slice(1, 6, 2)), (None, Ellipsis, None, 2, None), Ellipsis,
    (slice(0, 0), 1),
]


@pytest.mark.parametrize("index", BASIC, ids=[str(i) for i in BASIC])
def test_basic_index_matches_torch_with_gradients(index):
    g, t = graphc.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    gout, tout = g[index], t[index]
    assert tuple(gout.shape) == tuple(tout.shape)
    np.testing.assert_array_equal(gout.detach().numpy(), tout.detach().numpy())
    weights = rng.standard_normal(tuple(tout.shape)).astype(np.float32)
    (gout * graphc.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    np.testing.assert_array_equal(g.grad.numpy(), t.grad.numpy())


def test_basic_index_is_one_slice_and_a_reshape():
    index = basic_index((None, 1, slice(None, None, 2)), (4, 5, 6))
    assert index.starts == (1, 0, 0) and index.steps == (1, 2, 1) and index.window == (1, 3, 6)
    assert index.shape == (1, 3, 6)
    program = graphc.trace(lambda x: x[1, ::2], graphc.tensor(X))
    assert [n.op for n in program.graph.nodes if n.op not in ("input", "constant")] == ["slice", "reshape"]


class Indexer(graphc.nn.Module):
    def forward(self, x):
        return tuple(x[index] for index in BASIC if np.prod(torch.zeros(X.shape)[index].shape))


def test_compiled_indexing_forward_and_backward_match_eager():
    model = Indexer()
    x, x_eager = graphc.tensor(X, requires_grad=True), graphc.tensor(X, requires_grad=True)
    compiled, eager = graphc.compile(model)(x), model(x_eager)
    for c, e in zip(compiled, eager):
        np.testing.assert_array_equal(c.detach().numpy(), e.detach().numpy())
    graphc.stack([(c * (k + 1)).sum() for k, c in enumerate(compiled)]).sum().backward()
    graphc.stack([(e * (k + 1)).sum() for k, e in enumerate(eager)]).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x_eager.grad.numpy(), rtol=1e-6)


def test_indexing_in_a_train_step():
    class Head(graphc.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = graphc.nn.Linear(6, 3)

        def forward(self, x):
            return self.fc(x[:, -1, :])  # the last step of a sequence

    graphc.manual_seed(0)
    model, reference = Head(), Head()
    reference.load_state_dict(model.state_dict())
    step = graphc.compile_train_step(model, graphc.nn.MSELoss(), graphc.optim.SGD(model.parameters(), lr=0.1))
    opt = graphc.optim.SGD(reference.parameters(), lr=0.1)
    x, y = graphc.tensor(X), graphc.randn(4, 3)
    for _ in range(2):
        loss = step(x, y)
        opt.zero_grad()
        expected = graphc.nn.MSELoss()(reference(x), y)
        expected.backward()
        opt.step()
        assert abs(float(loss) - expected.item()) < 1e-5


def test_iterating_a_traced_tensor_unstacks_it():
    program = graphc.trace(lambda x: graphc.stack([row * k for k, row in enumerate(x)]), graphc.tensor(X))
    np.testing.assert_allclose(program(graphc.tensor(X)).numpy(), X * np.arange(4)[:, None, None], rtol=1e-6)


def test_advanced_indexing_is_eager_and_differentiable():
    g, t = graphc.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    for index in ([0, 2], (graphc.tensor([1, 3]), slice(None), 0), X[..., 0] > 0, (slice(None), [1, 1, 4])):
        t_index = tuple(torch.tensor(i.numpy()) if isinstance(i, graphc.Tensor) else i for i in index) \
            if isinstance(index, tuple) else torch.tensor(index) if isinstance(index, np.ndarray) else index
        np.testing.assert_array_equal(g[index].detach().numpy(), t[t_index].detach().numpy())
        g[index].sum().backward()
        t[t_index].sum().backward()
    np.testing.assert_array_equal(g.grad.numpy(), t.grad.numpy())
    with pytest.raises(graphc.TraceError, match="advanced indexing"):
        graphc.trace(lambda x: x[[0, 1]], graphc.tensor(X))


def test_setitem_on_untracked_tensors_matches_torch():
    g, t = graphc.tensor(X), torch.tensor(X)
    for index, value in ((0, 1.0), ((1, slice(None, 2)), -3.0), ((Ellipsis, 0), 7.0), ((2, 1), 5)):
        g[index] = value
        t[index] = value
    g[3] = graphc.ones(5, 6)
    t[3] = torch.ones(5, 6)
    g[g > 2] = 0.0
    t[t > 2] = 0.0
    np.testing.assert_array_equal(g.numpy(), t.numpy())
    w = graphc.tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
        w[0] = 1.0
    with graphc.no_grad():
        w[0] = 1.0
    assert w[0].detach().numpy().min() == 1.0


def test_setitem_on_tracked_and_traced_tensors_matches_torch():
    g, t = graphc.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    gv, tv = graphc.tensor(X[0, 0], requires_grad=True), torch.tensor(X[0, 0], requires_grad=True)
    gy, ty = g * 2, t * 2
    for y, v in ((gy, gv), (ty, tv)):
        y[0] = 1.0
        y[1, ::2] = v
        y[..., -1] = v[:1] * 3
    np.testing.assert_array_equal(gy.detach().numpy(), ty.detach().numpy())
    weights = rng.standard_normal(X.shape).astype(np.float32)
    (gy * graphc.tensor(weights)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gv.grad.numpy(), tv.grad.numpy(), rtol=1e-5)

    class Masked(graphc.nn.Module):
        def forward(self, x):
            y = x * 2
            y[:, 0] = 0.0
            y[1] = x[0]
            return y

    x, x_eager = graphc.tensor(X, requires_grad=True), graphc.tensor(X, requires_grad=True)
    out, expected = graphc.compile(Masked())(x), Masked()(x_eager)
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), x_eager.grad.numpy())
