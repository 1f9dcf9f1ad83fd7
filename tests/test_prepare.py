"""The prepare graph: parameter-only values are hoisted out of inference graphs, computed once,
and computed again after any write or rebind of a parameter or buffer, so weights changed after
compiling (in place, by .data, load_state_dict, an optimizer step or a compiled train step) are used."""
import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.ir import GraphBuilder, interpret, verify
from graphc.prepare import hoist, hoisted_values
from graphc.stages import Driver


class Scaled(nn.Module):
    """An eval BatchNorm's arithmetic after a Linear: scale and shift depend on parameters only."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.weight = nn.Parameter(graphc.ones(4) * 2)
        self.register_buffer("running_var", graphc.ones(4) * 4)
        self.register_buffer("running_mean", graphc.ones(4) * 0.5)

    def forward(self, x):
        scale = self.weight / graphc.sqrt(self.running_var + 1e-5)
        return self.fc(x) * scale + (1.0 - self.running_mean * scale)


def _graph():
    b = GraphBuilder()
    x = b.input("x", "user", (3, 4), "float32")
    w = b.input("w", "param", (4,), "float32")
    v = b.input("v", "buffer", (4,), "float32")
    one = b.constant(1.0, "float32")
    s = b.add("add", (v, one), {}, (4,), "float32")
    r = b.add("sqrt", (s,), {}, (4,), "float32")
    q = b.add("div", (w, r), {}, (4,), "float32")
    e = b.add("expand", (q,), {"shape": (3, 4)}, (3, 4), "float32")
    y = b.add("mul", (x, e), {}, (3, 4), "float32")
    return b.finish([y, q])


def test_hoists_parameter_only_values_but_not_broadcasts():
    graph = _graph()
    assert hoisted_values(graph) == [6]  # the division; its expand stays in main
    split = hoist(graph)
    verify(split.prepare)
    verify(split.main)
    assert [n.role.kind for n in split.prepare.inputs] == ["param", "buffer"]
    assert [str(n.role) for n in split.main.inputs][-1] == "prepared 0"
    assert [n.op for n in split.main.nodes if n.op not in ("input", "constant")] == ["expand", "mul"]
    rng = np.random.default_rng(0)
    x, w, v = rng.standard_normal((3, 4), dtype=np.float32), rng.random(4, dtype=np.float32), rng.random(4, dtype=np.float32)
    expected = interpret(graph, [x, w, v])
    prepared = interpret(split.prepare, [w, v])
    for a, b in zip(interpret(split.main, [x, w, v, *prepared]), expected):
        np.testing.assert_array_equal(a, b)
    assert str(split).startswith("prepare:\n")


def test_graphs_with_updates_or_nothing_to_hoist_stay_whole():
    b = GraphBuilder()
    x = b.input("x", "user", (4,), "float32")
    w = b.input("w", "param", (4,), "float32")
    y = b.add("mul", (x, w), {}, (4,), "float32")
    plain = b.finish([y])
    assert hoist(plain).prepare is None and hoist(plain).main is plain
    b = GraphBuilder()
    w = b.input("w", "param", (4,), "float32")
    d = b.add("mul", (w, w), {}, (4,), "float32")
    updating = b.finish([d], updates=[(d, w)])
    assert hoist(updating).prepare is None


def _close(cm, model, x):
    with graphc.no_grad():
        np.testing.assert_allclose(cm(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


def test_compiled_model_runs_a_prepare_graph_and_sees_every_kind_of_weight_change():
    graphc.manual_seed(0)
    model = Scaled().eval()
    stages = []
    driver_stages = Driver(stages.append)
    from graphc.compiled import build_inference
    runner = build_inference(graphc.trace(model, graphc.randn(3, 6)), driver_stages, "test")
    assert runner.prepare is not None and [s.label for s in stages if s.name == "native"] == ["forward", "prepare"]
    assert "prepared" in [s.name for s in stages]

    cm = graphc.compile(model)
    x = graphc.randn(3, 6)
    _close(cm, model, x)
    model.running_var.copy_(graphc.ones(4) * 9)  # in place
    _close(cm, model, x)
    model.weight.data = graphc.ones(4) * 3  # rebound
    _close(cm, model, x)
    state = model.state_dict()
    state["running_mean"] = graphc.zeros(4)
    model.load_state_dict(state)
    _close(cm, model, x)
    optimizer = graphc.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    loss = model(x).sum()
    loss.backward()
    optimizer.step()  # an eager optimizer step writes in place
    model.eval()
    _close(cm, model, x)
    step = graphc.compile_train_step(model, nn.MSELoss(), optimizer)
    model.train()
    step(x, graphc.zeros(3, 4))  # a compiled train step updates the parameters natively
    model.eval()
    _close(cm, model, x)


def test_prepare_graph_runs_only_after_a_change(monkeypatch):
    graphc.manual_seed(0)
    model = Scaled().eval()
    cm = graphc.compile(model)
    x = graphc.randn(3, 6)
    with graphc.no_grad():
        cm(x)
        (runner,) = cm._cache.values()
        calls = []
        run = runner.prepare.run
        monkeypatch.setattr(runner.prepare, "run", lambda *a: calls.append(1) or run(*a))
        for _ in range(5):
            cm(x)
        assert calls == []
        model.running_var.copy_(graphc.ones(4) * 2)
        cm(x), cm(x)
        assert calls == [1]


def test_dump_prints_the_prepared_stage(tmp_path, capsys):
    from graphc.cli import main
    path = tmp_path / "model.py"
    path.write_text("import sys\nsys.path.insert(0, %r)\nfrom test_prepare import Scaled\n" % str(
        __import__("pathlib").Path(__file__).parent))
    assert main(["dump", f"{path}:Scaled", "--input", "3x6", "--eval", "--stage", "prepared"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("prepare:") and "(prepared 0)" in out


@pytest.mark.parametrize("seed", range(3))
def test_linear_models_keep_results(seed):
    """A model with nothing to hoist is compiled as before."""
    graphc.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2)).eval()
    cm = graphc.compile(model)
    x = graphc.randn(4, 5)
    _close(cm, model, x)
    (runner,) = cm._cache.values()
    assert runner.prepare is None
