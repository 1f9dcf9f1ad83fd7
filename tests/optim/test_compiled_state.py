"""A compiled train step keeps the step counts it ran to itself between steps (so a step costs
the same at any number of parameters, issue 6 item 8); `optimizer.state`, `state_dict()` and
eager steps must still see exactly what per-step commits would have left, checked against torch."""
import copy
import pickle
import threading

import numpy as np
import pytest

import graphc
import graphc.nn as gnn
from optim_oracle import (BATCH, CLASSES, assert_same_optimizer_state, assert_same_params, class_batches,
                          classifier_pair, eager_step, make_optimizers, torch_step)

CASES = {
    "sgd": ("SGD", dict(lr=0.1), None),
    "sgd_momentum": ("SGD", dict(lr=0.1, momentum=0.9), None),
    "sgd_weight_decay_two_groups": ("SGD", dict(lr=0.1, momentum=0.8, weight_decay=0.05), dict(lr=0.02)),
    "adam": ("Adam", dict(lr=0.01), None),
    "adam_two_groups": ("Adam", dict(lr=0.01), dict(lr=0.003, betas=(0.8, 0.99))),
    "adamw": ("AdamW", dict(lr=0.01), None),
    "rmsprop": ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True), None),
    "adadelta": ("Adadelta", dict(), None),
    "adagrad": ("Adagrad", dict(lr_decay=0.1), None),
}


def _compiled_step(model, opt):
    step = graphc.compile_train_step(model, gnn.CrossEntropyLoss(), opt)
    return lambda x, y: step(graphc.tensor(x), graphc.tensor(y)).item()


@pytest.mark.parametrize("case", list(CASES))
def test_eager_and_compiled_steps_interleaved_follow_torch(case):
    """Compiled after eager and eager after compiled: each side continues from the other's
    step counts and buffers (SGD's momentum buffer started by either)."""
    name, kwargs, groups = CASES[case]
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs, groups)
    compiled = _compiled_step(g_model, g_opt)
    for kind, (x, y) in zip("ccecceec", class_batches(steps=8)):
        g_loss = compiled(x, y) if kind == "c" else eager_step(g_model, g_opt, x, y)
        np.testing.assert_allclose(g_loss, torch_step(t_model, t_opt, x, y), rtol=1e-4)
    assert_same_params(g_model, t_model)
    assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)


def test_eager_steps_first_then_compiled_ones_follow_torch():
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, "SGD", dict(lr=0.1, momentum=0.9, nesterov=True))
    compiled = _compiled_step(g_model, g_opt)
    for i, (x, y) in enumerate(class_batches(steps=6)):
        g_loss = eager_step(g_model, g_opt, x, y) if i < 3 else compiled(x, y)
        np.testing.assert_allclose(g_loss, torch_step(t_model, t_opt, x, y), rtol=1e-4)
    assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)


def test_a_held_state_mapping_and_state_dict_see_every_compiled_step():
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, "Adam", dict(lr=0.01))
    compiled = _compiled_step(g_model, g_opt)
    state = g_opt.state  # held across steps, as torch's is live
    batches = class_batches(steps=5)
    for i, (x, y) in enumerate(batches):
        compiled(x, y)
        torch_step(t_model, t_opt, x, y)
        assert [s["step"] for s in state.values()] == [i + 1] * 4
        assert g_opt.state_dict()["state"][3]["step"] == i + 1
    assert state is g_opt.state and len(state) == 4 and g_model[0].weight in state
    assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)


def test_params_of_one_group_at_different_step_counts_keep_their_own_bias_corrections():
    """A parameter frozen for some eager steps has a smaller step count: compiled steps use
    its own (Adam's bias corrections), as torch's per-parameter steps do."""
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, "Adam", dict(lr=0.01), dict(lr=0.05))
    batches = class_batches(steps=7)
    for model in (g_model, t_model):
        model[2].bias.requires_grad_(False)
    for x, y in batches[:2]:
        eager_step(g_model, g_opt, x, y)
        torch_step(t_model, t_opt, x, y)
    for model in (g_model, t_model):
        model[2].bias.requires_grad_(True)
    compiled = _compiled_step(g_model, g_opt)
    for x, y in batches[2:]:
        np.testing.assert_allclose(compiled(x, y), torch_step(t_model, t_opt, x, y), rtol=1e-4)
    assert [s["step"] for s in g_opt.state.values()] == [7, 7, 7, 5]
    assert_same_params(g_model, t_model)
    assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)


