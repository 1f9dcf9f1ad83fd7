"""nn.functional against PyTorch (values and gradients), finite differences in float64, and tracing."""
import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from numeric import numeric_gradient

rng = np.random.default_rng(0)
N, C = 6, 4


def index_target(shape=(N,), ignore=None, count=2):
    target = rng.integers(0, C, shape)
    if ignore is not None:
        target.flat[:count] = ignore
    return target


def probabilities(shape=(N, C), axis=1):
    p = rng.uniform(0.1, 1.0, shape)
    return p / p.sum(axis, keepdims=True)


CLASS_WEIGHT = np.array([0.5, 2.0, 1.0, 3.0])

# (function, input shape, target, keyword arguments); the reduction is parametrized separately
LOSSES = {
    "mse": ("mse_loss", (N, 3), rng.standard_normal((N, 3)), {}),
    "nll": ("nll_loss", (N, C), index_target(), {}),
    "nll_weight": ("nll_loss", (N, C), index_target(), {"weight": CLASS_WEIGHT}),
    "nll_ignore": ("nll_loss", (N, C), index_target(ignore=-100), {"weight": CLASS_WEIGHT}),
    "nll_ignore_valid_class": ("nll_loss", (N, C), index_target(ignore=1), {"ignore_index": 1}),
    "nll_kdim": ("nll_loss", (2, C, 3), index_target((2, 3), ignore=-100, count=1), {}),
    "ce": ("cross_entropy", (N, C), index_target(), {}),
    "ce_weight": ("cross_entropy", (N, C), index_target(), {"weight": CLASS_WEIGHT}),
    "ce_ignore": ("cross_entropy", (N, C), index_target(ignore=-100), {}),
    "ce_ignore_weight": ("cross_entropy", (N, C), index_target(ignore=2), {"weight": CLASS_WEIGHT, "ignore_index": 2}),
    "ce_smoothing": ("cross_entropy", (N, C), index_target(), {"label_smoothing": 0.1}),
    "ce_smoothing_weight_ignore": ("cross_entropy", (N, C), index_target(ignore=-100),
                                   {"label_smoothing": 0.2, "weight": CLASS_WEIGHT}),
    "ce_smoothing_ignore": ("cross_entropy", (N, C), index_target(ignore=3), {"label_smoothing": 0.3,
                                                                              "ignore_index": 3}),
    "ce_probs": ("cross_entropy", (N, C), probabilities(), {}),
    "ce_probs_weight_smoothing": ("cross_entropy", (N, C), probabilities(), {"weight": CLASS_WEIGHT,
                                                                            "label_smoothing": 0.15}),
    "ce_kdim": ("cross_entropy", (2, C, 3), index_target((2, 3)), {"weight": CLASS_WEIGHT, "label_smoothing": 0.1}),
    "ce_kdim_probs": ("cross_entropy", (2, C, 3), probabilities((2, C, 3)), {}),
    "ce_single_sample": ("cross_entropy", (C,), np.array(2), {}),
}
REDUCTIONS = ("mean", "sum", "none")


