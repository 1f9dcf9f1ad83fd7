"""RMSprop against torch.optim.RMSprop: eager, compiled, failed steps and state_dict round trips."""
import pytest

from optim_oracle import (check_compiled_matches_torch_and_eager, check_defaults_match_torch,
                          check_eager_matches_torch, check_failed_compiled_step_changes_nothing,
                          check_invalid_arguments_raise_like_torch, check_state_dict_round_trips_with_torch)

CASES = {
    "plain": (dict(lr=0.01), None),
    "momentum": (dict(lr=0.01, momentum=0.9), None),
    "centered": (dict(lr=0.01, centered=True), None),
    "centered_momentum_weight_decay": (dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.05), None),
    "alpha_eps": (dict(lr=0.005, alpha=0.9, eps=1e-4), None),
    "maximize": (dict(lr=0.001, maximize=True), None),
    "groups_with_and_without_momentum": (dict(lr=0.01), dict(momentum=0.9, centered=True, lr=0.003)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_eager_matches_torch(case):
    check_eager_matches_torch("RMSprop", *CASES[case])


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_matches_torch_and_eager(case):
    check_compiled_matches_torch_and_eager("RMSprop", *CASES[case])


@pytest.mark.parametrize("case", ["plain", "centered_momentum_weight_decay"])
def test_failed_compiled_step_changes_nothing(case):
    check_failed_compiled_step_changes_nothing("RMSprop", *CASES[case])


@pytest.mark.parametrize("case, compiled", [("plain", False), ("centered_momentum_weight_decay", False),
                                            ("groups_with_and_without_momentum", True)])
def test_state_dict_round_trips_with_torch(case, compiled):
    check_state_dict_round_trips_with_torch("RMSprop", *CASES[case], compiled=compiled)


@pytest.mark.parametrize("kwargs", [dict(lr=-0.1), dict(eps=-1.0), dict(momentum=-0.5), dict(weight_decay=-1.0),
                                    dict(alpha=-0.1)])
def test_invalid_arguments_raise_like_torch(kwargs):
    check_invalid_arguments_raise_like_torch("RMSprop", kwargs)


def test_defaults_match_torch():
    check_defaults_match_torch("RMSprop")
