"""The tensor function and method surface against PyTorch: values, dtypes, shapes and gradients,
eagerly and inside one compiled model (forward and backward), plus torch's errors."""
import numpy as np
import pytest

import graphc

torch = pytest.importorskip("torch")
rng = np.random.default_rng(0)
X = rng.standard_normal((4, 6)).astype(np.float32)
Y = rng.standard_normal((4, 6)).astype(np.float32)
X[1, 2] = X[1, 4] = X[1].max() + 1  # a tie for max/argmax: the first index wins

# name -> f(lib, x, y) written once for graphc and torch (lib is the module, x and y tensors)
DIFFERENTIABLE = {
    "cat": lambda lib, x, y: lib.cat([x, y * 2], 1),
    "concat": lambda lib, x, y: lib.concat((x, y), dim=-2),
    "stack": lambda lib, x, y: lib.stack([x, y], 1),
    "stack_last": lambda lib, x, y: lib.stack([x, y], -1),
    "split_int": lambda lib, x, y: x.split(4, 1)[1] * 3,
    "split_sizes": lambda lib, x, y: lib.split(x, [1, 3], 0)[1],
    "chunk": lambda lib, x, y: x.chunk(3, 1)[2],
    "narrow": lambda lib, x, y: x.narrow(1, 2, 3),
    "unbind": lambda lib, x, y: x.unbind(1)[3],
    "squeeze_tuple": lambda lib, x, y: x.reshape(4, 1, 6, 1).squeeze((1, 3)),
    "squeeze_all": lambda lib, x, y: x.reshape(1, 4, 1, 6).squeeze(),
    "squeeze_dim": lambda lib, x, y: x.reshape(4, 1, 6).squeeze(1),
    "unsqueeze": lambda lib, x, y: x.unsqueeze(-1) * y.unsqueeze(1)[:, :, :1],
    "permute": lambda lib, x, y: x.reshape(2, 2, 6).permute(2, 0, 1),
    "expand": lambda lib, x, y: x[:, :1].expand(4, 5),
    "expand_as": lambda lib, x, y: x[:1].expand_as(y),
    "view": lambda lib, x, y: x.view(x.size(0), -1, 2),
    "view_as": lambda lib, x, y: x.reshape(6, 4).view_as(y),
    "flatten": lambda lib, x, y: lib.flatten(x.reshape(2, 2, 6), 1),
    "unflatten": lambda lib, x, y: x.unflatten(1, (2, -1)),
    "t": lambda lib, x, y: x.t(),
    "mT": lambda lib, x, y: x.reshape(2, 2, 6).mT,
    "repeat": lambda lib, x, y: x[:2, :3].repeat(2, 1, 3),
    "flip": lambda lib, x, y: x.flip(1),
    "flip_dims": lambda lib, x, y: lib.flip(x[:, 1::2], (0, -1)),
    "index_int": lambda lib, x, y: x[1],
    "index_negative": lambda lib, x, y: x[-1, -2],
    "index_slices": lambda lib, x, y: x[1:, ::2],
    "index_steps": lambda lib, x, y: x[::3, 1:6:4],
    "index_none_ellipsis": lambda lib, x, y: x[None, ..., 2],
    "index_mixed": lambda lib, x, y: x.reshape(2, 2, 6)[:, None, -1, 1::2],
    "index_empty": lambda lib, x, y: x[3:1],
    "max_dim": lambda lib, x, y: x.max(1).values,
    "max_dim_keepdim": lambda lib, x, y: x.max(dim=0, keepdim=True)[0],
    "max_all": lambda lib, x, y: x.max(),
    "min_dim": lambda lib, x, y: lib.min(x, 1).values,
    "min_all": lambda lib, x, y: x.min(),
    "max_binary": lambda lib, x, y: lib.max(x, y),
    "maximum": lambda lib, x, y: lib.maximum(x, y),
    "minimum": lambda lib, x, y: x.minimum(y),
    "clamp": lambda lib, x, y: x.clamp(-0.5, 0.5),
    "clip": lambda lib, x, y: lib.clip(x, min=-0.3),
    "clamp_min": lambda lib, x, y: x.clamp_min(0.1),
    "clamp_max": lambda lib, x, y: lib.clamp_max(x, 0.1),
    "abs": lambda lib, x, y: x.abs(),
    "where": lambda lib, x, y: x.where(x > 0, y),
    "where_function": lambda lib, x, y: lib.where(x > y, x, 0.5),
    "sign": lambda lib, x, y: x.sign() * x,
    "floor": lambda lib, x, y: (x * 3).floor(),
    "ceil": lambda lib, x, y: lib.ceil(x * 3),
    "round": lambda lib, x, y: (x * 3).round(),
    "round_decimals": lambda lib, x, y: lib.round(x, decimals=2),
    "masked_fill": lambda lib, x, y: x.masked_fill(x > 0.5, -1.0),
    "masked_fill_function": lambda lib, x, y: lib.masked_fill(y, x < 0, 2.0),
    "rsqrt": lambda lib, x, y: (x * x + 1).rsqrt(),
    "square": lambda lib, x, y: x.square(),
    "reciprocal": lambda lib, x, y: (x * x + 1).reciprocal(),
    "log1p": lambda lib, x, y: (x * x).log1p(),
    "expm1": lambda lib, x, y: lib.expm1(x),
    "var": lambda lib, x, y: x.var(1),
    "var_unbiased_false": lambda lib, x, y: x.var(0, unbiased=False, keepdim=True),
    "var_correction": lambda lib, x, y: lib.var(x, (0, 1), correction=2),
    "std": lambda lib, x, y: x.std(),
    "std_dim": lambda lib, x, y: lib.std(x, dim=-1, keepdim=True),
    "mean_dtype": lambda lib, x, y: x.mean(1, dtype=lib.float64),
    "sum_dtype": lambda lib, x, y: x.sum((0, 1), dtype=lib.float64),
    "prod": lambda lib, x, y: x.prod(1),
    "prod_all": lambda lib, x, y: (x[:2] + 1).prod(),
    "prod_zeros": lambda lib, x, y: lib.prod(x.clamp(min=0), 0, keepdim=True),
    "mm": lambda lib, x, y: lib.mm(x, y.t()),
    "Tensor.mm": lambda lib, x, y: x.mm(y.t()),
    "bmm": lambda lib, x, y: lib.bmm(x.reshape(2, 2, 6), y.reshape(2, 6, 2)),
    "pow": lambda lib, x, y: lib.pow(x * x + 1, y),
    "rpow": lambda lib, x, y: 2 ** x,
    "exp_log": lambda lib, x, y: lib.log(lib.exp(x) + 1),
    "type_as": lambda lib, x, y: x.double().type_as(y) * 2,
    "float_double": lambda lib, x, y: x.double().float(),
}

