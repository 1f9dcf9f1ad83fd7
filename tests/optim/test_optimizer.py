"""The Optimizer base: state_dict()/load_state_dict() in torch's layout, checked before applied."""
import copy

import numpy as np
import pytest

import graphc
import graphc.nn as gnn
from optim_oracle import (check_repr_matches_torch, class_batches, classifier_pair, eager_step, make_optimizers,
                          param_groups, to_numpy_state_dict, torch_step)


def _trained_adam(steps=3, groups=None):
    model, t_model = classifier_pair()
    opt, t_opt = make_optimizers(model, t_model, "Adam", dict(lr=0.01), groups)
    for x, y in class_batches()[:steps]:
        eager_step(model, opt, x, y)
        torch_step(t_model, t_opt, x, y)
    return model, opt, t_opt


def test_state_dict_layout_numbers_parameters_across_groups():
    model, opt, _ = _trained_adam(groups=dict(lr=0.5))
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2, 3]]
    assert sorted(saved["state"]) == [0, 1, 2, 3]
    assert saved["state"][2]["step"] == 3
    np.testing.assert_array_equal(saved["state"][3]["exp_avg"].numpy(), opt.state[model[2].bias]["exp_avg"].numpy())
    assert saved["param_groups"][1]["lr"] == 0.5


@pytest.mark.parametrize("break_it, message", [
    (lambda s: s["param_groups"].append(dict(s["param_groups"][0])), "different number of parameter groups"),
    (lambda s: s["param_groups"][0]["params"].pop(), "doesn't match the size"),
    (lambda s: s["state"].__setitem__(9, s["state"][0]), "parameter 9"),
    (lambda s: s["state"][3].__setitem__("exp_avg", np.zeros((2, 2), np.float32)), "has shape"),
])
def test_load_state_dict_checks_every_entry_before_changing_anything(break_it, message):
    model, opt, _ = _trained_adam()
    saved = copy.deepcopy(opt.state_dict())
    break_it(saved)
    before_groups = copy.deepcopy([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups])
    before_state = {p: {k: (v.numpy().copy() if hasattr(v, "numpy") else v) for k, v in s.items()}
                    for p, s in opt.state.items()}
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(saved)
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] == before_groups
    for p, s in opt.state.items():
        for k, v in s.items():
            np.testing.assert_array_equal(np.asarray(v), np.asarray(before_state[p][k]))


def test_loaded_state_is_a_copy():
    model, opt, _ = _trained_adam()
    saved = copy.deepcopy(opt.state_dict())
    fresh_model, _ = classifier_pair()
    fresh = graphc.optim.Adam(fresh_model.parameters())
    fresh.load_state_dict(saved)
    before = fresh.state[fresh_model[0].weight]["exp_avg"].numpy().copy()
    saved["state"][0]["exp_avg"].numpy()[...] = 7.0
    np.testing.assert_array_equal(fresh.state[fresh_model[0].weight]["exp_avg"].numpy(), before)
    assert fresh.param_groups[0]["lr"] == 0.01 and fresh.param_groups[0]["params"][0] is fresh_model[0].weight


def test_torch_kernel_flags_are_dropped_and_missing_options_filled_on_loading():
    _, opt, t_opt = _trained_adam()
    saved = to_numpy_state_dict(t_opt.state_dict())
    del saved["param_groups"][0]["decoupled_weight_decay"]  # as an older torch saved it
    opt.load_state_dict(saved)
    assert not {"foreach", "capturable", "differentiable", "fused"} & set(opt.param_groups[0])
    assert opt.param_groups[0]["decoupled_weight_decay"] is False


def test_rewinding_a_compiled_step_with_load_state_dict_repeats_it():
    """load_state_dict replaces the state arrays a compiled step reads: after rewinding the
    model and the optimizer, the same batch gives the same parameters again."""
    model, _ = classifier_pair()
    opt = graphc.optim.RMSprop(param_groups(model, dict(momentum=0.9)), lr=0.01, centered=True)
    step = graphc.compile_train_step(model, gnn.CrossEntropyLoss(), opt)
    batches = class_batches(steps=4)
    for x, y in batches[:3]:
        step(graphc.tensor(x), graphc.tensor(y))
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    x, y = batches[3]
    step(graphc.tensor(x), graphc.tensor(y))
    after = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    model.load_state_dict(saved_model)
    opt.load_state_dict(saved_opt)
    step(graphc.tensor(x), graphc.tensor(y))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), after[k], err_msg=k)
    assert step._cache.builds == 1
    assert all(s["step"] == 4 for s in opt.state.values())


@pytest.mark.parametrize("name, kwargs, groups", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), None), ("Adam", dict(amsgrad=True), dict(lr=0.5)),
    ("AdamW", dict(), None), ("RMSprop", dict(centered=True), None), ("Adadelta", dict(), dict(rho=0.5)),
    ("Adagrad", dict(lr_decay=0.1), None)])
def test_repr_matches_torch(name, kwargs, groups):
    check_repr_matches_torch(name, kwargs, groups)
