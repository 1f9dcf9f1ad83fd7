"""Composite op functions (abs, minimum, clamp, lt/le/ne) against PyTorch: values, signed zeros,
NaN, and gradients at ties and bounds, eager and compiled."""
import numpy as np
import pytest

import graphc
from graphc.ops import functions as F

VALUES = np.array([-2.0, -0.0, 0.0, 0.5, 1.0, 3.0, np.nan, -np.inf, np.inf], dtype=np.float32)
OTHER = np.array([1.0, 0.0, -0.0, 0.5, 2.0, -3.0, 1.0, 0.0, np.nan], dtype=np.float32)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _pair(torch, fn_g, fn_t, *arrays, signed_zeros=True):
    gs = [graphc.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_g, out_t = fn_g(*gs), fn_t(*ts)
    np.testing.assert_array_equal(out_g.detach().numpy(), out_t.detach().numpy())
    if signed_zeros:  # PyTorch's minimum of two equal zeros returns the first; graphc's is IEEE's -0.0
        np.testing.assert_array_equal(np.signbit(out_g.detach().numpy()), np.signbit(out_t.detach().numpy()))
    out_g.sum().backward()
    out_t.sum().backward()
    for g, t in zip(gs, ts):
        np.testing.assert_array_equal(g.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("name", ["abs", "clamp01", "clamp_min", "clamp_max", "minimum"])
def test_matches_pytorch(torch, name):
    cases = {
        "abs": (F.abs, torch.abs, VALUES),
        "clamp01": (lambda a: F.clamp(a, 0.0, 1.0), lambda a: torch.clamp(a, 0.0, 1.0), VALUES),
        "clamp_min": (lambda a: F.clamp(a, min=0.5), lambda a: torch.clamp(a, min=0.5), VALUES),
        "clamp_max": (lambda a: F.clamp(a, max=0.5), lambda a: torch.clamp(a, max=0.5), VALUES),
        "minimum": (F.minimum, torch.minimum, VALUES, OTHER),
    }
    fn_g, fn_t, *arrays = cases[name]
    _pair(torch, fn_g, fn_t, *arrays, signed_zeros=name != "minimum")


def test_comparisons(torch):
    a, b = graphc.tensor(VALUES), graphc.tensor(OTHER)
    ta, tb = torch.tensor(VALUES), torch.tensor(OTHER)
    for g, t in ((a < b, ta < tb), (a <= b, ta <= tb), (a != b, ta != tb), (F.lt(a, 0.5), ta < 0.5),
                 (F.le(a, 0.5), ta <= 0.5), (F.ne(a, 0.0), ta != 0.0)):
        assert g.dtype == "bool"
        np.testing.assert_array_equal(g.numpy(), t.numpy())


def test_clamp_needs_a_bound():
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max'"):
        F.clamp(graphc.tensor(VALUES))


def test_compiled_matches_eager():
    class Net(graphc.nn.Module):
        def forward(self, a, b):
            return F.clamp(a, -1.0, 1.0) + F.abs(b) * F.minimum(a, b), a != b

    a, b = graphc.tensor(VALUES), graphc.tensor(OTHER)
    eager = Net()(a, b)
    compiled = graphc.compile(Net())(a, b)
    for e, c in zip(eager, compiled):
        np.testing.assert_array_equal(e.numpy(), c.numpy())
