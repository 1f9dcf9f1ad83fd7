"""BatchNorm1d/2d, LayerNorm, GroupNorm and their functional forms against PyTorch with the same
weights: eager forward and backward, compiled forward and backward, compiled train steps that
update the running statistics as PyTorch does, and gradients against finite differences."""
import re

import numpy as np
import pytest

import graphc
import graphc.nn as gnn
import graphc.nn.functional as F

rng = np.random.default_rng(0)
TOL = dict(rtol=1e-4, atol=2e-5)
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")

# (layer name, constructor arguments, input shape)
LAYERS = [
    ("BatchNorm1d", dict(num_features=4), (6, 4)),
    ("BatchNorm1d", dict(num_features=3), (5, 3, 7)),
    ("BatchNorm1d", dict(num_features=4, momentum=None), (6, 4)),
    ("BatchNorm1d", dict(num_features=4, affine=False), (6, 4)),
    ("BatchNorm1d", dict(num_features=4, track_running_stats=False), (6, 4)),
    ("BatchNorm1d", dict(num_features=4, bias=False, eps=1e-3, momentum=0.3), (6, 4)),
    ("BatchNorm2d", dict(num_features=3), (4, 3, 5, 2)),
    ("BatchNorm2d", dict(num_features=3, momentum=None, affine=False), (4, 3, 5, 2)),
    ("LayerNorm", dict(normalized_shape=5), (3, 4, 5)),
    ("LayerNorm", dict(normalized_shape=(4, 5), eps=1e-3), (3, 4, 5)),
    ("LayerNorm", dict(normalized_shape=5, elementwise_affine=False), (3, 5)),
    ("LayerNorm", dict(normalized_shape=5, bias=False), (3, 5)),
    ("GroupNorm", dict(num_groups=2, num_channels=4), (3, 4, 5)),
    ("GroupNorm", dict(num_groups=3, num_channels=6, affine=False), (2, 6, 2, 3)),
    ("GroupNorm", dict(num_groups=1, num_channels=4, bias=False), (3, 4)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in args.items())}-{shape}" for name, args, shape in LAYERS]


def pair(torch, name, args):
    """The graphc layer and the torch layer, with random affine weights copied over."""
    g, t = getattr(gnn, name)(**args), getattr(torch.nn, name)(**args)
    with graphc.no_grad():  # as in PyTorch, a parameter is written in place under no_grad
        for p in g.parameters():
            p.copy_(rng.standard_normal(p.shape).astype(np.float32))
    if getattr(g, "running_var", None) is not None:
        g.running_mean.copy_(rng.standard_normal(g.running_mean.shape).astype(np.float32))
        g.running_var.copy_(rng.uniform(0.5, 2.0, g.running_var.shape).astype(np.float32))
    t.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in g.state_dict().items()})
    return g, t


def assert_same_state(g, t):
    t_state = t.state_dict()
    assert list(g.state_dict()) == list(t_state)
    for key, value in g.state_dict().items():
        np.testing.assert_allclose(value.numpy(), t_state[key].numpy(), **TOL, err_msg=key)


def run_both(g_layer, t_layer, torch, x, weights):
    """Forward and backward of sum(out * weights) in graphc (g_layer may be compiled) and torch;
    outputs and gradients of the input, weight and bias compared."""
    gx, tx = graphc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g_out, t_out = g_layer(gx), t_layer(tx)
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), **TOL)
    (g_out * graphc.tensor(weights)).sum().backward()
    (t_out * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), **TOL, err_msg="input grad")
    for (name, p), (_, q) in zip(g_layer.named_parameters(), t_layer.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), **TOL, err_msg=f"{name} grad")
        p.grad, q.grad = None, None


@pytest.mark.parametrize("name, args, shape", LAYERS, ids=IDS)
def test_repr_state_dict_and_init_match_torch(torch, name, args, shape):
    g, t = getattr(gnn, name)(**args), getattr(torch.nn, name)(**args)
    assert repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict())
    for key, value in t.state_dict().items():
        assert str(g.state_dict()[key].dtype).split(".")[-1] == str(value.dtype).split(".")[-1], key
        np.testing.assert_array_equal(g.state_dict()[key].numpy(), value.numpy(), err_msg=key)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name, args, shape", LAYERS, ids=IDS)
def test_forward_backward_and_running_statistics_match_torch(torch, name, args, shape, compiled):
    g, t = pair(torch, name, args)
    layer = graphc.compile(g) if compiled else g
    for step in range(3):  # train mode: batch statistics, running statistics updated each call
        x = rng.standard_normal(shape).astype(np.float32) * 2 + 1
        run_both(layer, t, torch, x, rng.standard_normal(shape).astype(np.float32))
        assert_same_state(g, t)
    g.eval(), t.eval()
    for step in range(2):  # eval mode: running statistics used, not changed
        x = rng.standard_normal(shape).astype(np.float32)
        run_both(layer, t, torch, x, rng.standard_normal(shape).astype(np.float32))
        with graphc.no_grad(), torch.no_grad():
            np.testing.assert_allclose(layer(graphc.tensor(x)).numpy(), t(torch.tensor(x)).numpy(), **TOL)
        assert_same_state(g, t)


