"""graphc.optim against torch.optim: the same MLP, the same batches, ten steps, eager and compiled.

The update rule is written once with op functions; eagerly it runs on arrays, inside
`compile_train_step` it is traced into the joint graph. Both must follow PyTorch step for step.
"""
import numpy as np
import pytest

import graphc
import graphc.nn as gnn
from optim_oracle import (STEPS, assert_same_optimizer_state, assert_same_params,
                          check_compiled_matches_torch_and_eager, check_eager_matches_torch, class_batches,
                          classifier_pair, eager_step, make_optimizers, param_groups, torch, torch_step)

IN, HIDDEN, BATCH = 6, 12, 8


def regression_pair(seed: int = 0):
    graphc.manual_seed(seed)
    g_model = gnn.Sequential(gnn.Linear(IN, HIDDEN), gnn.Tanh(), gnn.Linear(HIDDEN, 1))
    t_model = torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, 1))
    t_model.load_state_dict({k: torch.tensor(v.numpy()) for k, v in g_model.state_dict().items()})
    return g_model, t_model


def regression_batches(seed: int = 2):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((BATCH, IN)).astype(np.float32), rng.standard_normal((BATCH, 1)).astype(np.float32))
            for _ in range(STEPS)]


def assert_same_losses(g_losses, t_losses):
    np.testing.assert_allclose(g_losses, t_losses, rtol=1e-4)


CASES = {
    "sgd": ("SGD", dict(lr=0.1), None),
    "sgd_momentum": ("SGD", dict(lr=0.1, momentum=0.9), None),
    "sgd_momentum_dampening": ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1), None),
    "sgd_nesterov": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), None),
    "sgd_weight_decay": ("SGD", dict(lr=0.1, weight_decay=0.05), None),
    "sgd_momentum_weight_decay": ("SGD", dict(lr=0.1, momentum=0.8, weight_decay=0.05), None),
    "sgd_maximize": ("SGD", dict(lr=0.01, maximize=True), None),
    "adam": ("Adam", dict(lr=0.01), None),
    "adam_weight_decay": ("Adam", dict(lr=0.01, weight_decay=0.1), None),
    "adam_amsgrad": ("Adam", dict(lr=0.01, amsgrad=True), None),
    "adam_maximize": ("Adam", dict(lr=0.01, maximize=True), None),
    "sgd_two_groups": ("SGD", dict(lr=0.1, momentum=0.9), dict(lr=0.02)),
    "adam_two_groups": ("Adam", dict(lr=0.01), dict(lr=0.003, betas=(0.8, 0.99))),
    "sgd_groups_with_and_without_momentum": ("SGD", dict(lr=0.1), dict(momentum=0.9)),
    "adam_groups_with_and_without_amsgrad": ("Adam", dict(lr=0.01), dict(amsgrad=True, weight_decay=0.1)),
}
COMPILED_CASES = ["sgd", "sgd_momentum", "sgd_momentum_dampening", "sgd_nesterov", "sgd_weight_decay",
                  "sgd_momentum_weight_decay", "sgd_maximize", "adam", "adam_weight_decay", "adam_amsgrad",
                  "adam_maximize", "sgd_two_groups", "adam_two_groups", "sgd_groups_with_and_without_momentum",
                  "adam_groups_with_and_without_amsgrad"]


# ---- eager ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_eager_optimizer_matches_torch(case):
    name, kwargs, groups = CASES[case]
    check_eager_matches_torch(name, kwargs, groups)


def test_parameters_without_gradients_are_left_alone():
    g_model, _ = classifier_pair()
    frozen = g_model[0].weight
    before = frozen.numpy().copy()
    frozen.requires_grad_(False)
    opt = graphc.optim.Adam(g_model.parameters(), lr=0.1)
    x, y = class_batches()[0]
    eager_step(g_model, opt, x, y, gnn.CrossEntropyLoss())
    np.testing.assert_array_equal(frozen.numpy(), before)
    assert frozen not in opt.state


def test_zero_grad_set_to_none():
    g_model, _ = classifier_pair()
    opt = graphc.optim.SGD(g_model.parameters(), lr=0.1)
    x, y = class_batches()[0]
    gnn.CrossEntropyLoss()(g_model(graphc.tensor(x)), graphc.tensor(y)).backward()
    assert all(p.grad is not None for p in g_model.parameters())
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in g_model.parameters())
    opt.zero_grad()  # the default, as in torch
    assert all(p.grad is None for p in g_model.parameters())


