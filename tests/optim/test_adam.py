"""Adam and AdamW against torch.optim: eager, compiled, failed steps and state_dict round trips
(Adam's update cases beyond these are in test_optimizers.py)."""
import pytest

from optim_oracle import (check_compiled_matches_torch_and_eager, check_defaults_match_torch,
                          check_eager_matches_torch, check_failed_compiled_step_changes_nothing,
                          check_invalid_arguments_raise_like_torch, check_state_dict_round_trips_with_torch)

ADAMW_CASES = {
    "defaults": (dict(lr=0.01), None),
    "strong_decay": (dict(lr=0.01, weight_decay=0.5), None),
    "no_decay": (dict(lr=0.01, weight_decay=0.0), None),
    "amsgrad": (dict(lr=0.01, amsgrad=True), None),
    "amsgrad_maximize_betas": (dict(lr=0.01, amsgrad=True, maximize=True, betas=(0.8, 0.95), eps=1e-6), None),
    "groups_with_and_without_amsgrad": (dict(lr=0.01), dict(amsgrad=True, weight_decay=0.2, lr=0.003)),
}


@pytest.mark.parametrize("case", list(ADAMW_CASES))
def test_adamw_eager_matches_torch(case):
    check_eager_matches_torch("AdamW", *ADAMW_CASES[case])


@pytest.mark.parametrize("case", list(ADAMW_CASES))
def test_adamw_compiled_matches_torch_and_eager(case):
    check_compiled_matches_torch_and_eager("AdamW", *ADAMW_CASES[case])


@pytest.mark.parametrize("kwargs", [dict(lr=0.01, weight_decay=0.3, decoupled_weight_decay=True),
                                    dict(lr=0.01, weight_decay=0.3, amsgrad=True, decoupled_weight_decay=True)])
def test_adam_with_decoupled_weight_decay_is_adamw(kwargs):
    check_eager_matches_torch("Adam", kwargs)
    check_compiled_matches_torch_and_eager("Adam", kwargs)


@pytest.mark.parametrize("name, case", [("AdamW", "defaults"), ("AdamW", "amsgrad"), ("Adam", "defaults")])
def test_failed_compiled_step_changes_nothing(name, case):
    check_failed_compiled_step_changes_nothing(name, *ADAMW_CASES[case])


@pytest.mark.parametrize("name, case, compiled", [
    ("AdamW", "amsgrad", False), ("AdamW", "groups_with_and_without_amsgrad", True),
    ("Adam", "defaults", False), ("Adam", "amsgrad", True), ("Adam", "groups_with_and_without_amsgrad", False)])
def test_state_dict_round_trips_with_torch(name, case, compiled):
    check_state_dict_round_trips_with_torch(name, *ADAMW_CASES[case], compiled=compiled)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("kwargs", [dict(lr=-0.1), dict(eps=-1.0), dict(betas=(1.0, 0.999)), dict(betas=(0.9, 1.0)),
                                    dict(weight_decay=-0.1)])
def test_invalid_arguments_raise_like_torch(name, kwargs):
    check_invalid_arguments_raise_like_torch(name, kwargs)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_defaults_match_torch(name):
    check_defaults_match_torch(name)
