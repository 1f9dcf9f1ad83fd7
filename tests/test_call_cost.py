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


# (optimizer, arguments, the larger model's layers): the 24 for the four it names, 4 for
# the others (compiling 24-layer train steps is what makes these tests slow)
TRAIN_CASES = {
    "sgd_momentum": (graphc.optim.SGD, dict(lr=0.1, momentum=0.9), 24),
    "adam": (graphc.optim.Adam, dict(lr=0.01), 24),
    "adamw": (graphc.optim.AdamW, dict(lr=0.01), 24),
    "rmsprop": (graphc.optim.RMSprop, dict(lr=0.01), 24),
    "sgd": (graphc.optim.SGD, dict(lr=0.1), 4),
    "sgd_nesterov_weight_decay": (graphc.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), 4),
    "adam_amsgrad_weight_decay": (graphc.optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1), 4),
    "rmsprop_centered_momentum": (graphc.optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.9), 4),
    "adadelta": (graphc.optim.Adadelta, dict(), 4),
    "adagrad": (graphc.optim.Adagrad, dict(lr_decay=0.1), 4),
}


def _two_groups(model: nn.Module, lr: float) -> list[dict]:
    """The first layer's parameters in one group, the rest in another with its own lr."""
    params = list(model.parameters())
    return [{"params": params[:2]}, {"params": params[2:], "lr": lr}]


def _train_step_calls(optimizer, kwargs, layers: int, groups: bool) -> int:
    graphc.manual_seed(0)
    model = _mlp(layers)
    params = _two_groups(model, 0.003) if groups else model.parameters()
    step = graphc.compile_train_step(model, nn.MSELoss(), optimizer(params, **kwargs))
    x, y = graphc.randn(4, 8), graphc.randn(4, 8)
    return _python_calls(lambda: step(x, y))


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_a_train_step_of_a_large_mlp_costs_as_many_python_calls_as_a_2_layer_one(case):
    optimizer, kwargs, layers = TRAIN_CASES[case]
    counts = [_train_step_calls(optimizer, kwargs, n, groups=False) for n in (2, layers)]
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("case", ["sgd_momentum", "adam"])
def test_a_train_step_with_two_param_groups_costs_the_same_at_any_size(case):
    optimizer, kwargs, _ = TRAIN_CASES[case]
    counts = [_train_step_calls(optimizer, kwargs, n, groups=True) for n in (2, 4)]
    assert counts[0] == counts[1], counts


def test_a_train_step_is_flat_again_after_the_state_was_looked_at():
    """Looking at optimizer.state makes the next step gather the state again (O(parameters),
    once); the steps after it cost what they cost before."""
    model = _mlp(4)
    opt = graphc.optim.Adam(model.parameters())
    step, x, y = graphc.compile_train_step(model, nn.MSELoss(), opt), graphc.randn(4, 8), graphc.randn(4, 8)
    before = _python_calls(lambda: step(x, y))
    assert all(s["step"] == 3 for s in opt.state.values())
    assert _python_calls(lambda: step(x, y)) == before
    assert all(s["step"] == 6 for s in opt.state.values())


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
