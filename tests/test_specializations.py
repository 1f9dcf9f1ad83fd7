"""At most max_specializations compiled specialisations stay live per model, least recently
used dropped with their native code; recompiles are logged (issue 5, item 12)."""
import gc
import logging
import weakref

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.specializations import Specializations


def _model():
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2))


def test_a_compiled_model_keeps_at_most_the_limit_and_releases_what_it_drops(caplog):
    model = _model()
    compiled = graphc.compile(model, max_specializations=3)
    natives = []
    with graphc.no_grad(), caplog.at_level(logging.INFO, logger="graphc"):
        for batch in range(1, 11):
            x = graphc.randn(batch, 5)
            np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
            natives.append(weakref.ref(compiled._cache.values()[-1].forward.native))
    assert compiled.specializations() == 3
    gc.collect()
    assert sum(ref() is not None for ref in natives) == 3  # the dropped engines are gone
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "max_specializations=3" in warnings[0].getMessage()
    assert "What keeps changing: argument 'input'" in warnings[0].getMessage()
    reasons = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "first call" in reasons[0] and "argument 'input': ((1, 5)" in reasons[1]


def test_the_least_recently_used_is_dropped_and_a_used_one_is_kept():
    built = []
    cache = Specializations("test", 2, lambda key: ["k"])
    for key in ["a", "b", "a", "c", "a", "b"]:
        cache.get((key,), lambda key=key: built.append(key) or key)
    assert built == ["a", "b", "c", "b"]  # "a" stayed: it was used before "c" came in
    assert [k for (k,) in cache._runners] == ["a", "b"]


def test_a_train_step_keeps_at_most_the_limit():
    model = _model()
    step = graphc.compile_train_step(model, nn.MSELoss(), graphc.optim.SGD(model.parameters(), lr=0.01),
                                     max_specializations=2)
    for batch in range(1, 6):
        step(graphc.randn(batch, 5), graphc.randn(batch, 2))
    assert len(step._cache) == 2


def test_the_limit_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        graphc.compile(_model(), max_specializations=0)
