"""SGD against torch.optim.SGD: failed compiled steps and state_dict round trips (the update
cases are in test_optimizers.py). torch's SGD keeps no step count and, without momentum, no state."""
import pytest

import graphc
from optim_oracle import (check_defaults_match_torch, check_failed_compiled_step_changes_nothing,
                          check_invalid_arguments_raise_like_torch, check_state_dict_round_trips_with_torch,
                          class_batches, classifier_pair, eager_step)

CASES = {
    "plain": (dict(lr=0.1), None),
    "momentum": (dict(lr=0.1, momentum=0.9), None),
    "nesterov_weight_decay": (dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05), None),
    "dampening": (dict(lr=0.1, momentum=0.9, dampening=0.3), None),
    "groups_with_and_without_momentum": (dict(lr=0.1), dict(momentum=0.9, lr=0.05)),
}


@pytest.mark.parametrize("case", ["plain", "momentum"])
def test_failed_compiled_step_changes_nothing(case):
    check_failed_compiled_step_changes_nothing("SGD", *CASES[case])


@pytest.mark.parametrize("case, compiled", [("plain", False), ("momentum", False), ("nesterov_weight_decay", True),
                                            ("dampening", True), ("groups_with_and_without_momentum", False)])
def test_state_dict_round_trips_with_torch(case, compiled):
    check_state_dict_round_trips_with_torch("SGD", *CASES[case], compiled=compiled)


def test_state_dict_without_momentum_is_empty_as_torch():
    model, _ = classifier_pair()
    opt = graphc.optim.SGD(model.parameters(), lr=0.1)
    x, y = class_batches()[0]
    eager_step(model, opt, x, y)
    assert opt.state_dict()["state"] == {}


@pytest.mark.parametrize("kwargs", [dict(lr=-0.1), dict(momentum=-0.5), dict(weight_decay=-1.0),
                                    dict(nesterov=True), dict(momentum=0.9, dampening=0.1, nesterov=True)])
def test_invalid_arguments_raise_like_torch(kwargs):
    check_invalid_arguments_raise_like_torch("SGD", kwargs)


def test_defaults_match_torch():
    check_defaults_match_torch("SGD")
