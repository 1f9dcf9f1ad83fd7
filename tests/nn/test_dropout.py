"""Dropout: masks from the counter-based generator, eager and compiled (forward, backward, train
step), reproducible under manual_seed, fresh per call, and PyTorch's semantics around them."""
import numpy as np
import pytest

import graphc
import graphc.nn as gnn
import graphc.nn.functional as GF


class Net(gnn.Module):
    def __init__(self, p=0.3, channels=False):
        super().__init__()
        self.fc = gnn.Linear(6, 8)
        self.drop = gnn.Dropout2d(p) if channels else gnn.Dropout(p)

    def forward(self, x):
        h = self.fc(x)
        return self.drop(h.reshape(4, 2, 2, 2) if isinstance(self.drop, gnn.Dropout2d) else h)


def _x(dtype="float32"):
    return graphc.tensor(np.random.default_rng(3).standard_normal((4, 6)).astype(dtype))


def test_mask_statistics_and_scaling():
    for p in (0.2, 0.5, 0.9):
        out = GF.dropout(graphc.ones(200, 500), p).numpy()
        kept = out != 0
        assert abs(kept.mean() - (1 - p)) < 0.01
        np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)


def test_uniform_bits_are_spread_over_the_unit_interval():
    u = graphc.ops.functions.random_uniform(graphc.tensor(np.int64(12345)), (100000,), "float64").numpy()
    assert u.min() >= 0 and u.max() < 1
    counts, _ = np.histogram(u, bins=10, range=(0, 1))
    assert np.all(np.abs(counts - 10000) < 500)
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.02  # neighbours are not correlated


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("channels", [False, True])
def test_compiled_masks_equal_eager_masks_for_the_same_seed(dtype, channels):
    model = Net(channels=channels).to(dtype)
    x = _x(dtype)
    graphc.manual_seed(7)
    with graphc.no_grad():
        eager = model(x).numpy()
    compiled = graphc.compile(model)
    graphc.manual_seed(7)
    with graphc.no_grad():
        native = compiled(x).numpy()
    np.testing.assert_array_equal(native == 0, eager == 0)
    np.testing.assert_allclose(native, eager, **(dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12)))


def test_compiled_runs_are_reproducible_and_fresh_per_call():
    compiled = graphc.compile(Net(0.5))
    x = _x()
    with graphc.no_grad():
        graphc.manual_seed(1)
        first, second = compiled(x).numpy(), compiled(x).numpy()
        graphc.manual_seed(1)
        again = compiled(x).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first == 0, second == 0)


@pytest.mark.parametrize("p", [0.25, 0.6])
def test_gradient_is_the_mask_over_one_minus_p_eager_and_compiled(p):
    class Drop(gnn.Module):
        def forward(self, x):
            return GF.dropout(x, p)

    data = np.random.default_rng(4).uniform(0.5, 2.0, (16, 32)).astype("float32")
    for model in (Drop(), graphc.compile(Drop())):
        graphc.manual_seed(2)
        x = graphc.tensor(data, requires_grad=True)
        out = model(x)
        out.sum().backward()
        mask = out.detach().numpy() != 0
        np.testing.assert_allclose(x.grad.numpy(), mask / np.float32(1 - p), rtol=1e-6)
        np.testing.assert_allclose(out.detach().numpy(), np.where(mask, data / np.float32(1 - p), 0), rtol=1e-6)
    graphc.manual_seed(2)
    eager_mask = Drop()(graphc.tensor(data)).numpy() != 0
    np.testing.assert_array_equal(eager_mask, mask)


def test_compiled_backward_uses_the_forward_mask():
    model = Net(0.5)
    compiled = graphc.compile(model)
    x = _x()
    graphc.manual_seed(3)
    model(x).sum().backward()
    expected = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    model.zero_grad()
    graphc.manual_seed(3)
    compiled(x).sum().backward()
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), expected[n], rtol=1e-5, atol=1e-6)


def test_train_step_matches_eager_steps_under_the_same_seed():
    eager_model, compiled_model = Net(0.4), Net(0.4)
    compiled_model.load_state_dict(eager_model.state_dict())
    x, target = _x(), graphc.tensor(np.random.default_rng(5).standard_normal((4, 8)).astype("float32"))
    optimizer = graphc.optim.SGD(eager_model.parameters(), lr=0.05)
    step = graphc.compile_train_step(compiled_model, gnn.MSELoss(), graphc.optim.SGD(compiled_model.parameters(), lr=0.05))
    graphc.manual_seed(11)
    eager_losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = gnn.MSELoss()(eager_model(x), target)
        loss.backward()
        optimizer.step()
        eager_losses.append(loss.item())
    graphc.manual_seed(11)
    losses = [step(x, target).item() for _ in range(3)]
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-5)
    assert len(set(losses)) == 3  # each step drew a new mask (and updated the weights)
    for (n, p), q in zip(compiled_model.named_parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=n)


