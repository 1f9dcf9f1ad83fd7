"""graphc/runners.py: the hyperparameter block a cohort of trained parameters shares."""
import numpy as np
import pytest

import graphc
from graphc.runners import _Cohort


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_a_cohort_fills_its_views_as_numpy_would(dtype):
    cohort = _Cohort({}, 0, frozenset(), ("lr", "beta", "step_size"), np.dtype(dtype))
    views = dict(cohort.hyper)
    values = {"lr": 0.1, "beta": 1 / 3, "step_size": 1e-7}
    cohort.fill(values)
    for name, value in values.items():
        assert views[name].shape == () and views[name] is cohort.hyper[name]
        assert views[name].tobytes() == np.asarray(value, dtype).tobytes()


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_values_struct_cannot_pack_go_through_numpy():
    cohort = _Cohort({}, 0, frozenset(), ("lr", "huge"), np.dtype("float32"))
    cohort.fill({"lr": graphc.tensor(0.5), "huge": 1e300})  # a tensor lr, and a float past float32's range
    assert float(cohort.hyper["lr"]) == 0.5 and np.isinf(cohort.hyper["huge"])
    cohort.fill({"lr": np.float32(0.25), "huge": 2.0})
    assert float(cohort.hyper["lr"]) == 0.25 and float(cohort.hyper["huge"]) == 2.0


def test_a_tensor_learning_rate_trains_compiled_as_eagerly():
    import graphc.nn as nn
    graphc.manual_seed(0)
    models = [nn.Linear(4, 3), nn.Linear(4, 3)]
    models[1].load_state_dict(models[0].state_dict())
    x, y = graphc.randn(8, 4), graphc.randn(8, 3)
    opts = [graphc.optim.Adam(m.parameters(), lr=graphc.tensor(0.01)) for m in models]
    step = graphc.compile_train_step(models[0], nn.MSELoss(), opts[0])
    for _ in range(3):
        step(x, y)
        opts[1].zero_grad()
        nn.MSELoss()(models[1](x), y).backward()
        opts[1].step()
    np.testing.assert_allclose(models[0].weight.detach().numpy(), models[1].weight.detach().numpy(), rtol=1e-5, atol=1e-6)
