"""Random numbers made in a traced forward are drawn by the compiled program on every call: never
one draw baked into the graph as a constant."""
import numpy as np
import pytest

import graphc
import graphc.nn as nn


class Noisy(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        if self.kind == "randn_like":
            return x + graphc.randn_like(x)
        if self.kind == "rand":
            return x + graphc.rand(*x.shape)
        return x + graphc.randint(0, 5, tuple(x.shape)).float()


@pytest.mark.parametrize("kind", ["randn_like", "rand", "randint"])
def test_compiled_calls_draw_fresh_numbers(kind):
    graphc.manual_seed(0)
    compiled = graphc.compile(Noisy(kind))
    x = graphc.zeros(200, 50)
    with graphc.no_grad():
        first, second = compiled(x).numpy(), compiled(x).numpy()
    assert not np.array_equal(first, second)
    program = graphc.trace(Noisy(kind), x)
    assert not any(n.op == "constant" and n.size > 1 for n in program.graph.nodes)
    if kind == "randn_like":
        assert abs(first.mean()) < 0.05 and abs(first.std() - 1) < 0.05
    elif kind == "rand":
        assert first.min() >= 0 and first.max() < 1 and abs(first.mean() - 0.5) < 0.02
    else:
        assert set(np.unique(first)) == {0.0, 1.0, 2.0, 3.0, 4.0}


def test_compiled_draws_are_reproducible_under_manual_seed():
    compiled = graphc.compile(Noisy("randn_like"))
    x = graphc.zeros(3, 4)
    with graphc.no_grad():
        graphc.manual_seed(7)
        a = compiled(x).numpy()
        graphc.manual_seed(7)
        b = compiled(x).numpy()
    np.testing.assert_array_equal(a, b)


def test_gradients_pass_through_the_noise():
    compiled = graphc.compile(Noisy("randn_like"))
    x = graphc.zeros(3, 4, requires_grad=True)
    compiled(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((3, 4), np.float32))
