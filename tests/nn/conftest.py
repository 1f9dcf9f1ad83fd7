"""Fixtures for graphc.nn tests: PyTorch is the oracle when installed; tests that need it skip otherwise."""
import numpy as np
import pytest

import graphc


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _seeded():
    graphc.manual_seed(0)
    yield


@pytest.fixture
def to_torch(torch):
    """Copy a graphc module's state into a torch module of the same structure (through numpy)."""
    def copy(graphc_module, torch_module):
        torch_module.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in
                                      graphc_module.state_dict().items()})
        return torch_module
    return copy