def test_zero_grad_keeps_zeroed_tensors_and_stops_accumulation():
    g_model, _ = classifier_pair()
    opt = graphc.optim.SGD(g_model.parameters(), lr=0.1)
    x, y = class_batches()[0]
    loss_fn = gnn.CrossEntropyLoss()
    loss_fn(g_model(graphc.tensor(x)), graphc.tensor(y)).backward()
    first = {n: p.grad.numpy().copy() for n, p in g_model.named_parameters()}
    loss_fn(g_model(graphc.tensor(x)), graphc.tensor(y)).backward()  # without zero_grad: accumulates
    for n, p in g_model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), 2 * first[n], rtol=1e-6, atol=1e-7, err_msg=n)
    grads = {n: p.grad for n, p in g_model.named_parameters()}
    opt.zero_grad(set_to_none=False)
    for n, p in g_model.named_parameters():
        assert p.grad is grads[n]
        assert not p.grad.numpy().any(), n
    loss_fn(g_model(graphc.tensor(x)), graphc.tensor(y)).backward()
    for n, p in g_model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), first[n], rtol=1e-6, atol=1e-7, err_msg=n)


@pytest.mark.parametrize("optimizer, kwargs, expected", [
    (graphc.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True),
     ["lr: 0.05", "momentum: 0.9", "weight_decay: 0.01", "nesterov: True", "dampening: 0", "maximize: False"]),
    (graphc.optim.Adam, dict(lr=0.002, betas=(0.8, 0.99), eps=1e-6, amsgrad=True),
     ["lr: 0.002", "betas: (0.8, 0.99)", "eps: 1e-06", "amsgrad: True", "weight_decay: 0"]),
])
def test_repr_lists_the_hyperparameters(optimizer, kwargs, expected):
    g_model, _ = classifier_pair()
    text = repr(optimizer(g_model.parameters(), **kwargs))
    assert text.startswith(optimizer.__name__)
    assert "Parameter Group 0" in text
    for fragment in expected:
        assert fragment in text, text


def test_repr_shows_every_group():
    g_model, _ = classifier_pair()
    text = repr(graphc.optim.SGD(param_groups(g_model, dict(lr=0.5)), lr=0.1))
    assert "Parameter Group 0" in text and "Parameter Group 1" in text
    assert "lr: 0.1" in text and "lr: 0.5" in text


@pytest.mark.parametrize("optimizer, kwargs", [
    (graphc.optim.SGD, dict(lr=-0.1)),
    (graphc.optim.SGD, dict(lr=0.1, momentum=-0.5)),
    (graphc.optim.SGD, dict(lr=0.1, weight_decay=-1e-4)),
    (graphc.optim.SGD, dict(lr=0.1, nesterov=True)),
    (graphc.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)),
    (graphc.optim.Adam, dict(lr=-0.1)),
    (graphc.optim.Adam, dict(eps=-1e-8)),
    (graphc.optim.Adam, dict(betas=(1.0, 0.999))),
    (graphc.optim.Adam, dict(betas=(0.9, 1.0))),
    (graphc.optim.Adam, dict(betas=(-0.1, 0.999))),
    (graphc.optim.Adam, dict(weight_decay=-0.1)),
])
def test_invalid_hyperparameters_raise_like_torch(optimizer, kwargs):
    g_model, t_model = classifier_pair()
    with pytest.raises(ValueError):
        getattr(torch.optim, optimizer.__name__)(t_model.parameters(), **kwargs)  # the oracle agrees
    with pytest.raises(ValueError):
        optimizer(g_model.parameters(), **kwargs)


def test_empty_parameter_list_raises():
    with pytest.raises(ValueError):
        graphc.optim.SGD([], lr=0.1)


# ---- compiled train step --------------------------------------------------------------------------

@pytest.mark.parametrize("case", COMPILED_CASES)
def test_compiled_train_step_matches_torch_and_eager(case):
    name, kwargs, groups = CASES[case]
    check_compiled_matches_torch_and_eager(name, kwargs, groups)


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01))])
def test_changing_lr_between_compiled_steps_takes_effect_without_recompiling(name, kwargs):
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs)
    step = graphc.compile_train_step(g_model, gnn.CrossEntropyLoss(), g_opt)
    g_losses, t_losses = [], []
    for i, (x, y) in enumerate(class_batches()):
        if i == 4:
            for opt in (g_opt, t_opt):
                opt.param_groups[0]["lr"] = kwargs["lr"] * 0.1
        if i == 7:
            for opt in (g_opt, t_opt):
                opt.param_groups[0]["lr"] = kwargs["lr"] * 3
        g_losses.append(step(graphc.tensor(x), graphc.tensor(y)).item())
        t_losses.append(torch_step(t_model, t_opt, x, y, torch.nn.CrossEntropyLoss()))
    assert_same_losses(g_losses, t_losses)
    assert_same_params(g_model, t_model)
    assert len(step._cache) == 1


