"""The Python cost of a compiled call does not grow with the number of layers or parameters
(issue 6, item 8): counted as Python-level calls, which are deterministic, not as time."""
import sys

import numpy as np

import pytest

import graphc
import graphc.nn as nn


def _mlp(layers: int) -> nn.Module:
    modules = []
    for _ in range(layers):
        modules += [nn.Linear(8, 8), nn.ReLU()]
    return nn.Sequential(*modules)


def _python_calls(fn) -> int:
    fn()
    fn()  # compiled, cached, warm
    calls = [0]

    def profile(frame, event, arg):
        if event == "call":
            calls[0] += 1
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls[0]


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "forward with grad"])
def test_a_24_layer_mlp_costs_as_many_python_calls_as_a_2_layer_one(grad):
    counts = []
    for layers in (2, 24):
        compiled, x = graphc.compile(_mlp(layers)), graphc.randn(4, 8)
        with graphc.enable_grad() if grad else graphc.no_grad():
            counts.append(_python_calls(lambda: compiled(x)))
    assert counts[0] == counts[1], counts


def test_replacing_a_parameter_array_is_seen_by_the_next_call():
    model = nn.Linear(3, 2)
    compiled, x = graphc.compile(model), graphc.randn(4, 3)
    with graphc.no_grad():
        compiled(x)
        model.weight.data = graphc.zeros(2, 3)
        model.bias.data = graphc.ones(2)
        assert (compiled(x).numpy() == 1.0).all()
        model.bias = nn.Parameter(graphc.full((2,), 5.0))  # another object in the same place
        assert (compiled(x).numpy() == 5.0).all()


def test_a_replaced_parameter_object_counts_for_requires_grad_too():
    model = nn.Linear(3, 2)
    compiled, x = graphc.compile(model), graphc.randn(4, 3)
    compiled(x).sum().backward()
    model.weight = nn.Parameter(graphc.zeros(2, 3), requires_grad=False)
    model.zero_grad()
    compiled(x).sum().backward()
    assert model.weight.grad is None and model.bias.grad is not None


def test_a_train_step_reads_a_frozen_parameter_object_that_replaced_another():
    model = nn.Linear(3, 2)
    model.bias.requires_grad = False
    step = graphc.compile_train_step(model, nn.MSELoss(reduction="sum"),
                                     graphc.optim.SGD([model.weight], lr=0.0))
    x, y = graphc.randn(4, 3), graphc.randn(4, 2)
    step(x, y)
    model.bias = nn.Parameter(graphc.full((2,), 5.0), requires_grad=False)  # same key: no recompile
    expected = nn.MSELoss(reduction="sum")(x @ model.weight.detach().t() + 5.0, y)
    np.testing.assert_allclose(step(x, y).item(), expected.item(), rtol=1e-5)
    assert len(step._cache) == 1
