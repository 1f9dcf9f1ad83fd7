"""A train step is all or nothing, and atomic across threads (issue 5, items 5 and 6)."""
import sys
import threading

import numpy as np
import pytest

import graphc
import graphc.nn as nn


def _model_and_step(optimizer=graphc.optim.Adam):
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = optimizer(model.parameters(), lr=0.01)
    return model, opt, graphc.compile_train_step(model, nn.MSELoss(), opt)


def _snapshot(model, opt):
    params = [p.detach().numpy().copy() for p in model.parameters()]
    state = {id(p): {k: (v.numpy().copy() if hasattr(v, "numpy") else v) for k, v in s.items()}
             for p, s in opt.state.items()}
    return params, state


def _same(a, b):
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, y)
    assert a[1].keys() == b[1].keys()
    for p in a[1]:
        assert a[1][p].keys() == b[1][p].keys()
        for k in a[1][p]:
            np.testing.assert_array_equal(np.asarray(a[1][p][k]), np.asarray(b[1][p][k]))


def test_a_step_that_fails_its_input_check_changes_no_parameter_and_no_optimizer_state():
    model, opt, step = _model_and_step()
    x, y = graphc.randn(4, 6), graphc.randn(4, 3)
    step(x, y)
    before = _snapshot(model, opt)
    first = model[0]
    good = first.weight.data
    first.weight.data = good.double()  # the compiled step expects float32: the call must fail
    with pytest.raises(graphc.InputError, match="expected float32"):
        step(x, y)
    first.weight.data = good
    _same(before, _snapshot(model, opt))
    step(x, y)  # and the next good step is step 2
    assert all(s["step"] == 2 for s in opt.state.values())


def test_a_first_step_that_fails_starts_no_optimizer_state():
    model, opt, step = _model_and_step()
    first = model[0]
    good = first.weight.data
    step(graphc.randn(4, 6), graphc.randn(4, 3))
    opt.state.clear()
    first.weight.data = good.double()
    with pytest.raises(graphc.InputError):
        step(graphc.randn(4, 6), graphc.randn(4, 3))
    assert opt.state == {}


@pytest.mark.parametrize("optimizer", [graphc.optim.Adam, graphc.optim.SGD])
def test_steps_from_many_threads_equal_the_same_steps_in_turn(optimizer):
    x, y = graphc.randn(16, 6), graphc.randn(16, 3)
    threads, per_thread = 4, 60
    model, opt, step = _model_and_step(optimizer)
    for _ in range(threads * per_thread):
        step(x, y)
    expected = _snapshot(model, opt)

    model, opt, step = _model_and_step(optimizer)
    errors = []

    def work():
        try:
            for _ in range(per_thread):
                step(x, y)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors
    got = _snapshot(model, opt)
    for a, b in zip(got[0], expected[0]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert [s.get("step") for s in got[1].values()] == [s.get("step") for s in expected[1].values()]
