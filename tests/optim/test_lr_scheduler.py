"""graphc.optim.lr_scheduler against torch.optim.lr_scheduler: the same learning rates epoch by
epoch (the same recursive formulas, so equal to float64 rounding: rtol 1e-12), the same
state_dict, and compiled train steps that follow a schedule without recompiling."""
import copy
import logging
import warnings

import numpy as np
import pytest

import graphc
import graphc.nn as gnn
from graphc.optim import lr_scheduler
from optim_oracle import (assert_same_params, class_batches, classifier_pair, make_optimizers, param_groups,
                          torch, torch_step)

# torch warns when a scheduler steps before its optimizer ever did; these tests step schedules alone
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`:UserWarning")

EPOCHS = 30
TWO_GROUPS = dict(lr=0.03)  # the second group starts from its own lr

SCHEDULES = {
    "step": ("StepLR", dict(step_size=4, gamma=0.5)),
    "step_default_gamma": ("StepLR", dict(step_size=7)),
    "multistep": ("MultiStepLR", dict(milestones=[3, 8, 8, 20], gamma=0.3)),
    "exponential": ("ExponentialLR", dict(gamma=0.9)),
    "cosine": ("CosineAnnealingLR", dict(T_max=10)),
    "cosine_eta_min": ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    "lambda": ("LambdaLR", dict(lr_lambda=lambda epoch: 1 / (1 + epoch))),
}


def _pair(name, kwargs, groups=TWO_GROUPS, optimizer="SGD"):
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, optimizer, dict(lr=0.1, momentum=0.9), groups)
    return (getattr(lr_scheduler, name)(g_opt, **kwargs), getattr(torch.optim.lr_scheduler, name)(t_opt, **kwargs),
            g_opt, t_opt)


def _lrs(opt):
    return [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("case", list(SCHEDULES))
def test_schedule_matches_torch(case):
    g_sched, t_sched, g_opt, t_opt = _pair(*SCHEDULES[case])
    assert g_sched.get_last_lr() == t_sched.get_last_lr() and g_sched.last_epoch == t_sched.last_epoch == 0
    for _ in range(EPOCHS):
        g_opt.step(), t_opt.step()
        g_sched.step(), t_sched.step()
        np.testing.assert_allclose(g_sched.get_last_lr(), t_sched.get_last_lr(), rtol=1e-12)
        np.testing.assert_allclose(_lrs(g_opt), _lrs(t_opt), rtol=1e-12)
        assert g_sched.last_epoch == t_sched.last_epoch
    assert [g["initial_lr"] for g in g_opt.param_groups] == [g["initial_lr"] for g in t_opt.param_groups]


@pytest.mark.parametrize("case", ["step", "multistep", "exponential", "cosine_eta_min"])
def test_an_lr_set_by_hand_is_followed_from_there_as_torch(case):
    """The recursive forms scale the current lr: a change between epochs carries on."""
    g_sched, t_sched, g_opt, t_opt = _pair(*SCHEDULES[case])
    for epoch in range(EPOCHS):
        if epoch == 5:
            for opt in (g_opt, t_opt):
                opt.param_groups[0]["lr"] = 0.02
        g_sched.step(), t_sched.step()
        np.testing.assert_allclose(g_sched.get_last_lr(), t_sched.get_last_lr(), rtol=1e-12)


@pytest.mark.parametrize("case", ["step", "multistep", "exponential", "cosine"])
def test_the_deprecated_epoch_argument_uses_the_closed_form(case):
    g_sched, t_sched, _, _ = _pair(*SCHEDULES[case])
    for epoch in (3, 9, 4, 17):
        with pytest.warns(UserWarning, match="epoch parameter"):
            g_sched.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_sched.step(epoch)
        np.testing.assert_allclose(g_sched.get_last_lr(), t_sched.get_last_lr(), rtol=1e-12)


@pytest.mark.parametrize("case", ["step", "multistep", "exponential", "cosine_eta_min"])
def test_state_dict_equals_torch_and_resumes_in_both_directions(case):
    name, kwargs = SCHEDULES[case]
    g_sched, t_sched, g_opt, t_opt = _pair(name, kwargs)
    for _ in range(12):
        g_sched.step(), t_sched.step()
    g_saved, t_saved = copy.deepcopy(g_sched.state_dict()), copy.deepcopy(t_sched.state_dict())
    assert g_saved.keys() == t_saved.keys()
    np.testing.assert_allclose(g_saved.pop("_last_lr"), t_saved.pop("_last_lr"), rtol=1e-12)
    assert g_saved == t_saved
    # a fresh pair of schedulers on optimizers at the saved lrs; the states cross over
    g2_sched, t2_sched, g2_opt, t2_opt = _pair(name, kwargs)
    for group, saved in zip(g2_opt.param_groups + t2_opt.param_groups, g_opt.param_groups + t_opt.param_groups):
        group["lr"] = saved["lr"]
    g2_sched.load_state_dict(t_sched.state_dict())
    t2_sched.load_state_dict(g_sched.state_dict())
    for _ in range(EPOCHS - 12):
        for sched in (g_sched, t_sched, g2_sched, t2_sched):
            sched.step()
        for sched in (g2_sched, t2_sched, t_sched):
            np.testing.assert_allclose(sched.get_last_lr(), g_sched.get_last_lr(), rtol=1e-12)


def test_resuming_with_last_epoch_needs_initial_lr():
    g_model, t_model = classifier_pair()
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(graphc.optim.SGD(g_model.parameters(), lr=0.1), step_size=2, last_epoch=3)
    with pytest.raises(KeyError, match="initial_lr"):
        torch.optim.lr_scheduler.StepLR(torch.optim.SGD(t_model.parameters(), lr=0.1), step_size=2, last_epoch=3)


def test_resuming_with_last_epoch_matches_torch():
    g_sched, t_sched, g_opt, t_opt = _pair("CosineAnnealingLR", dict(T_max=6))
    for _ in range(4):
        g_sched.step(), t_sched.step()
    g_resumed = lr_scheduler.CosineAnnealingLR(g_opt, T_max=6, last_epoch=g_sched.last_epoch)
    t_resumed = torch.optim.lr_scheduler.CosineAnnealingLR(t_opt, T_max=6, last_epoch=t_sched.last_epoch)
    for _ in range(10):
        g_resumed.step(), t_resumed.step()
        np.testing.assert_allclose(g_resumed.get_last_lr(), t_resumed.get_last_lr(), rtol=1e-12)


def test_a_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=1)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.ReduceLROnPlateau(object())


def test_get_lr_outside_step_warns_as_torch():
    g_sched, _, _, _ = _pair("StepLR", dict(step_size=2))
    with pytest.warns(UserWarning, match="get_last_lr"):
        g_sched.get_lr()


# ---- LambdaLR -----------------------------------------------------------------------------------

class Warmup:
    """A callable object: its attributes are saved in LambdaLR's state_dict, as torch saves them."""

    def __init__(self, epochs):
        self.epochs = epochs

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.epochs)


def test_lambda_lr_one_function_per_group_and_state_dict_as_torch():
    lambdas = [Warmup(5), lambda epoch: 0.95 ** epoch]
    g_sched, t_sched, _, _ = _pair("LambdaLR", dict(lr_lambda=lambdas))
    for _ in range(EPOCHS):
        g_sched.step(), t_sched.step()
        np.testing.assert_allclose(g_sched.get_last_lr(), t_sched.get_last_lr(), rtol=1e-12)
    g_saved, t_saved = g_sched.state_dict(), t_sched.state_dict()
    assert g_saved["lr_lambdas"] == t_saved["lr_lambdas"] == [{"epochs": 5}, None]  # lambdas are not saved
    fresh = [Warmup(99), lambda epoch: 1.0]
    g2_sched, _, _, _ = _pair("LambdaLR", dict(lr_lambda=fresh))
    g2_sched.load_state_dict(t_saved)
    assert fresh[0].epochs == 5 and g2_sched.last_epoch == EPOCHS
    assert t_saved["lr_lambdas"] == [{"epochs": 5}, None]  # loading leaves the dict as it was


def test_lambda_lr_needs_one_function_per_group():
    g_model, _ = classifier_pair()
    opt = graphc.optim.SGD(param_groups(g_model, TWO_GROUPS), lr=0.1)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 3"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0] * 3)


# ---- ReduceLROnPlateau --------------------------------------------------------------------------

PLATEAUS = {
    "defaults": dict(),
    "min_rel_patience": dict(mode="min", factor=0.5, patience=2, threshold=0.01),
    "min_abs_cooldown": dict(mode="min", factor=0.5, patience=1, threshold=0.05, threshold_mode="abs", cooldown=3),
    "max_rel_min_lr": dict(mode="max", factor=0.2, patience=0, min_lr=0.004),
    "max_abs_min_lrs_eps": dict(mode="max", factor=0.7, patience=1, threshold_mode="abs", min_lr=[0.05, 0.0],
                                eps=1e-3),
}


def _metrics():
    """A loss that falls, stalls, wobbles and falls again."""
    rng = np.random.default_rng(3)
    return list(np.concatenate([np.linspace(2, 1, 6), np.full(8, 1.0), 1 + 0.03 * rng.standard_normal(10),
                                np.linspace(0.9, 0.5, 6)]))


@pytest.mark.parametrize("case", list(PLATEAUS))
def test_reduce_lr_on_plateau_matches_torch(case):
    g_sched, t_sched, g_opt, t_opt = _pair("ReduceLROnPlateau", PLATEAUS[case])
    lrs = set()
    for metric in _metrics():
        g_sched.step(metric), t_sched.step(metric)
        assert g_sched.get_last_lr() == t_sched.get_last_lr() == _lrs(t_opt) == _lrs(g_opt)
        assert (g_sched.num_bad_epochs, g_sched.cooldown_counter, g_sched.best, g_sched.last_epoch) == \
            (t_sched.num_bad_epochs, t_sched.cooldown_counter, t_sched.best, t_sched.last_epoch)
        lrs.add(tuple(g_sched.get_last_lr()))
    assert len(lrs) > 1 or case == "defaults"  # the schedule did reduce (the default patience is 10)


def test_reduce_lr_on_plateau_state_dict_as_torch():
    g_sched, t_sched, _, _ = _pair("ReduceLROnPlateau", PLATEAUS["min_abs_cooldown"])
    metrics = _metrics()
    for metric in metrics[:15]:
        g_sched.step(metric), t_sched.step(metric)
    assert g_sched.state_dict() == t_sched.state_dict()
    g2_sched, _, g2_opt, _ = _pair("ReduceLROnPlateau", dict(mode="max"))
    g2_sched.load_state_dict(t_sched.state_dict())
    for group, lr in zip(g2_opt.param_groups, g_sched.get_last_lr()):
        group["lr"] = lr
    for metric in metrics[15:]:
        g2_sched.step(metric), t_sched.step(metric)
        assert g2_sched.get_last_lr() == t_sched.get_last_lr()


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(factor=1.0), ValueError, "Factor should be < 1.0."),
    (dict(mode="sideways"), ValueError, "mode sideways is unknown!"),
    (dict(threshold_mode="both"), ValueError, "threshold mode both is unknown!"),
    (dict(min_lr=[0.1, 0.2, 0.3]), ValueError, "expected 2 min_lrs, got 3"),
])
def test_reduce_lr_on_plateau_arguments_checked_as_torch(kwargs, error, message):
    g_model, t_model = classifier_pair()
    with pytest.raises(error, match=message):
        torch.optim.lr_scheduler.ReduceLROnPlateau(torch.optim.SGD(param_groups(t_model, TWO_GROUPS)), **kwargs)
    with pytest.raises(error, match=message):
        lr_scheduler.ReduceLROnPlateau(graphc.optim.SGD(param_groups(g_model, TWO_GROUPS)), **kwargs)


# ---- compiled train steps follow the schedule ------------------------------------------------------

@pytest.mark.parametrize("optimizer, schedule", [("SGD", "cosine_eta_min"), ("Adam", "step"),
                                                 ("RMSprop", "multistep"), ("Adagrad", "exponential")])
def test_a_compiled_step_follows_the_schedule_without_recompiling(optimizer, schedule, caplog):
    """Six epochs of two batches; the lr changes every epoch or so, the step compiles once (one
    record on the graphc.recompiles logger) and ends at torch's weights."""
    name, kwargs = SCHEDULES[schedule]
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, optimizer, dict(lr=0.01), TWO_GROUPS)
    g_sched = getattr(lr_scheduler, name)(g_opt, **kwargs)
    t_sched = getattr(torch.optim.lr_scheduler, name)(t_opt, **kwargs)
    step = graphc.compile_train_step(g_model, gnn.CrossEntropyLoss(), g_opt)
    batches = class_batches(steps=12)
    with caplog.at_level(logging.INFO, logger="graphc"):
        for epoch in range(6):
            for x, y in batches[2 * epoch:2 * epoch + 2]:
                g_loss = step(graphc.tensor(x), graphc.tensor(y)).item()
                np.testing.assert_allclose(g_loss, torch_step(t_model, t_opt, x, y), rtol=1e-4)
            g_sched.step(), t_sched.step()
            np.testing.assert_allclose(g_sched.get_last_lr(), t_sched.get_last_lr(), rtol=1e-12)
    assert_same_params(g_model, t_model)
    assert step._cache.builds == 1
    assert len([r for r in caplog.records if r.name == "graphc.recompiles"]) == 1


def test_a_compiled_step_follows_reduce_lr_on_plateau():
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, "Adam", dict(lr=0.05))
    kwargs = dict(factor=0.5, patience=0)
    g_sched = lr_scheduler.ReduceLROnPlateau(g_opt, **kwargs)
    t_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **kwargs)
    step = graphc.compile_train_step(g_model, gnn.CrossEntropyLoss(), g_opt)
    x, y = class_batches()[0]
    for _ in range(8):  # one batch, so the loss is its own validation metric
        g_loss = step(graphc.tensor(x), graphc.tensor(y)).item()
        t_loss = torch_step(t_model, t_opt, x, y)
        g_sched.step(g_loss), t_sched.step(t_loss)
        assert g_sched.get_last_lr() == t_sched.get_last_lr()
    assert_same_params(g_model, t_model)
    assert step._cache.builds == 1
