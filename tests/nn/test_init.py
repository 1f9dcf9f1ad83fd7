"""nn.init: PyTorch's formulas (gains, fans, bounds), sample statistics, in-place writes, seeding."""
import math

import numpy as np
import pytest

import graphc
import graphc.nn as gnn
from graphc.nn import init


@pytest.mark.parametrize("nonlinearity,param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                                ("tanh", None), ("relu", None), ("leaky_relu", None),
                                                ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_calculate_gain_matches_pytorch(torch, nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param))


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)


def test_fans():
    assert init._calculate_fan_in_and_fan_out(graphc.zeros(7, 3)) == (3, 7)
    assert init._calculate_fan_in_and_fan_out(graphc.zeros(8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(graphc.zeros(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(graphc.zeros(2, 2), mode="fan_avg")


def _stats(fill, shape=(600, 400)):
    t = graphc.zeros(*shape)
    assert fill(t) is t
    return t.numpy()


@pytest.mark.parametrize("kw,fan", [({}, 400), ({"mode": "fan_out"}, 600),
                                    ({"a": math.sqrt(5)}, 400), ({"nonlinearity": "relu"}, 400)])
def test_kaiming(kw, fan):
    gain = init.calculate_gain(kw.get("nonlinearity", "leaky_relu"), kw.get("a", 0))
    std = gain / math.sqrt(fan)
    uniform = _stats(lambda t: init.kaiming_uniform_(t, **kw))
    assert np.abs(uniform).max() <= math.sqrt(3) * std
    assert uniform.std() == pytest.approx(std, rel=0.02)
    assert uniform.mean() == pytest.approx(0, abs=0.01 * std)
    normal = _stats(lambda t: init.kaiming_normal_(t, **kw))
    assert normal.std() == pytest.approx(std, rel=0.02)


@pytest.mark.parametrize("gain", [1.0, init.calculate_gain("tanh")])
def test_xavier(gain):
    std = gain * math.sqrt(2 / (600 + 400))
    uniform = _stats(lambda t: init.xavier_uniform_(t, gain=gain))
    assert np.abs(uniform).max() <= math.sqrt(3) * std
    assert uniform.std() == pytest.approx(std, rel=0.02)
    assert _stats(lambda t: init.xavier_normal_(t, gain)).std() == pytest.approx(std, rel=0.02)


def test_simple_fills():
    u = _stats(lambda t: init.uniform_(t, -2.0, 3.0), (100_000,))
    assert u.min() >= -2.0 and u.max() <= 3.0 and u.mean() == pytest.approx(0.5, abs=0.02)
    n = _stats(lambda t: init.normal_(t, 1.0, 0.5), (100_000,))
    assert n.mean() == pytest.approx(1.0, abs=0.01) and n.std() == pytest.approx(0.5, rel=0.02)
    assert (_stats(lambda t: init.constant_(t, 0.25), (3,)) == 0.25).all()
    assert (_stats(init.ones_, (3,)) == 1).all()
    assert (_stats(init.zeros_, (3,)) == 0).all()


def test_writes_in_place_without_recording_gradients():
    p = gnn.Parameter(graphc.zeros(4, 4))
    array = p.detach().numpy()
    assert init.kaiming_uniform_(p) is p
    assert p.requires_grad and p.grad_fn is None and p.is_leaf
    assert np.shares_memory(array, p.detach().numpy()) and (array != 0).any()


def test_seeding_is_reproducible():
    graphc.manual_seed(3)
    a = init.normal_(graphc.zeros(5)).numpy().copy()
    graphc.manual_seed(3)
    b = init.normal_(graphc.zeros(5)).numpy()
    np.testing.assert_array_equal(a, b)
    explicit = init.uniform_(graphc.zeros(5), generator=np.random.default_rng(3))
    assert explicit.shape == (5,)


def test_zero_element_tensor_is_a_no_op():
    with pytest.warns(UserWarning, match="no-op"):
        assert init.kaiming_uniform_(graphc.zeros(0, 3)).shape == (0, 3)


def test_linear_default_init_bounds():
    layer = gnn.Linear(300, 200)
    bound = 1 / math.sqrt(300)
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound
    assert weight.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert np.abs(bias).max() > 0.8 * bound
    before = weight.copy()
    layer.reset_parameters()
    assert layer.weight.detach().numpy() is not before and not np.allclose(before, layer.weight.detach().numpy())


ALL_NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                      "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


@pytest.mark.parametrize("nonlinearity", ALL_NONLINEARITIES)
def test_every_nonlinearity_of_pytorch_has_its_gain(torch, nonlinearity):
    assert init.calculate_gain(nonlinearity) == torch.nn.init.calculate_gain(nonlinearity)
    assert init.calculate_gain("leaky_relu", 3) == torch.nn.init.calculate_gain("leaky_relu", 3)


@pytest.mark.parametrize("shape", [(7, 3), (8, 4, 3), (8, 4, 3, 3), (2, 6, 3, 1, 5), (16, 1, 5, 5), (1, 1)])
def test_fans_of_conv_shaped_weights_equal_pytorchs(torch, shape):
    assert init._calculate_fan_in_and_fan_out(graphc.zeros(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))


@pytest.mark.parametrize("fill", [init.kaiming_uniform_, init.kaiming_normal_, init.xavier_uniform_,
                                  init.xavier_normal_])
def test_fan_based_initialisers_need_two_dimensions_as_in_pytorch(torch, fill):
    expected = "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
    with pytest.raises(ValueError, match=expected):
        getattr(torch.nn.init, fill.__name__)(torch.zeros(5))
    with pytest.raises(ValueError, match=expected):
        fill(graphc.zeros(5))


@pytest.mark.parametrize("shape,kw", [((64, 32, 3, 3), {}), ((64, 32, 3, 3), {"mode": "fan_out"}),
                                      ((48, 16, 5), {"nonlinearity": "relu"}), ((96, 8, 2, 2, 2), {"a": 0.2})])
def test_kaiming_normal_on_conv_weights_follows_the_formula(shape, kw):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(graphc.zeros(*shape))
    gain = init.calculate_gain(kw.get("nonlinearity", "leaky_relu"), kw.get("a", 0))
    std = gain / math.sqrt(fan_out if kw.get("mode") == "fan_out" else fan_in)
    values = _stats(lambda t: init.kaiming_normal_(t, **kw), shape)
    assert values.std() == pytest.approx(std, rel=0.03) and abs(values.mean()) < 0.03 * std


def test_xavier_on_conv_weights_follows_the_formula():
    shape = (64, 32, 3, 3)
    std = math.sqrt(2 / (32 * 9 + 64 * 9))
    assert _stats(lambda t: init.xavier_normal_(t), shape).std() == pytest.approx(std, rel=0.03)
    uniform = _stats(lambda t: init.xavier_uniform_(t, gain=2.0), shape)
    assert np.abs(uniform).max() <= 2 * math.sqrt(3) * std and uniform.std() == pytest.approx(2 * std, rel=0.03)


def _truncated_moments(mean, std, a, b):
    """Mean and standard deviation of N(mean, std^2) truncated to [a, b]."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2  # noqa: E731
    mass = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / mass
    variance = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass - shift ** 2
    return mean + std * shift, std * math.sqrt(variance)


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04), (1.0, 2.0, 0.0, 1.5),
                                          (0.0, 1.0, 1.5, 4.0), (0.5, 0.1, -1.0, 0.45)])
def test_trunc_normal_stays_in_bounds_with_the_truncated_moments(mean, std, a, b):
    values = _stats(lambda t: init.trunc_normal_(t, mean, std, a, b), (400, 250))
    assert values.min() >= np.float32(a) and values.max() <= np.float32(b)
    expected_mean, expected_std = _truncated_moments(mean, std, a, b)
    assert values.mean() == pytest.approx(expected_mean, abs=0.01 * expected_std)
    assert values.std() == pytest.approx(expected_std, rel=0.02)


def test_trunc_normal_warns_like_pytorch_when_the_mean_is_far_outside(torch):
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        torch.nn.init.trunc_normal_(torch.zeros(10), mean=10.0, std=1.0, a=-2.0, b=2.0)
    with pytest.warns(UserWarning, match=r"mean is more than 2 std from \[a, b\] in nn.init.trunc_normal_"):
        values = init.trunc_normal_(graphc.zeros(1000), mean=10.0, std=1.0, a=-2.0, b=2.0).numpy()
    assert values.min() >= -2.0 and values.max() <= 2.0


@pytest.mark.parametrize("shape", [(20, 20), (30, 10), (10, 30), (12, 4, 3, 3), (3, 5, 2)])
@pytest.mark.parametrize("gain", [1.0, init.calculate_gain("relu")])
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(shape, gain):
    flat = _stats(lambda t: init.orthogonal_(t, gain), shape).reshape(shape[0], -1).astype(np.float64)
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(len(gram)), atol=1e-5)


def test_orthogonal_is_haar_distributed_not_biased_in_sign():
    """Signs fixed by R's diagonal: the first column's first entry is as often negative as positive."""
    firsts = [init.orthogonal_(graphc.zeros(4, 4)).numpy()[0, 0] for _ in range(400)]
    assert 0.4 < np.mean(np.array(firsts) > 0) < 0.6


def test_orthogonal_errors_and_empty_tensors_as_in_pytorch(torch):
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
        torch.nn.init.orthogonal_(torch.zeros(4))
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
        init.orthogonal_(graphc.zeros(4))
    assert init.orthogonal_(graphc.zeros(0, 3)).shape == (0, 3)


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 1.0])
def test_sparse_zeros_as_many_rows_per_column_as_pytorch(torch, sparsity):
    shape = (200, 30)
    ours = _stats(lambda t: init.sparse_(t, sparsity, std=0.05), shape)
    theirs = torch.nn.init.sparse_(torch.zeros(*shape), sparsity, std=0.05).numpy()
    np.testing.assert_array_equal((ours == 0).sum(0), (theirs == 0).sum(0))
    assert (ours == 0).sum(0).min() == math.ceil(sparsity * 200)
    if sparsity < 1:
        assert ours[ours != 0].std() == pytest.approx(0.05, rel=0.05)


def test_sparse_and_eye_need_two_dimensions_as_in_pytorch(torch):
    for fill in ("eye_", "sparse_"):
        args = (0.5,) if fill == "sparse_" else ()
        with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
            getattr(torch.nn.init, fill)(torch.zeros(2, 2, 2), *args)
        with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
            getattr(init, fill)(graphc.zeros(2, 2, 2), *args)


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2)])
def test_eye_equals_pytorchs(torch, shape):
    np.testing.assert_array_equal(_stats(init.eye_, shape), torch.nn.init.eye_(torch.zeros(*shape)).numpy())


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 3, 3, 3), 1), ((3, 6, 3, 4), 1), ((8, 2, 3, 3), 2),
                                          ((6, 4, 1, 3, 3), 3), ((4, 2, 5, 5, 5), 1), ((6, 1, 2), 2)])
def test_dirac_equals_pytorchs(torch, shape, groups):
    np.testing.assert_array_equal(_stats(lambda t: init.dirac_(t, groups), shape),
                                  torch.nn.init.dirac_(torch.zeros(*shape), groups).numpy())


def test_dirac_is_an_identity_convolution(torch):
    weight = init.dirac_(graphc.zeros(3, 3, 3, 3)).numpy()
    x = torch.randn(1, 3, 6, 6)
    np.testing.assert_array_equal(torch.nn.functional.conv2d(x, torch.tensor(weight), padding=1).numpy(), x.numpy())


def test_dirac_errors_as_in_pytorch(torch):
    for shape, groups, message in [((3, 3), 1, "Only tensors with 3, 4, or 5 dimensions are supported"),
                                   ((5, 2, 3), 2, "dim 0 must be divisible by groups")]:
        with pytest.raises(ValueError, match=message):
            torch.nn.init.dirac_(torch.zeros(*shape), groups)
        with pytest.raises(ValueError, match=message):
            init.dirac_(graphc.zeros(*shape), groups)


@pytest.mark.parametrize("fill", [lambda t, g: init.trunc_normal_(t, generator=g),
                                  lambda t, g: init.orthogonal_(t, generator=g),
                                  lambda t, g: init.sparse_(t, 0.3, generator=g),
                                  lambda t, g: init.kaiming_normal_(t, generator=g),
                                  lambda t, g: init.xavier_normal_(t, generator=g)])
def test_new_initialisers_draw_from_the_given_generator_in_place(fill):
    results = []
    for _ in range(2):
        p = gnn.Parameter(graphc.zeros(6, 5))
        array = p.detach().numpy()
        assert fill(p, np.random.default_rng(7)) is p and p.is_leaf and p.grad_fn is None
        assert np.shares_memory(array, p.detach().numpy())
        results.append(array.copy())
    np.testing.assert_array_equal(*results)
    assert (results[0] != 0).any()