# not differentiable: values and dtypes only
VALUES = {
    "argmax": lambda lib, x, y: x.argmax(),
    "argmax_dim": lambda lib, x, y: x.argmax(1),
    "argmax_keepdim": lambda lib, x, y: lib.argmax(x, dim=0, keepdim=True),
    "argmin_dim": lambda lib, x, y: x.argmin(-1),
    "argmin": lambda lib, x, y: lib.argmin(x),
    "max_indices": lambda lib, x, y: x.max(1).indices,
    "min_indices": lambda lib, x, y: x.min(0, keepdim=True).indices,
    "eq": lambda lib, x, y: x.eq(y),
    "ne_scalar": lambda lib, x, y: x.ne(0.5),
    "lt": lambda lib, x, y: lib.lt(x, y),
    "le": lambda lib, x, y: x.le(0),
    "gt": lambda lib, x, y: lib.gt(x, 0.1),
    "ge": lambda lib, x, y: x.ge(y),
    "operators": lambda lib, x, y: (x > y) == (x >= 0),
    "logical_and": lambda lib, x, y: lib.logical_and(x > 0, y > 0),
    "logical_or": lambda lib, x, y: (x > 0).logical_or(y > 0),
    "logical_not": lambda lib, x, y: lib.logical_not(x > 0),
    "logical_xor": lambda lib, x, y: lib.logical_xor(x > 0, y),
    "invert": lambda lib, x, y: ~(x > 0),
    "and_or": lambda lib, x, y: ((x > 0) & (y > 0)) | (x > 1),
    "all": lambda lib, x, y: (x > -5).all(),
    "all_dim": lambda lib, x, y: lib.all(x > -1, 1),
    "any_dim": lambda lib, x, y: (x > 1).any(0, keepdim=True),
    "any_float": lambda lib, x, y: lib.any(x.floor()),
    "long": lambda lib, x, y: (x * 3).long(),
    "int": lambda lib, x, y: (x * 3).int().long(),
    "bool": lambda lib, x, y: x.floor().bool(),
    "sum_bool": lambda lib, x, y: (x > 0).sum(1),
    "sum_long_dtype": lambda lib, x, y: (x > 0).sum(dtype=lib.float32),
    "prod_int": lambda lib, x, y: (x * 3).long().prod(1),
    "bool_plus_int": lambda lib, x, y: (x > 0) + 1,
    "where_ints": lambda lib, x, y: lib.where(x > 0, 1, 0),
    "cat_promotes": lambda lib, x, y: lib.cat([(x * 3).long(), y], 0),
    "new_zeros": lambda lib, x, y: x.double().new_zeros(2, 3),
    "new_ones": lambda lib, x, y: x.long().new_ones((2,)),
    "new_full": lambda lib, x, y: x.new_full((2, 2), 3),
    "new_tensor": lambda lib, x, y: x.new_tensor([1, 2]),
}


