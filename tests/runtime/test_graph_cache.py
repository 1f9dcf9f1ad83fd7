"""A disk-cache hit found from the kernel graph skips Python lowering (issue 6, item 8)."""
import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.stages as stages
from graphc.ir import GraphBuilder
from graphc.ir.digest import graph_digest


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    monkeypatch.delenv("GRAPHC_DEBUG", raising=False)
    return tmp_path / "cache"


def _model():
    graphc.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()


def _compile_and_run(model, x):  # one call site: nodes record the user's source line
    with graphc.no_grad():
        return graphc.compile(model)(x).numpy()


def test_a_second_compile_of_the_same_graph_loads_without_lowering(cache_dir, monkeypatch):
    model, x = _model(), graphc.randn(4, 6)
    expected = _compile_and_run(model, x)

    def no_lowering(*args, **kwargs):
        raise AssertionError("lowered although the cache holds this graph")
    monkeypatch.setattr(stages, "lower", no_lowering)
    np.testing.assert_array_equal(_compile_and_run(model, x), expected)
    with pytest.raises(AssertionError, match="lowered although"):  # another shape is another graph
        _compile_and_run(model, graphc.randn(5, 6))


def test_new_weights_in_a_constant_change_the_digest():
    def graph(values):
        b = GraphBuilder()
        x = b.input("x", "user", (8,), "float32")
        c = b.constant(np.asarray(values, np.float32))
        return b.finish([b.add("add", [x, c], {}, (8,), "float32")])
    ones, other = graph(np.ones(8)), graph(np.r_[np.ones(7), 2.0])
    assert str(ones) == str(other)  # printed graphs abbreviate large constants ...
    assert graph_digest(ones) != graph_digest(other)  # ... the digest does not
    assert graph_digest(ones, "forward", 1) != graph_digest(ones, "forward", 2)


def test_dumps_and_debug_levels_that_show_the_ir_still_lower(cache_dir, monkeypatch, capsys):
    model, x = _model(), graphc.randn(4, 6)
    with graphc.no_grad():
        graphc.compile(model)(x)
        monkeypatch.setenv("GRAPHC_DEBUG", "4")
        graphc.compile(model)(x)
    assert "define" in capsys.readouterr().err  # the LLVM IR was made and shown