def test_compiled_forward_without_grad_updates_buffers_in_train_mode_only(torch):
    g, t = pair(torch, "BatchNorm2d", dict(num_features=3, momentum=None))
    fast = graphc.compile(g)
    for training in (True, True, False, True, False):
        g.train(training), t.train(training)
        x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
        with graphc.no_grad(), torch.no_grad():
            np.testing.assert_allclose(fast(graphc.tensor(x)).numpy(), t(torch.tensor(x)).numpy(), **TOL)
        assert_same_state(g, t)
    assert int(g.num_batches_tracked) == 3
    assert fast.specializations() == 2  # one program per mode, reused when the mode comes back


def test_switching_one_layer_to_eval_picks_another_program(torch):
    g = gnn.Sequential(gnn.Linear(4, 4), gnn.BatchNorm1d(4))
    t = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    t.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in g.state_dict().items()})
    fast = graphc.compile(g)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    with graphc.no_grad(), torch.no_grad():
        fast(graphc.tensor(x)), t(torch.tensor(x))
        g[1].eval(), t[1].eval()  # the root stays in train mode
        np.testing.assert_allclose(fast(graphc.tensor(x)).numpy(), t(torch.tensor(x)).numpy(), **TOL)
    assert_same_state(g, t)


@pytest.mark.parametrize("name, shape", [("BatchNorm1d", (1, 4)), ("BatchNorm1d", (1, 4, 1)),
                                         ("BatchNorm2d", (1, 4, 1, 1))])
def test_one_value_per_channel_in_train_mode_raises_like_torch(torch, name, shape):
    g, t = getattr(gnn, name)(4), getattr(torch.nn, name)(4)
    with pytest.raises(ValueError) as expected:
        t(torch.zeros(shape))
    message = str(expected.value).replace("torch.Size", "graphc.Size")
    for layer in (graphc.compile(g), g):
        with pytest.raises(ValueError, match="Expected more than 1 value per channel when training") as got:
            layer(graphc.zeros(*shape))
        assert str(got.value).endswith(message)
        if layer is not g:  # the compiled call fails while tracing: nothing changed
            assert int(g.num_batches_tracked) == 0
    assert int(g.num_batches_tracked) == int(t.num_batches_tracked) == 1  # eagerly counted first, as in torch
    g.eval()
    assert g(graphc.zeros(*shape)).shape == shape  # eval mode takes a single sample


@pytest.mark.parametrize("name, shape, message", [
    ("BatchNorm1d", (2, 4, 1, 1), "expected 2D or 3D input (got 4D input)"),
    ("BatchNorm2d", (2, 4), "expected 4D input (got 2D input)")])
def test_wrong_input_rank_raises_like_torch(torch, name, shape, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(torch.nn, name)(4)(torch.zeros(shape))
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(gnn, name)(4)(graphc.zeros(*shape))


def test_group_norm_checks_groups_like_torch(torch):
    with pytest.raises(ValueError, match=r"num_channels \(5\) must be divisible by num_groups \(2\)"):
        torch.nn.GroupNorm(2, 5)
    with pytest.raises(ValueError, match=r"num_channels \(5\) must be divisible by num_groups \(2\)"):
        gnn.GroupNorm(2, 5)


def test_functional_forms_match_torch(torch):
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    w, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    mean, var = rng.standard_normal(3).astype(np.float32), rng.uniform(0.5, 2, 3).astype(np.float32)
    g_stats = [graphc.tensor(mean), graphc.tensor(var)]
    t_stats = [torch.tensor(mean), torch.tensor(var)]
    G, T = (graphc.tensor, F), (torch.tensor, torch.nn.functional)
    for training in (True, False):
        outs = [mod.batch_norm(make(x), *stats, make(w), make(b), training, 0.2, 1e-3)
                for (make, mod), stats in ((G, g_stats), (T, t_stats))]
        np.testing.assert_allclose(outs[0].numpy(), outs[1].numpy(), **TOL)
        for got, want in zip(g_stats, t_stats):
            np.testing.assert_allclose(got.numpy(), want.numpy(), **TOL)
    outs = [mod.batch_norm(make(x), None, None, training=True) for make, mod in (G, T)]
    np.testing.assert_allclose(outs[0].numpy(), outs[1].numpy(), **TOL)
    outs = [mod.layer_norm(make(x), (3, 4), make(np.ones((3, 4), np.float32) * 2), None, 1e-4) for make, mod in (G, T)]
    np.testing.assert_allclose(outs[0].numpy(), outs[1].numpy(), **TOL)
    outs = [mod.group_norm(make(x), 3, make(w), make(b)) for make, mod in (G, T)]
    np.testing.assert_allclose(outs[0].numpy(), outs[1].numpy(), **TOL)
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[4\], expected input with shape \[\*, 4\]"):
        F.layer_norm(graphc.zeros(2, 3), 4)


# --- compiled train steps -------------------------------------------------------------------------
def mlp(nn, momentum=0.1):
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8, momentum=momentum), nn.ReLU(), nn.Linear(8, 3))


