"""Eager tensors against PyTorch: values and gradients of the tensor API."""
import numpy as np
import pytest

import graphc

torch = pytest.importorskip("torch")
rng = np.random.default_rng(0)


def pair(*shape, positive=False):
    data = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    data = data.astype(np.float32)
    return graphc.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)


UNARY = {
    "neg": lambda t: -t, "exp": lambda t: t.exp(), "log": lambda t: t.log(), "sqrt": lambda t: t.sqrt(),
    "tanh": lambda t: t.tanh(), "sigmoid": lambda t: t.sigmoid(), "relu": lambda t: t.relu(),
    "square": lambda t: t ** 2, "rpow": lambda t: 2.0 ** t, "softmax": lambda t: t.softmax(1),
    "log_softmax": lambda t: t.log_softmax(-1), "sum": lambda t: t.sum(), "sum_dim": lambda t: t.sum(1),
    "sum_keepdim": lambda t: t.sum(0, keepdim=True), "mean": lambda t: t.mean(), "mean_dims": lambda t: t.mean((0, 1)),
    "mean_keepdim": lambda t: t.mean(-1, keepdim=True), "view": lambda t: t.view(-1, 2),
    "reshape": lambda t: t.reshape(2, -1), "flatten": lambda t: t.flatten(), "t": lambda t: t.t(),
    "transpose": lambda t: t.transpose(0, 1), "scalar_ops": lambda t: (3 - t) / 2 + t * 0.5,
    "rdiv": lambda t: 1.0 / (t * t + 1),
}
BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1), "pow": lambda a, b: (a * a + 1) ** b, "matmul": None,
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_torch(name):
    positive = name in ("log", "sqrt")
    g, t = pair(4, 6, positive=positive)
    gout, tout = UNARY[name](g), UNARY[name](t)
    assert tuple(gout.shape) == tuple(tout.shape)
    np.testing.assert_allclose(gout.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    gout.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(k for k in BINARY if BINARY[k]))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1))])
def test_binary_broadcasting_matches_torch(name, shapes):
    (ga, ta), (gb, tb) = pair(*shapes[0]), pair(*shapes[1])
    gout, tout = BINARY[name](ga, gb), BINARY[name](ta, tb)
    np.testing.assert_allclose(gout.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    (gout * gout).sum().backward()
    (tout * tout).sum().backward()
    np.testing.assert_allclose(ga.grad.numpy(), ta.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gb.grad.numpy(), tb.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((3, 4), (2, 4, 5))])
def test_matmul_matches_torch(shapes):
    (ga, ta), (gb, tb) = pair(*shapes[0]), pair(*shapes[1])
    gout, tout = ga @ gb, ta @ tb
    np.testing.assert_allclose(gout.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-5)
    gout.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(ga.grad.numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb.grad.numpy(), tb.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_constructors_and_metadata():
    assert tuple(graphc.Tensor(3, 5).shape) == (3, 5)
    assert graphc.tensor([1.0, 2.0]).dtype == graphc.float32
    assert graphc.tensor([1, 2]).dtype == graphc.int64
    assert graphc.tensor(np.zeros(2)).dtype == graphc.float64
    x = graphc.randn(2, 3)
    assert x.size(1) == 3 and x.shape == (2, 3) and x.dim() == 2 and x.numel() == 6
    assert graphc.zeros(2, 2).sum().item() == 0 and graphc.ones((2, 2)).sum().item() == 4
    graphc.manual_seed(3)
    a = graphc.randn(4)
    graphc.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), graphc.randn(4).numpy())


def test_grad_modes_detach_and_accumulation():
    x = graphc.tensor([1.0, 2.0], requires_grad=True)
    with graphc.no_grad():
        y = x * 2
    assert not y.requires_grad
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    assert not x.detach().requires_grad
    with pytest.raises(RuntimeError):
        graphc.tensor([1.0]).backward()


def test_float64_is_kept():
    x = graphc.tensor(np.ones((2, 2)), requires_grad=True)
    y = (x * 2.0).exp().sum()
    assert y.dtype == graphc.float64
    y.backward()
    assert x.grad.dtype == graphc.float64


REPR_CASES = {
    "integral": lambda m: m.tensor([1.0, 2.0]), "fractions": lambda m: m.tensor([[1.5, 2.0], [3.0, 4.25]]),
    "scalar": lambda m: m.tensor(3.5), "tiny": lambda m: m.tensor([1e-5, 1.0]), "huge": lambda m: m.tensor([1e9, 1.0]),
    "non_finite": lambda m: m.tensor([float("nan"), 1.5, float("inf")]), "negative": lambda m: m.tensor([-1.25, 10.0]),
    "int": lambda m: m.tensor([1, -2]), "bool": lambda m: m.tensor([1.0, 2.0]) > 1.5,
    "float64": lambda m: m.tensor([0.5], dtype=m.float64), "requires_grad": lambda m: m.tensor([1.0], requires_grad=True),
    "int_true_division": lambda m: m.tensor([1, 2, 3]) / 2, "int_times_float": lambda m: m.tensor([1, 2]) * 0.5,
    "scalar_over_int": lambda m: 3 / m.tensor([2, 4]), "bool_times_float": lambda m: m.tensor([True, False]) * 1.5,
}


@pytest.mark.parametrize("name", sorted(REPR_CASES))
def test_values_dtypes_and_repr_match_torch(name):
    ours, theirs = REPR_CASES[name](graphc), REPR_CASES[name](torch)
    assert repr(ours) == repr(theirs).replace("torch.", "graphc.")
    assert str(ours.dtype).removeprefix("graphc.") == str(theirs.dtype).removeprefix("torch.")


def test_eager_use_does_not_load_llvm_and_runtime_imports_first():
    import subprocess
    import sys
    code = ("import sys, graphc; graphc.randn(2).exp(); assert 'llvmlite' not in sys.modules; "
            "import runtime.executor, graphc.runners; graphc.compile")
    subprocess.run([sys.executable, "-c", code], check=True)
    subprocess.run([sys.executable, "-c", "import graphc.runners; import graphc; graphc.compile_train_step"],
                   check=True)
