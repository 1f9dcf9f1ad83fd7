"""Adagrad against torch.optim.Adagrad: eager, compiled, failed steps and state_dict round trips."""
import numpy as np
import pytest

import graphc
from optim_oracle import (check_compiled_matches_torch_and_eager, check_defaults_match_torch,
                          check_eager_matches_torch, check_failed_compiled_step_changes_nothing,
                          check_invalid_arguments_raise_like_torch, check_state_dict_round_trips_with_torch,
                          classifier_pair, to_numpy_state_dict, torch)

CASES = {
    "plain": (dict(lr=0.1), None),
    "lr_decay": (dict(lr=0.1, lr_decay=0.05), None),
    "weight_decay_initial_accumulator": (dict(lr=0.1, weight_decay=0.05, initial_accumulator_value=0.5), None),
    "eps_maximize": (dict(lr=0.01, eps=1e-3, maximize=True), None),
    "two_groups": (dict(lr=0.1), dict(lr=0.02, lr_decay=0.1, initial_accumulator_value=0.1)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_eager_matches_torch(case):
    check_eager_matches_torch("Adagrad", *CASES[case])


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_matches_torch_and_eager(case):
    check_compiled_matches_torch_and_eager("Adagrad", *CASES[case])


@pytest.mark.parametrize("case", ["plain", "weight_decay_initial_accumulator"])
def test_failed_compiled_step_changes_nothing(case):
    check_failed_compiled_step_changes_nothing("Adagrad", *CASES[case])


@pytest.mark.parametrize("case, compiled", [("lr_decay", False), ("two_groups", True)])
def test_state_dict_round_trips_with_torch(case, compiled):
    check_state_dict_round_trips_with_torch("Adagrad", *CASES[case], compiled=compiled)


def test_state_starts_at_construction_as_torch():
    """torch fills every parameter's sum with initial_accumulator_value at step 0 right away."""
    g_model, t_model = classifier_pair()
    g_opt = graphc.optim.Adagrad(g_model.parameters(), initial_accumulator_value=0.25)
    t_opt = torch.optim.Adagrad(t_model.parameters(), initial_accumulator_value=0.25)
    g_saved, t_saved = g_opt.state_dict(), to_numpy_state_dict(t_opt.state_dict())
    assert g_saved["state"].keys() == t_saved["state"].keys()
    for i, entry in t_saved["state"].items():
        assert g_saved["state"][i]["step"] == int(entry["step"])
        np.testing.assert_array_equal(g_saved["state"][i]["sum"].numpy(), entry["sum"])


@pytest.mark.parametrize("kwargs", [dict(lr=-0.1), dict(lr_decay=-1.0), dict(weight_decay=-1.0),
                                    dict(initial_accumulator_value=-1.0), dict(eps=-1.0)])
def test_invalid_arguments_raise_like_torch(kwargs):
    check_invalid_arguments_raise_like_torch("Adagrad", kwargs)


def test_defaults_match_torch():
    check_defaults_match_torch("Adagrad")