def image_net(nn):
    """[N, C, H, W] without convolutions: BatchNorm2d, a per-pixel Linear on channels-last, BatchNorm2d
    again, a spatial mean and a classifier."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn1, self.mix, self.bn2 = nn.BatchNorm2d(3), nn.Linear(3, 5), nn.BatchNorm2d(5, momentum=None)
            self.head = nn.Linear(5, 4)

        def forward(self, x):
            y = self.mix(self.bn1(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            return self.head(self.bn2(y).relu().mean((2, 3)))
    return Net()


@pytest.mark.parametrize("build, shape, classes", [(mlp, (8, 6), 3), (lambda nn: mlp(nn, None), (8, 6), 3),
                                                   (image_net, (4, 3, 3, 2), 4)], ids=["mlp", "mlp-cumulative", "nchw"])
def test_compiled_train_steps_update_running_statistics_like_torch(torch, build, shape, classes):
    g, t = build(gnn), build(torch.nn)
    t.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in g.state_dict().items()})
    step = graphc.compile_train_step(g, gnn.CrossEntropyLoss(), graphc.optim.SGD(g.parameters(), lr=0.1))
    t_opt = torch.optim.SGD(t.parameters(), lr=0.1)
    for _ in range(3):
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.integers(0, classes, shape[0])
        loss = step(graphc.tensor(x), graphc.tensor(y))
        t_opt.zero_grad()
        t_loss = torch.nn.functional.cross_entropy(t(torch.tensor(x)), torch.tensor(y))
        t_loss.backward()
        t_opt.step()
        np.testing.assert_allclose(loss.item(), t_loss.item(), **TOL)
        assert_same_state(g, t)
    g.eval(), t.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    with graphc.no_grad(), torch.no_grad():
        np.testing.assert_allclose(graphc.compile(g)(graphc.tensor(x)).numpy(), t(torch.tensor(x)).numpy(), **TOL)
    assert_same_state(g, t)


def test_a_failed_train_step_leaves_the_running_statistics_alone():
    g = mlp(gnn)
    step = graphc.compile_train_step(g, gnn.CrossEntropyLoss(), graphc.optim.SGD(g.parameters(), lr=0.1))
    x = graphc.randn(8, 6)
    step(x, graphc.tensor([0] * 8))
    before = {k: v.numpy().copy() for k, v in g.state_dict().items()}
    with pytest.raises(IndexError, match="Target 99 is out of bounds"):
        step(x, graphc.tensor([0] * 7 + [99]))
    for key, value in g.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key], err_msg=key)
    assert int(g[1].num_batches_tracked) == 1


# --- gradients against finite differences (float64) -------------------------------------------
def central_differences(f, arrays, k, weights, eps=1e-6):
    grad = np.zeros_like(arrays[k])
    for idx in np.ndindex(arrays[k].shape):
        values = []
        for sign in (1, -1):
            shifted = [a.copy() for a in arrays]
            shifted[k][idx] += sign * eps
            values.append((f(*map(graphc.tensor, shifted)).numpy() * weights).sum())
        grad[idx] = (values[0] - values[1]) / (2 * eps)
    return grad


@pytest.mark.parametrize("f, shapes", [
    (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(5, 3, 2), (3,), (3,)]),
    (lambda x, w, b: F.batch_norm(x, graphc.zeros(3).double(), graphc.ones(3).double() * 2, w, b), [(5, 3), (3,), (3,)]),
    (lambda x, w, b: F.layer_norm(x, (2, 3), w, b), [(4, 2, 3), (2, 3), (2, 3)]),
    (lambda x, w, b: F.group_norm(x, 2, w, b), [(3, 4, 2), (4,), (4,)]),
], ids=["batch_norm-train", "batch_norm-eval", "layer_norm", "group_norm"])
def test_gradients_match_finite_differences(f, shapes):
    arrays = [rng.standard_normal(s) for s in shapes]
    tensors = [graphc.tensor(a, requires_grad=True) for a in arrays]
    out = f(*tensors)
    weights = rng.standard_normal(out.shape)
    (out * graphc.tensor(weights)).sum().backward()
    for k, t in enumerate(tensors):
        np.testing.assert_allclose(t.grad.numpy(), central_differences(f, arrays, k, weights),
                                   rtol=1e-5, atol=1e-7, err_msg=f"input {k}")


def test_a_buffer_the_backward_reads_is_read_as_it_was_before_the_forward_wrote_it():
    class Scaled(gnn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("s", graphc.tensor([1.0, 2.0, 3.0]))

        def forward(self, x):
            y = x * self.s
            self.s.copy_(self.s * 2)
            return y

    layer = graphc.compile(Scaled())  # (eager autograd keeps no versions: torch would raise there)
    x = graphc.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    layer(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 2, 3]] * 2)
    np.testing.assert_array_equal(layer.s.numpy(), [2, 4, 6])