def _run(lib, module, name, x, target, kw, reduction, dtype):
    """Loss and gradients (input, float target) for one library; `lib` makes tensors from arrays."""
    xt = lib(x.astype(dtype), requires_grad=True)
    floating = target.dtype.kind == "f"
    tt = lib(target.astype(dtype), requires_grad=True) if floating else lib(target)
    kwargs = {k: lib(v.astype(dtype)) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    out = getattr(module, name)(xt, tt, reduction=reduction, **kwargs)
    seed = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(dtype)
    (out * lib(seed)).sum().backward()
    return out.detach().numpy(), xt.grad.numpy(), tt.grad.numpy() if floating else None


def _graphc_tensor(a, requires_grad=False):
    return graphc.tensor(a, requires_grad=requires_grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", LOSSES)
def test_losses_match_pytorch(torch, case, reduction):
    name, shape, target, kw = LOSSES[case]
    x = np.random.default_rng(2).standard_normal(shape)
    ours = _run(_graphc_tensor, F, name, x, target, kw, reduction, np.float32)
    theirs = _run(lambda a, requires_grad=False: torch.tensor(a, requires_grad=requires_grad),
                  torch.nn.functional, name, x, target, kw, reduction, np.float32)
    for a, b in zip(ours, theirs):
        if b is not None:
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", LOSSES)
def test_loss_gradients_match_finite_differences(case, reduction):
    name, shape, target, kw = LOSSES[case]
    x = np.random.default_rng(3).standard_normal(shape)
    _, grad_x, grad_t = _run(_graphc_tensor, F, name, x, target, kw, reduction, np.float64)

    def scalar(x_value, t_value):
        out = _run(_graphc_tensor, F, name, x_value, t_value, kw, reduction, np.float64)[0]
        return float((out * np.random.default_rng(1).standard_normal(out.shape)).sum())
    np.testing.assert_allclose(grad_x, numeric_gradient(lambda v: scalar(v, target), x), rtol=1e-6, atol=1e-8)
    if grad_t is not None:
        np.testing.assert_allclose(grad_t, numeric_gradient(lambda v: scalar(x, v), target), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", ["mse", "nll_ignore", "ce_smoothing_weight_ignore", "ce_probs", "ce_kdim"])
def test_traced_losses_match_eager(case):
    name, shape, target, kw = LOSSES[case]
    x = graphc.tensor(np.random.default_rng(4).standard_normal(shape).astype(np.float32))
    t = graphc.tensor(target.astype(np.float32) if target.dtype.kind == "f" else target)
    kwargs = {k: graphc.tensor(v.astype(np.float32)) if isinstance(v, np.ndarray) else v for k, v in kw.items()}

    def loss(x, t):
        return getattr(F, name)(x, t, **kwargs)
    program = graphc.trace(loss, x, t)
    np.testing.assert_allclose(program(x, t).numpy(), loss(x, t).numpy(), rtol=1e-6)


def test_loss_argument_errors():
    x = graphc.randn(3, 4)
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        F.cross_entropy(x, graphc.tensor([0, 4, 1]))
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        F.nll_loss(x, graphc.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.nll_loss(x, graphc.tensor([0, 1, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, graphc.tensor([0, 1, 1]), label_smoothing=1.5)
    with pytest.raises(RuntimeError, match="expected scalar type Long"):
        F.nll_loss(x, graphc.randn(3))
    with pytest.raises(RuntimeError, match="multi-target not supported"):  # not probabilities: not input's shape
        F.cross_entropy(x, graphc.randn(3, 5))
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(x, graphc.randn(1, 4))


def test_legacy_reduction_flags(torch):
    x, t = graphc.randn(3, 4), graphc.tensor([0, 1, 3])
    with pytest.warns(UserWarning, match="please use reduction='sum' instead"):
        assert F.nll_loss(x, t, size_average=False).item() == pytest.approx(F.nll_loss(x, t, reduction="sum").item())
    with pytest.warns(UserWarning, match="please use reduction='none' instead"):
        assert F.cross_entropy(x, t, reduce=False).shape == (3,)


def _compare(torch, ours, theirs, *arrays, atol=1e-6):
    """Run the same function in both libraries; compare outputs and every input's gradient."""
    g_in = [graphc.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    g_out, t_out = ours(*g_in), theirs(*t_in)
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), atol=atol)
    seed = np.random.default_rng(5).standard_normal(tuple(t_out.shape)).astype(np.float32)
    g_out.backward(seed)
    t_out.backward(torch.from_numpy(seed))
    for g, t in zip(g_in, t_in):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), atol=atol)


@pytest.mark.parametrize("x_shape", [(5, 3), (3,), (2, 4, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_pytorch(torch, x_shape, bias):
    r = np.random.default_rng(6)
    arrays = [r.standard_normal(x_shape).astype(np.float32), r.standard_normal((7, 3)).astype(np.float32)]
    arrays += [r.standard_normal(7).astype(np.float32)] if bias else []
    _compare(torch, F.linear, torch.nn.functional.linear, *arrays, atol=1e-5)


@pytest.mark.parametrize("name,kw", [("relu", {}), ("tanh", {}), ("sigmoid", {}), ("softmax", {"dim": 1}),
                                     ("log_softmax", {"dim": 1}), ("softmax", {"dim": 0}),
                                     ("log_softmax", {"dim": -1})])
def test_activations_match_pytorch(torch, name, kw):
    x = np.random.default_rng(7).standard_normal((4, 5)).astype(np.float32)
    _compare(torch, lambda a: getattr(F, name)(a, **kw), lambda a: getattr(torch.nn.functional, name)(a, **kw), x)


def test_softmax_implicit_dim_warns_like_pytorch(torch):
    x = np.random.default_rng(8).standard_normal((2, 3, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        ours = F.softmax(graphc.tensor(x))
    with pytest.warns(UserWarning):
        theirs = torch.nn.functional.softmax(torch.tensor(x))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-6)
    assert F.log_softmax(graphc.tensor(x), dim=2, dtype=graphc.float64).dtype == "float64"
