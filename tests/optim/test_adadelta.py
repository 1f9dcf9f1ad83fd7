"""Adadelta against torch.optim.Adadelta, and the pytorch/examples mnist recipe (Adadelta + StepLR)."""
import numpy as np
import pytest

import graphc
import graphc.nn as gnn
import graphc.nn.functional as F
from graphc.optim.lr_scheduler import StepLR
from optim_oracle import (check_compiled_matches_torch_and_eager, check_defaults_match_torch,
                          check_eager_matches_torch, check_failed_compiled_step_changes_nothing,
                          check_invalid_arguments_raise_like_torch, check_state_dict_round_trips_with_torch, torch)

CASES = {
    "defaults": (dict(), None),
    "lr_rho_eps": (dict(lr=0.5, rho=0.8, eps=1e-5), None),
    "weight_decay": (dict(weight_decay=0.1), None),
    "maximize": (dict(lr=0.1, maximize=True), None),
    "two_groups": (dict(), dict(lr=0.3, rho=0.95)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_eager_matches_torch(case):
    check_eager_matches_torch("Adadelta", *CASES[case])


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_matches_torch_and_eager(case):
    check_compiled_matches_torch_and_eager("Adadelta", *CASES[case])


@pytest.mark.parametrize("case", ["defaults", "weight_decay"])
def test_failed_compiled_step_changes_nothing(case):
    check_failed_compiled_step_changes_nothing("Adadelta", *CASES[case])


@pytest.mark.parametrize("case, compiled", [("defaults", False), ("two_groups", True)])
def test_state_dict_round_trips_with_torch(case, compiled):
    check_state_dict_round_trips_with_torch("Adadelta", *CASES[case], compiled=compiled)


@pytest.mark.parametrize("kwargs", [dict(lr=-0.1), dict(rho=1.5), dict(rho=-0.1), dict(eps=-1.0),
                                    dict(weight_decay=-1.0)])
def test_invalid_arguments_raise_like_torch(kwargs):
    check_invalid_arguments_raise_like_torch("Adadelta", kwargs)


def test_defaults_match_torch():
    check_defaults_match_torch("Adadelta")


# ---- the pytorch/examples mnist recipe ------------------------------------------------------------

class MnistNet(gnn.Module):
    """The mnist example's classifier head on 8x8 digits (graphc has no Conv2d or Dropout yet):
    fully connected layers, log_softmax and nll_loss, as the example's forward ends."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = gnn.Linear(64, 32), gnn.Linear(32, 10)

    def forward(self, x):
        return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


class TorchMnistNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)

    def forward(self, x):
        return torch.nn.functional.log_softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)


def _nll(output, target):
    return F.nll_loss(output, target)


@pytest.mark.parametrize("compiled", [False, True])
def test_mnist_example_recipe_matches_torch(compiled):
    """`optimizer = optim.Adadelta(model.parameters(), lr=args.lr)`, `scheduler = StepLR(optimizer,
    step_size=1, gamma=args.gamma)`, `scheduler.step()` after each epoch: 3 epochs of 4 batches."""
    lr, gamma = 1.0, 0.7  # the example's defaults
    graphc.manual_seed(0)
    model, t_model = MnistNet(), TorchMnistNet()
    t_model.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    optimizer = graphc.optim.Adadelta(model.parameters(), lr=lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=gamma)
    t_optimizer = torch.optim.Adadelta(t_model.parameters(), lr=lr)
    t_scheduler = torch.optim.lr_scheduler.StepLR(t_optimizer, step_size=1, gamma=gamma)
    step = graphc.compile_train_step(model, _nll, optimizer) if compiled else None
    rng = np.random.default_rng(0)
    for epoch in range(3):
        for _ in range(4):
            x = rng.standard_normal((16, 64)).astype(np.float32)
            y = rng.integers(0, 10, 16).astype(np.int64)
            if step is not None:
                loss = step(graphc.tensor(x), graphc.tensor(y)).item()
            else:
                optimizer.zero_grad()
                loss_tensor = F.nll_loss(model(graphc.tensor(x)), graphc.tensor(y))
                loss_tensor.backward()
                optimizer.step()
                loss = loss_tensor.item()
            t_optimizer.zero_grad()
            t_loss = torch.nn.functional.nll_loss(t_model(torch.tensor(x)), torch.tensor(y))
            t_loss.backward()
            t_optimizer.step()
            np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-4)
        scheduler.step()
        t_scheduler.step()
        assert scheduler.get_last_lr() == t_scheduler.get_last_lr()
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(value.numpy(), t_model.state_dict()[name].numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    if step is not None:
        assert step._cache.builds == 1  # three learning rates, one compiled step