def _both(fn, requires_grad=True):
    g = [graphc.tensor(a, requires_grad=requires_grad) for a in (X, Y)]
    t = [torch.tensor(a, requires_grad=requires_grad) for a in (X, Y)]
    return g, t, fn(graphc, *g), fn(torch, *t)


def _same(g, t, **tolerance):
    assert tuple(g.shape) == tuple(t.shape)
    assert str(g.dtype) == str(t.dtype).removeprefix("torch.").replace("int32", "int64")
    np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy().astype(g.dtype), **tolerance)


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
def test_eager_values_and_gradients_match_torch(name):
    (gx, gy), (tx, ty), g, t = _both(DIFFERENTIABLE[name])
    _same(g, t, rtol=1e-5, atol=1e-6)
    weights = rng.standard_normal(tuple(t.shape)).astype(np.float32)
    (g * graphc.tensor(weights)).sum().backward()
    (t * torch.tensor(weights)).sum().backward()
    for a, b in ((gx, tx), (gy, ty)):
        if b.grad is None:
            assert a.grad is None or not a.grad.numpy().any()
        else:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(VALUES))
def test_eager_values_and_dtypes_match_torch(name):
    _, _, g, t = _both(VALUES[name], requires_grad=False)
    _same(g, t)


class Everything(graphc.nn.Module):
    """Every case of the tables in one forward, so one compile covers them all."""

    def __init__(self, cases):
        super().__init__()
        self.cases = cases

    def forward(self, x, y):
        return tuple(fn(graphc, x, y) for fn in self.cases.values())