def test_zero_lr_freezes_the_model_in_a_compiled_step():
    g_model, _ = classifier_pair()
    opt = graphc.optim.SGD(g_model.parameters(), lr=0.1)
    step = graphc.compile_train_step(g_model, gnn.CrossEntropyLoss(), opt)
    x, y = class_batches()[0]
    step(graphc.tensor(x), graphc.tensor(y))
    before = {n: v.numpy().copy() for n, v in g_model.state_dict().items()}
    opt.param_groups[0]["lr"] = 0.0
    step(graphc.tensor(x), graphc.tensor(y))
    for n, v in g_model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[n], err_msg=n)
    assert len(step._cache) == 1


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01, amsgrad=True))])
def test_eager_and_compiled_steps_share_optimizer_state(name, kwargs):
    """Five eager steps then five compiled ones follow torch's ten: state and step counts carry over."""
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs)
    step = graphc.compile_train_step(g_model, gnn.CrossEntropyLoss(), g_opt)
    g_losses, t_losses = [], []
    for i, (x, y) in enumerate(class_batches()):
        if i < STEPS // 2:
            g_losses.append(eager_step(g_model, g_opt, x, y, gnn.CrossEntropyLoss()))
        else:
            g_losses.append(step(graphc.tensor(x), graphc.tensor(y)).item())
        t_losses.append(torch_step(t_model, t_opt, x, y, torch.nn.CrossEntropyLoss()))
    assert_same_losses(g_losses, t_losses)
    assert_same_params(g_model, t_model)
    assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=0.01))])
def test_compiled_regression_with_mse_matches_torch(name, kwargs):
    g_model, t_model = regression_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs)
    step = graphc.compile_train_step(g_model, gnn.MSELoss(), g_opt)
    g_losses, t_losses = [], []
    for x, y in regression_batches():
        g_losses.append(step(graphc.tensor(x), graphc.tensor(y)).item())
        t_losses.append(torch_step(t_model, t_opt, x, y, torch.nn.MSELoss()))
    assert_same_losses(g_losses, t_losses)
    assert_same_params(g_model, t_model)


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01))])
def test_turning_on_weight_decay_recompiles_and_still_matches_torch(name, kwargs):
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs)
    step = graphc.compile_train_step(g_model, gnn.CrossEntropyLoss(), g_opt)
    g_losses, t_losses = [], []
    for i, (x, y) in enumerate(class_batches()):
        if i == STEPS // 2:
            for opt in (g_opt, t_opt):
                opt.param_groups[0]["weight_decay"] = 0.1
        g_losses.append(step(graphc.tensor(x), graphc.tensor(y)).item())
        t_losses.append(torch_step(t_model, t_opt, x, y, torch.nn.CrossEntropyLoss()))
    assert_same_losses(g_losses, t_losses)
    assert_same_params(g_model, t_model)
    assert len(step._cache) == 2


# ---- state and hyperparameters that change between steps -------------------------------------------

def set_requires_grad(modules, flag):
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


def test_turning_on_momentum_later_matches_torch():
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, "SGD", dict(lr=0.1))
    g_losses, t_losses = [], []
    for i, (x, y) in enumerate(class_batches()):
        if i == 3:
            for opt in (g_opt, t_opt):
                opt.param_groups[0]["momentum"] = 0.9
        g_losses.append(eager_step(g_model, g_opt, x, y, gnn.CrossEntropyLoss()))
        t_losses.append(torch_step(t_model, t_opt, x, y, torch.nn.CrossEntropyLoss()))
    assert_same_losses(g_losses, t_losses)
    assert_same_params(g_model, t_model)


def test_unfreezing_a_layer_between_compiled_steps_matches_torch():
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, "SGD", dict(lr=0.1))
    set_requires_grad([g_model[2], t_model[2]], False)
    step = graphc.compile_train_step(g_model, gnn.CrossEntropyLoss(), g_opt)
    g_losses, t_losses = [], []
    for i, (x, y) in enumerate(class_batches()):
        if i == 3:
            set_requires_grad([g_model[2], t_model[2]], True)
        g_losses.append(step(graphc.tensor(x), graphc.tensor(y)).item())
        t_losses.append(torch_step(t_model, t_opt, x, y, torch.nn.CrossEntropyLoss()))
    assert_same_losses(g_losses, t_losses)
    assert_same_params(g_model, t_model)


def test_compiled_adam_with_different_step_counts_in_one_group_matches_torch():
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, "Adam", dict(lr=0.01))
    set_requires_grad([g_model[2], t_model[2]], False)  # the last layer starts its steps later
    step = graphc.compile_train_step(g_model, gnn.CrossEntropyLoss(), g_opt)
    g_losses, t_losses = [], []
    for i, (x, y) in enumerate(class_batches()):
        if i < 3:
            g_losses.append(eager_step(g_model, g_opt, x, y, gnn.CrossEntropyLoss()))
        else:
            if i == 3:
                set_requires_grad([g_model[2], t_model[2]], True)
            g_losses.append(step(graphc.tensor(x), graphc.tensor(y)).item())
        t_losses.append(torch_step(t_model, t_opt, x, y, torch.nn.CrossEntropyLoss()))
    assert_same_losses(g_losses, t_losses)
    assert_same_params(g_model, t_model)