def test_eval_mode_and_p_zero_are_the_identity():
    x = _x()
    assert gnn.Dropout(0.5).eval()(x) is x
    assert GF.dropout(x, 0.0) is x
    assert GF.dropout(x, 0.7, training=False) is x
    model = Net(0.5).eval()
    with graphc.no_grad():
        np.testing.assert_allclose(graphc.compile(model)(x).numpy(), model.fc(x).numpy(), rtol=1e-5, atol=1e-6)


def test_p_one_gives_zeros_and_a_zero_gradient_as_pytorch(torch):
    x = graphc.tensor([1.0, -2.0, 3.0], requires_grad=True)
    out = GF.dropout(x, 1.0)
    out.sum().backward()
    tx = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    t_out = torch.nn.functional.dropout(tx, 1.0)
    t_out.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), t_out.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_bad_probabilities_raise_as_pytorch(torch):
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError) as theirs:
            torch.nn.Dropout(p)
        with pytest.raises(ValueError) as mine:
            gnn.Dropout(p)
        assert str(mine.value) == str(theirs.value)
        with pytest.raises(ValueError, match="dropout probability"):
            GF.dropout(_x(), p)


def test_reprs_match_pytorch(torch):
    def make(nn):
        return [nn.Dropout(), nn.Dropout(0.2, inplace=True), nn.Dropout2d(0.1)]
    assert [repr(m) for m in make(gnn)] == [repr(m) for m in make(torch.nn)]


def test_dropout2d_drops_whole_channels():
    x = graphc.ones(64, 32, 3, 3)
    out = GF.dropout2d(x, 0.5).numpy()
    per_channel = out.reshape(64, 32, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert abs((per_channel[..., 0] == 0).mean() - 0.5) < 0.05
    with pytest.warns(UserWarning, match="3D input"):
        assert GF.dropout2d(graphc.ones(4, 5, 6), 0.5).shape == (4, 5, 6)


def test_inplace_dropout_writes_into_its_input():
    x = graphc.ones(10, 10)
    assert GF.dropout(x, 0.5, inplace=True) is x
    assert set(np.unique(x.numpy())) <= {0.0, 2.0}


def test_bernoulli_eagerly_and_compiled():
    t = graphc.zeros(300, 300)
    assert t.bernoulli_(0.3) is t and abs(t.numpy().mean() - 0.3) < 0.01
    assert set(np.unique(t.numpy())) == {0.0, 1.0}
    probs = graphc.tensor(np.tile([0.0, 1.0, 0.5], (1000, 1)).astype("float32"))
    draws = graphc.bernoulli(probs).numpy()
    assert draws[:, 0].sum() == 0 and draws[:, 1].all() and abs(draws[:, 2].mean() - 0.5) < 0.05

    class Sample(gnn.Module):
        def forward(self, p):
            return graphc.bernoulli(p)

    graphc.manual_seed(9)
    eager = Sample()(probs).numpy()
    graphc.manual_seed(9)
    np.testing.assert_array_equal(graphc.compile(Sample())(probs).numpy(), eager)


class TwoDrops(gnn.Module):
    """Two dropouts (keys drawn in forward's order) and one whose value is thrown away."""

    def __init__(self):
        super().__init__()
        self.fc = gnn.Linear(6, 8)
        self.first, self.second, self.unused = gnn.Dropout(0.5), gnn.Dropout(0.2), gnn.Dropout(0.5)

    def forward(self, x):
        h = self.first(self.fc(x))
        self.unused(h)
        return self.second(h * 2.0)


def test_keys_are_bound_by_role_in_eager_order_and_the_generator_advances_alike():
    model, x = TwoDrops(), _x()
    program = graphc.trace(model, x)
    roles = [n.role for n in program.graph.inputs if n.role.kind == "rng"]
    assert [r.key for r in roles] == [0, 1, 2] and program.random_keys == 3
    graphc.manual_seed(4)
    with graphc.no_grad():
        eager = model(x).numpy()
    after_eager = graphc.randn(3).numpy()
    compiled = graphc.compile(model)
    graphc.manual_seed(4)
    with graphc.no_grad():
        native = compiled(x).numpy()
    np.testing.assert_array_equal(native == 0, eager == 0)
    np.testing.assert_allclose(native, eager, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(graphc.randn(3).numpy(), after_eager)  # the dropped key was drawn too
