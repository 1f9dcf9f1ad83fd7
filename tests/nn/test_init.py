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