def test_two_compiled_steps_sharing_an_optimizer_take_turns():
    """Two batch sizes (two specialisations) and a second compile_train_step on the same
    optimizer: each hands its step counts on to the next."""
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, "Adam", dict(lr=0.01))
    first, second = _compiled_step(g_model, g_opt), _compiled_step(g_model, g_opt)
    for i, (x, y) in enumerate(class_batches(steps=8)):
        x, y = (x[:4], y[:4]) if i % 3 == 1 else (x, y)
        g_loss = (first if i % 2 else second)(x, y)
        np.testing.assert_allclose(g_loss, torch_step(t_model, t_opt, x, y), rtol=1e-4)
    assert_same_params(g_model, t_model)
    assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)


@pytest.mark.parametrize("case", ["sgd_momentum", "adam", "adagrad"])
def test_a_failed_step_after_compiled_steps_commits_nothing(case):
    name, kwargs, groups = CASES[case]
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs, groups)
    compiled = _compiled_step(g_model, g_opt)
    batches = class_batches(steps=4)
    bad = np.full(BATCH, CLASSES + 2, np.int64)
    for i, (x, y) in enumerate(batches):
        compiled(x, y)
        torch_step(t_model, t_opt, x, y)
        with pytest.raises(IndexError, match="out of bounds"):
            compiled(x, bad)
        if i == 1:  # looked at between a failed step and the next one
            assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)
    assert_same_params(g_model, t_model)
    assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)


def test_clearing_the_state_restarts_the_optimizer_as_eagerly():
    (g_model, _), (e_model, _) = classifier_pair(), classifier_pair()
    g_opt = graphc.optim.Adam(g_model.parameters(), lr=0.01)
    e_opt = graphc.optim.Adam(e_model.parameters(), lr=0.01)
    compiled = _compiled_step(g_model, g_opt)
    for i, (x, y) in enumerate(class_batches(steps=5)):
        if i == 3:
            g_opt.state.clear()
            e_opt.state.clear()
        np.testing.assert_allclose(compiled(x, y), eager_step(e_model, e_opt, x, y), rtol=1e-4)
    assert [s["step"] for s in g_opt.state.values()] == [2] * 4
    assert_same_params(g_model, e_model)


def test_state_assigned_or_loaded_replaces_what_the_compiled_step_trains():
    g_model, _ = classifier_pair()
    opt = graphc.optim.SGD(g_model.parameters(), lr=0.1, momentum=0.9)
    compiled = _compiled_step(g_model, opt)
    x, y = class_batches()[0]
    compiled(x, y)
    saved = copy.deepcopy(opt.state_dict())
    compiled(x, y)
    opt.state = {}  # a plain dict, as `optimizer.state = defaultdict(dict)` in torch code
    assert isinstance(opt.state, dict) and opt.state == {}
    compiled(x, y)
    assert list(opt.state_dict()["state"]) == [0, 1, 2, 3]
    opt.load_state_dict(saved)
    buffer = opt.state[g_model[0].weight]["momentum_buffer"].numpy().copy()
    compiled(x, y)
    assert not np.array_equal(opt.state[g_model[0].weight]["momentum_buffer"].numpy(), buffer)


def test_copies_and_pickles_of_the_state_are_plain_snapshots():
    g_model, _ = classifier_pair()
    opt = graphc.optim.Adam(g_model.parameters())
    compiled = _compiled_step(g_model, opt)
    x, y = class_batches()[0]
    compiled(x, y)
    compiled(x, y)
    snapshot, pickled = copy.deepcopy(opt.state), pickle.loads(pickle.dumps(opt.state))
    compiled(x, y)
    for taken in (snapshot, pickled):
        assert type(taken) is dict and len(taken) == 4
        assert all(s["step"] == 2 for s in taken.values())
    weight = g_model[0].weight
    assert not np.array_equal(snapshot[next(iter(snapshot))]["exp_avg"].numpy(),
                              opt.state[weight]["exp_avg"].numpy())
    assert all(s["step"] == 3 for s in opt.state.values())


def test_readers_on_other_threads_see_whole_steps():
    """The optimizer lock covers writing the step counts in: a reader never sees some
    parameters a step ahead of others."""
    g_model, _ = classifier_pair()
    opt = graphc.optim.Adam(g_model.parameters(), lr=0.01)
    compiled = _compiled_step(g_model, opt)
    x, y = class_batches()[0]
    compiled(x, y)
    seen, done = [], threading.Event()

    def read():
        while not done.is_set():
            seen.append({s["step"] for s in opt.state.values()})

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(100):
            compiled(x, y)
    finally:
        done.set()
        reader.join()
    assert seen and all(len(steps) == 1 for steps in seen)
    assert {s["step"] for s in opt.state.values()} == {101}