def test_compiled_forward_and_backward_match_eager():
    model = Everything(DIFFERENTIABLE)
    xs = [graphc.tensor(a, requires_grad=True) for a in (X, Y)]
    es = [graphc.tensor(a, requires_grad=True) for a in (X, Y)]
    compiled = graphc.compile(model)(*xs)
    eager = model(*es)
    weights = [graphc.tensor(rng.standard_normal(tuple(e.shape)).astype(np.float32)) for e in eager]
    for name, c, e in zip(DIFFERENTIABLE, compiled, eager):
        np.testing.assert_allclose(c.detach().numpy(), e.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    graphc.sum(graphc.stack([(c * w).sum() for c, w in zip(compiled, weights)])).backward()
    graphc.sum(graphc.stack([(e * w).sum() for e, w in zip(eager, weights)])).backward()
    for c, e in zip(xs, es):
        np.testing.assert_allclose(c.grad.numpy(), e.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_compiled_values_match_eager():
    model = Everything(VALUES)
    x, y = graphc.tensor(X), graphc.tensor(Y)
    with graphc.no_grad():
        for name, c, e in zip(VALUES, graphc.compile(model)(x, y), model(x, y)):
            assert c.dtype == e.dtype, name
            np.testing.assert_array_equal(c.numpy(), e.numpy(), err_msg=name)


def test_argmax_ties_and_nan_match_torch():
    data = np.array([[1.0, 3.0, 3.0, np.nan, 0.0], [2.0, 2.0, -1.0, 2.0, np.nan]], np.float32)
    data_t = torch.tensor(data)
    for dim in (0, 1, None):
        np.testing.assert_array_equal(graphc.tensor(data).argmax(dim).numpy(), data_t.argmax(dim).numpy())
        np.testing.assert_array_equal(graphc.tensor(data).argmin(dim).numpy(), data_t.argmin(dim).numpy())
    ties = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(graphc.tensor(ties).argmax(1).numpy(), torch.tensor(ties).argmax(1).numpy())


def test_max_returns_a_named_tuple_like_torch():
    out = graphc.tensor(X).max(1)
    values, indices = out
    assert type(out).__name__ == "max" and out.values is values and out.indices is indices
    assert repr(out).startswith("graphc.return_types.max(\nvalues=tensor(")
    assert type(graphc.min(graphc.tensor(X), 0)).__name__ == "min"
    assert graphc.tensor(X).max().shape == ()


def test_compiled_model_may_return_max_along_a_dim():
    class Top(graphc.nn.Module):
        def forward(self, x):
            return x.max(1)

    x, tx = graphc.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    out, expected = graphc.compile(Top())(x), tx.max(1)
    assert type(out).__name__ == "max"
    np.testing.assert_array_equal(out.indices.numpy(), expected.indices.numpy())
    np.testing.assert_array_equal(out.values.detach().numpy(), expected.values.detach().numpy())
    out.values.sum().backward()
    expected.values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())  # the tie's first index only


def test_int_tensors():
    a = np.array([[3, -1, 4], [1, 5, -9]])
    g, t = graphc.tensor(a), torch.tensor(a)
    for fn in (lambda lib, v: v.max(1).values, lambda lib, v: v.min(), lambda lib, v: v.argmin(1),
               lambda lib, v: v.abs(), lambda lib, v: v.clamp(-2, 2), lambda lib, v: lib.cat([v, v]),
               lambda lib, v: v[:, 1:], lambda lib, v: v.sign(), lambda lib, v: v.sum(dtype=lib.float64)):
        _same(fn(graphc, g), fn(torch, t))


@pytest.mark.parametrize("call,error,match", [
    (lambda lib, x: lib.cat([x, x.t()]), RuntimeError, "Sizes of tensors must match except in dimension 0"),
    (lambda lib, x: lib.cat([x, x], 2), IndexError, r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
    (lambda lib, x: lib.cat([]), ValueError, "expected a non-empty list of Tensors"),
    (lambda lib, x: lib.stack([x, x.t()]), RuntimeError, "stack expects each tensor to be equal size"),
    (lambda lib, x: x.split([2, 3]), RuntimeError, "split_with_sizes expects split_sizes to sum exactly to 4"),
    (lambda lib, x: x.unsqueeze(3), IndexError, "Dimension out of range"),
    (lambda lib, x: x.squeeze(2), IndexError, "Dimension out of range"),
    (lambda lib, x: x.max(2), IndexError, "Dimension out of range"),
    (lambda lib, x: x.argmax(-3), IndexError, "Dimension out of range"),
    (lambda lib, x: x.size(2), IndexError, "Dimension out of range"),
    (lambda lib, x: x.sum().size(0), IndexError, "Dimension specified as 0 but tensor has no dimensions"),
    (lambda lib, x: x.narrow(0, 2, 3), RuntimeError, r"start \(2\) \+ length \(3\) exceeds dimension size \(4\)"),
    (lambda lib, x: x.unflatten(1, (4, 2)), RuntimeError, "unflatten: Provided sizes"),
    (lambda lib, x: x.permute(0, 0), RuntimeError, "duplicate dims"),
    (lambda lib, x: lib.mm(x, x), RuntimeError, r"mat1 and mat2 shapes cannot be multiplied \(4x6 and 4x6\)"),
    (lambda lib, x: lib.mm(x[0], x), RuntimeError, "self must be a matrix"),
    (lambda lib, x: lib.bmm(x, x), RuntimeError, "batch1 must be a 3D tensor"),
    (lambda lib, x: x.mean(dtype=lib.int64), RuntimeError, "mean\\(\\): could not infer output dtype"),
    (lambda lib, x: x[5], IndexError, "index 5 is out of bounds for dimension 0 with size 4"),
    (lambda lib, x: x[0, 0, 0], IndexError, "too many indices for tensor of dimension 2"),
    (lambda lib, x: x[::-1], ValueError, "step must be greater than zero"),
    (lambda lib, x: x.t().reshape(-1, 5), RuntimeError, r"shape '\[-1, 5\]' is invalid for input of size 24"),
    (lambda lib, x: x.view(5, 5), RuntimeError, r"shape '\[5, 5\]' is invalid for input of size 24"),
    (lambda lib, x: x.repeat(2), RuntimeError, "Number of dimensions of repeat dims can not be smaller"),
    (lambda lib, x: x.chunk(0), RuntimeError, "chunk expects `chunks` to be greater than 0"),
    (lambda lib, x: x.mT[0].mT, RuntimeError, "tensor.mT is only supported on matrices"),
])
def test_errors_match_torch(call, error, match):
    for lib, x in ((graphc, graphc.tensor(X)), (torch, torch.tensor(X))):
        with pytest.raises(error, match=match):
            call(lib, x)


def test_metadata_and_python_conversions():
    g, t = graphc.tensor(X), torch.tensor(X)
    assert g.numel() == t.numel() == graphc.numel(g) and g.dim() == t.dim() == 2
    assert g.size(-1) == t.size(-1) and tuple(g.shape) == tuple(t.shape) and len(g) == len(t)
    assert g[1, 2].item() == t[1, 2].item() and g.tolist() == t.tolist()
    assert [r.tolist() for r in g] == [r.tolist() for r in t]
    assert float(g[0, 0]) == float(t[0, 0]) and int(g[0, 0] * 10) == int(t[0, 0] * 10)
    assert bool(g[0, 0] > 0) == bool(t[0, 0] > 0)
    s, ts = graphc.tensor(-2.25), torch.tensor(-2.25)
    for spec in ("{:+.2f}", "{:.3e}", "{}", "{:>12}", "{!r}"):
        assert spec.format(s) == spec.format(ts), spec
    assert f"{g.sum():.4f}" == f"{t.sum():.4f}"
    with pytest.raises(TypeError):
        "{:.2f}".format(g)
    with pytest.raises(TypeError):
        iter(g.sum())
    assert g.type() == "graphc.FloatTensor"


def test_factories_match_torch():
    cases = [
        lambda lib: lib.zeros(2, 3), lambda lib: lib.ones((2, 3), dtype=lib.float64),
        lambda lib: lib.empty(2, dtype=lib.int64).zero_(), lambda lib: lib.full((2, 2), 3),
        lambda lib: lib.full((2,), 1.5), lambda lib: lib.full((2,), True), lambda lib: lib.arange(5),
        lambda lib: lib.arange(1, 4, 0.5), lambda lib: lib.arange(0.0, 3), lambda lib: lib.arange(5, dtype=lib.float32),
        lambda lib: lib.arange(10, 2, -3), lambda lib: lib.linspace(0, 1, 5), lambda lib: lib.eye(3),
        lambda lib: lib.eye(2, 3, dtype=lib.int64), lambda lib: lib.zeros_like(lib.ones(2, 3, dtype=lib.int64)),
        lambda lib: lib.ones_like(lib.zeros(2)), lambda lib: lib.full_like(lib.zeros(2), 7),
        lambda lib: lib.empty_like(lib.zeros(3)).zero_(), lambda lib: lib.zeros(2, device="cpu"),
        lambda lib: lib.randn_like(lib.zeros(2, 3)).shape, lambda lib: lib.rand_like(lib.zeros(2, 3)).dtype,
        lambda lib: lib.rand(2, 2, dtype=lib.float64).dtype,
    ]
    for make in cases:
        g, t = make(graphc), make(torch)
        if isinstance(t, torch.Tensor):
            _same(g, t)
        else:
            assert repr(g).replace("graphc", "torch") == repr(t)
    leaf = graphc.zeros(2, requires_grad=True)
    assert leaf.requires_grad and leaf.is_leaf
    assert graphc.float32 == "float32" and graphc.float == graphc.float32 and graphc.bool == "bool"


class _Device:
    def __init__(self, name):
        self.name = name

    def __str__(self):
        return self.name


def test_devices_other_than_cpu_are_rejected():
    assert graphc.ones(2, device=_Device("cpu")).device == graphc.device("cpu")
    graphc.randn(2, device="cpu").to("cpu").to(_Device("cpu"), graphc.float64)
    for make in (lambda: graphc.zeros(2, device="cuda"), lambda: graphc.ones_like(graphc.zeros(2), device="mps"),
                 lambda: graphc.zeros(2).to("cuda:0"), lambda: graphc.arange(3, device=_Device("cuda"))):
        with pytest.raises(RuntimeError, match="graphc runs on the CPU only"):
            make()
