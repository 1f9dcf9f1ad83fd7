"""Max, average and adaptive pools against PyTorch: reprs, attributes, eager and compiled
forward and backward over kernel/stride/padding/dilation/ceil_mode/count_include_pad/divisor and
adaptive sizes larger and smaller than the input; tied maxima route as PyTorch's."""
import numpy as np
import pytest

import graphc
import graphc.nn as gnn
import graphc.nn.functional as F
from parity import Call, assert_matches_torch, torch_call

rng = np.random.default_rng(1)


def data(*shape):
    """Random values without ties (a permutation), so max-pool gradients are unambiguous."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0).astype(np.float32)


def pools(nn):
    return [nn.MaxPool2d(2), nn.MaxPool2d((3, 2), stride=1, padding=1, dilation=(1, 2), ceil_mode=True),
            nn.MaxPool1d(3, 2), nn.AvgPool2d(3, stride=2, padding=1), nn.AvgPool2d((2, 3), ceil_mode=True,
                                                                                   count_include_pad=False),
            nn.AvgPool1d(4, padding=2), nn.AdaptiveAvgPool2d((6, 6)), nn.AdaptiveAvgPool2d((None, 3)),
            nn.AdaptiveAvgPool1d(5), nn.AdaptiveMaxPool2d(4), nn.AdaptiveMaxPool1d(2)]


def test_reprs_and_attributes_match_pytorch(torch):
    assert [repr(m) for m in pools(gnn)] == [repr(m) for m in pools(torch.nn)]
    for g, t in zip(pools(gnn), pools(torch.nn)):
        for name in ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "count_include_pad",
                     "divisor_override", "output_size", "return_indices"):
            assert getattr(g, name, None) == getattr(t, name, None), (g, name)
        assert list(g.state_dict()) == []


MAX_POOL2D = [dict(kernel_size=2), dict(kernel_size=3, stride=2), dict(kernel_size=3, stride=2, ceil_mode=True),
              dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1)), dict(kernel_size=3, padding=1, dilation=2),
              dict(kernel_size=2, stride=3, padding=1, ceil_mode=True), dict(kernel_size=(2, 4), dilation=(2, 1))]
AVG_POOL2D = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
              dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
              dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
              dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
              dict(kernel_size=(2, 3), stride=(3, 2), ceil_mode=True), dict(kernel_size=2, divisor_override=3),
              dict(kernel_size=3, padding=1, stride=2, divisor_override=5)]


@pytest.mark.parametrize("kwargs", MAX_POOL2D, ids=str)
def test_max_pool2d_matches_pytorch(torch, kwargs):
    assert_matches_torch(torch, gnn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), data(2, 3, 8, 9))


@pytest.mark.parametrize("kwargs", AVG_POOL2D, ids=str)
def test_avg_pool2d_matches_pytorch(torch, kwargs):
    assert_matches_torch(torch, gnn.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), data(2, 3, 8, 9))


@pytest.mark.parametrize("size", [(6, 6), 3, (None, 4), (1, 1), (11, 13), (5, 20), 8], ids=str)
@pytest.mark.parametrize("kind", ["Avg", "Max"])
def test_adaptive_pool2d_larger_and_smaller_than_the_input(torch, kind, size):
    name = f"Adaptive{kind}Pool2d"
    assert_matches_torch(torch, getattr(gnn, name)(size), getattr(torch.nn, name)(size), data(2, 3, 7, 8))


@pytest.mark.parametrize("case", [
    ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)), ("MaxPool1d", dict(kernel_size=2)),
    ("AvgPool1d", dict(kernel_size=3, padding=1, count_include_pad=False)),
    ("AvgPool1d", dict(kernel_size=4, stride=3, ceil_mode=True)),
    ("AdaptiveAvgPool1d", dict(output_size=4)), ("AdaptiveAvgPool1d", dict(output_size=15)),
    ("AdaptiveMaxPool1d", dict(output_size=3)), ("AdaptiveMaxPool1d", dict(output_size=12))], ids=str)
def test_1d_pools_match_pytorch(torch, case):
    name, kwargs = case
    assert_matches_torch(torch, getattr(gnn, name)(**kwargs), getattr(torch.nn, name)(**kwargs), data(2, 3, 10))


@pytest.mark.parametrize("name,kwargs", [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1)), ("avg_pool2d", dict(kernel_size=2, ceil_mode=True)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 5))), ("adaptive_max_pool2d", dict(output_size=(2, 9))),
    ("max_pool1d", dict(kernel_size=2)), ("avg_pool1d", dict(kernel_size=3, stride=1, padding=1)),
    ("adaptive_avg_pool1d", dict(output_size=7)), ("adaptive_max_pool1d", dict(output_size=7))])
def test_functional_pools_match_pytorch(torch, name, kwargs):
    x = data(2, 3, 6, 7) if name.endswith("2d") else data(2, 3, 6)
    assert_matches_torch(torch, Call(getattr(F, name), **kwargs),
                         torch_call(torch, getattr(torch.nn.functional, name), **kwargs), x)


def test_unbatched_inputs(torch):
    x = data(3, 6, 6)
    assert_matches_torch(torch, gnn.MaxPool2d(2), torch.nn.MaxPool2d(2), x)
    assert_matches_torch(torch, gnn.AdaptiveAvgPool2d(4), torch.nn.AdaptiveAvgPool2d(4), x)


def test_tied_maxima_send_the_gradient_to_the_first_as_pytorch(torch):
    """All of a window's gradient goes to its first maximum, eagerly and compiled, as PyTorch's."""
    x = np.array([[[[1.0, 1.0, 0.0, 2.0], [0.0, 1.0, 2.0, 2.0]]]], np.float32)  # one window [1, 1, 0, 1]
    xg = graphc.tensor(x, requires_grad=True)
    out = gnn.MaxPool2d(2)(xg)
    out.sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.MaxPool2d(2)(xt).sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), [[[[1.0, 2.0]]]])
    np.testing.assert_array_equal(xt.grad.numpy(), [[[[1, 0, 0, 1], [0, 0, 0, 0]]]])
    np.testing.assert_array_equal(xg.grad.numpy(), xt.grad.numpy())
    compiled = graphc.tensor(x, requires_grad=True)
    graphc.compile(gnn.MaxPool2d(2))(compiled).sum().backward()
    np.testing.assert_array_equal(compiled.grad.numpy(), xt.grad.numpy())


def test_errors_match_pytorch(torch):
    x = data(1, 1, 4, 4)
    with pytest.raises(RuntimeError, match="pad should be at most half of effective kernel size"):
        F.max_pool2d(graphc.tensor(x), 2, padding=2)
    with pytest.raises(RuntimeError, match="pad should be at most half of effective kernel size"):
        torch.nn.functional.max_pool2d(torch.tensor(x), 2, padding=2)
    with pytest.raises(RuntimeError):
        F.max_pool2d(graphc.tensor(x[0, 0, 0]), 2)


def test_adaptive_pools_with_bins_of_one_size_are_plain_pools():
    """An input a multiple of the output: one pool op (no gathered bins); otherwise the bins' tables."""
    x = graphc.tensor(data(2, 3, 8, 12))
    for layer, op in ((gnn.AdaptiveMaxPool2d((4, 3)), "pool"), (gnn.AdaptiveAvgPool2d((2, 6)), "pool"),
                      (gnn.AdaptiveMaxPool2d((3, 5)), "window_gather")):
        ops = [n.op for n in graphc.trace(layer, x).graph.nodes]
        assert op in ops and ("window_gather" in ops) == (op == "window_gather"), (layer, ops)
