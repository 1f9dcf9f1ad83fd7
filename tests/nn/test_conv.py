"""Conv1d / Conv2d and F.conv1d / F.conv2d against PyTorch: reprs, attributes, init, state_dict
keys, eager and compiled forward and backward, and compiled train steps of small conv nets."""
import math

import numpy as np
import pytest

import graphc
import graphc.nn as gnn
import graphc.nn.functional as F
from parity import assert_matches_torch, assert_train_steps_match_torch

rng = np.random.default_rng(0)


def data(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def convs(nn):
    return [nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(3, 4, (3, 2), stride=(2, 1), bias=False),
            nn.Conv2d(4, 8, 3, padding="same", dilation=2, groups=2), nn.Conv2d(4, 4, 3, groups=4, padding="valid"),
            nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), nn.Conv1d(2, 4, 3, dilation=2, groups=2),
            nn.Conv1d(3, 5, 4, stride=2, padding=(1,), padding_mode="reflect")]


def test_reprs_and_attributes_match_pytorch(torch):
    assert [repr(m) for m in convs(gnn)] == [repr(m) for m in convs(torch.nn)]
    assert repr(gnn.Conv2d(1, 6, 5, padding=2)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
    for g, t in zip(convs(gnn), convs(torch.nn)):
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                     "padding_mode", "transposed", "output_padding"):
            assert getattr(g, name) == getattr(t, name), (g, name)
        assert list(g.state_dict()) == list(t.state_dict())
        assert {k: tuple(v.shape) for k, v in g.state_dict().items()} == \
               {k: tuple(v.shape) for k, v in t.state_dict().items()}


def test_default_init_is_pytorchs_kaiming_uniform():
    conv = gnn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 9)  # kaiming_uniform_(a=sqrt(5)) gives U(+-1/sqrt(fan_in)) too
    w, b = conv.weight.numpy(), conv.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound and abs(w.std() - bound / math.sqrt(3)) < 0.01
    assert np.abs(b).max() <= bound and conv.weight.dtype == "float32"
    assert gnn.Conv1d(2, 2, 3, dtype=graphc.float64).weight.dtype == "float64"


@pytest.mark.parametrize("args,kwargs", [
    ((4, 3, 3, 1), dict(padding="same")),  # 'same' with stride 1 only
    ((4, 3, 3), dict(groups=3)),
    ((4, 4, 3), dict(padding="full")),
    ((4, 4, 3), dict(padding_mode="mirror")),
])
def test_constructor_errors_match_pytorch(torch, args, kwargs):
    kwargs = dict(kwargs, stride=2) if args[3:] else kwargs
    args = args[:3]
    with pytest.raises(ValueError) as theirs:
        torch.nn.Conv2d(*args, **kwargs)
    with pytest.raises(ValueError) as ours:
        gnn.Conv2d(*args, **kwargs)
    if kwargs.get("padding") != "full" and "padding_mode" not in kwargs:  # torch prints a set, whose order varies
        assert str(ours.value) == str(theirs.value)
    else:
        assert str(ours.value).split("{")[0] == str(theirs.value).split("{")[0]


def test_channel_mismatch_is_a_runtime_error_like_pytorch(torch):
    x = data(2, 3, 8, 8)
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.Conv2d(1, 6, 5)(torch.tensor(x))
    with pytest.raises(RuntimeError) as ours:
        gnn.Conv2d(1, 6, 5)(graphc.tensor(x))
    assert "expected input[2, 3, 8, 8] to have 1 channels, but got 3 channels instead" in str(theirs.value)
    assert "expected input[2, 3, 8, 8] to have 1 channels, but got 3 channels instead" in str(ours.value)


CONV2D = [
    dict(),
    dict(stride=2),
    dict(stride=(2, 1), padding=(1, 2)),
    dict(padding="same"),
    dict(padding="same", dilation=(1, 2)),
    dict(padding="valid", dilation=2),
    dict(padding=1, groups=2),
    dict(padding=1, groups=4, out_channels=8),  # depthwise, channel multiplier 2
    dict(padding=2, bias=False),
    dict(padding=1, padding_mode="circular"),
    dict(padding=(1, 2), padding_mode="reflect"),
    dict(padding=2, padding_mode="replicate", stride=2),
    dict(padding="same", padding_mode="circular", kernel_size=4),
]


@pytest.mark.parametrize("kwargs", CONV2D, ids=str)
def test_conv2d_matches_pytorch_eager_and_compiled(torch, kwargs):
    kwargs = {"in_channels": 4, "out_channels": 6, "kernel_size": 3} | kwargs
    model = gnn.Conv2d(**kwargs)
    assert_matches_torch(torch, model, torch.nn.Conv2d(**kwargs), data(2, 4, 7, 9))


@pytest.mark.parametrize("kwargs", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=3),
                                    dict(groups=3, padding=2, bias=False), dict(padding=2, padding_mode="reflect"),
                                    dict(padding=1, padding_mode="circular", stride=3)], ids=str)
def test_conv1d_matches_pytorch_eager_and_compiled(torch, kwargs):
    kwargs = {"in_channels": 3, "out_channels": 6, "kernel_size": 3} | kwargs
    assert_matches_torch(torch, gnn.Conv1d(**kwargs), torch.nn.Conv1d(**kwargs), data(2, 3, 11))


def test_unbatched_input_and_float64(torch):
    conv = gnn.Conv2d(2, 3, 3, padding=1, dtype=graphc.float64)
    twin = torch.nn.Conv2d(2, 3, 3, padding=1, dtype=torch.float64)
    assert_matches_torch(torch, conv, twin, rng.standard_normal((2, 5, 5)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(stride=2, padding=1), dict(padding="same", dilation=2, groups=2)], ids=str)
def test_functional_conv2d_matches_pytorch(torch, kwargs):
    x, w, b = data(2, 4, 6, 6), data(6, 4 // kwargs.get("groups", 1), 3, 3), data(6)
    ours = F.conv2d(graphc.tensor(x), graphc.tensor(w), graphc.tensor(b), **kwargs).numpy()
    theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kwargs).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    x1, w1 = data(2, 4, 9), data(6, 4, 3)
    np.testing.assert_allclose(F.conv1d(graphc.tensor(x1), graphc.tensor(w1), stride=2).numpy(),
                               torch.nn.functional.conv1d(torch.tensor(x1), torch.tensor(w1), stride=2).numpy(),
                               rtol=1e-4, atol=1e-5)


def tiny_net(nn):
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, groups=2),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 5))


def test_compiled_train_step_of_a_tiny_conv_net_matches_pytorch(torch):
    x, y = data(4, 1, 10, 10), rng.integers(0, 5, 4)
    assert_train_steps_match_torch(torch, tiny_net(gnn), tiny_net(torch.nn), x, y, lr=0.1)
