"""At most max_specializations compiled specialisations stay live per model, least recently
used dropped with their native code; recompiles are logged (issue 5, item 12)."""
import gc
import logging
import os
import subprocess
import sys
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
    assert reasons[0] == "compiling Sequential.forward: first call"
    assert reasons[1] == "recompiling Sequential.forward: argument 'input' shape [1, 5] -> [2, 5]"


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


def _selector(nn):
    """A model that picks its layers by string arguments, as the same code for graphc and torch."""
    class Selector(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleDict({"wide": nn.Linear(4, 6), "narrow": nn.Linear(4, 6, bias=False)})
            self.acts = nn.ModuleDict({"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid()})
            self.head = nn.Linear(6, 2)

        def forward(self, x, block, act="relu", scale=1.0, shape=None, negate=False, repeat=1):
            for _ in range(repeat):
                x = self.acts[act](self.blocks[block](x)) if x.shape[-1] == 4 else x
            x = self.head(x) * scale
            if shape is not None:
                x = x.reshape(shape)
            return -x if negate else x
    return Selector()


CALLS = [(("wide",), {}), (("wide",), {"act": "tanh"}), (("narrow", "sigmoid"), {"scale": 0.5}),
         (("narrow",), {"act": "relu", "shape": (1, 6), "negate": True}), (("wide", "tanh", 2.0, None, True), {}),
         (("wide",), {"repeat": 2, "act": "sigmoid"})]


@pytest.mark.parametrize("args, kwargs", CALLS)
def test_static_arguments_pick_layers_compiled_like_eager_and_torch(args, kwargs):
    torch = pytest.importorskip("torch")
    model, reference = _selector(nn), _selector(torch.nn)
    reference.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    compiled = graphc.compile(model)
    x = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
    out = compiled(graphc.tensor(x), *args, **kwargs)
    eager = model(graphc.tensor(x), *args, **kwargs)
    expected = reference(torch.from_numpy(x), *args, **kwargs)
    np.testing.assert_allclose(out.detach().numpy(), eager.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    (out * out).sum().backward()
    (expected * expected).sum().backward()
    for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
        assert (p.grad is None) == (q.grad is None), name  # layers not chosen get no gradient
        if q.grad is not None:
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_static_values_are_part_of_the_key_and_tensors_stay_inputs():
    model = _selector(nn)
    compiled = graphc.compile(model)
    with graphc.no_grad():
        for batch in (3, 3, 5):
            compiled(graphc.randn(batch, 4), "wide", act="tanh", scale=2.0)
        assert compiled.specializations() == 2  # the batch of 5 only
        compiled(graphc.randn(5, 4), "wide", scale=2.0, act="tanh")  # keyword order does not matter
        assert compiled.specializations() == 2
        compiled(graphc.randn(5, 4), block="wide", act="tanh", scale=2.0)  # given by keyword: another call shape
        compiled(graphc.randn(5, 4), "wide", act="tanh", scale=2)  # an int is not the float 2.0
        assert compiled.specializations() == 4
        x = graphc.randn(5, 4)
        np.testing.assert_allclose(compiled(x, "wide", repeat=True).numpy(), model(x, "wide", repeat=True).numpy(),
                                   rtol=1e-5, atol=1e-6)
        assert compiled.specializations() == 5  # True is not 1


def test_a_tensor_given_by_keyword_is_an_input():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x, mask=None, mode="add"):
            out = self.fc(x)
            return out if mask is None else (out + mask if mode == "add" else out * mask)
    model = Masked()
    compiled = graphc.compile(model)
    x, mask = graphc.randn(2, 3), graphc.randn(2, 3)
    with graphc.no_grad():
        for kwargs in ({"mask": mask}, {"mode": "mul", "mask": mask}, {}):
            np.testing.assert_allclose(compiled(x, **kwargs).numpy(), model(x, **kwargs).numpy(), rtol=1e-5, atol=1e-6)
        other = graphc.randn(2, 3)
        np.testing.assert_allclose(compiled(x, mask=other).numpy(), model(x, mask=other).numpy(), rtol=1e-5, atol=1e-6)
    assert compiled.specializations() == 3


def _messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "graphc.recompiles"]


def test_each_recompile_says_what_changed(caplog):
    compiled = graphc.compile(_selector(nn))
    with graphc.no_grad(), caplog.at_level(logging.INFO, logger="graphc"):
        compiled(graphc.randn(2, 4), "wide", act="relu")
        compiled(graphc.randn(2, 4), "wide", act="tanh")
        compiled(graphc.randn(4, 4), "wide", act="tanh")
        compiled(graphc.randn(4, 4), "narrow", act="tanh", scale=3.0)
        compiled(graphc.randn(4, 4), "narrow", scale=3.0)
        compiled(graphc.randn(4, 4).requires_grad_(), "narrow", scale=3.0)
        compiled.eval()
        compiled(graphc.randn(4, 4).requires_grad_(), "narrow", scale=3.0)
    assert _messages(caplog) == [
        "compiling Selector.forward: first call",
        "recompiling Selector.forward: argument 'act' changed from 'relu' to 'tanh'",
        "recompiling Selector.forward: argument 'x' shape [2, 4] -> [4, 4]",
        "recompiling Selector.forward: argument 'block' changed from 'wide' to 'narrow'; argument 'scale' given as 3.0",
        "recompiling Selector.forward: argument 'act' no longer given (was 'tanh')",
        "recompiling Selector.forward: argument 'x' requires_grad False -> True",
        "recompiling Selector.forward: training mode changed from True to False",
    ]


def test_graphc_log_recompiles_prints_on_stderr_without_logging_set_up():
    script = ("import graphc, graphc.nn as nn\n"
              "m = graphc.compile(nn.Linear(3, 2))\n"
              "with graphc.no_grad():\n"
              "    m(graphc.randn(2, 3)); m(graphc.randn(4, 3))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHC_LOG")}
    quiet = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    loud = subprocess.run([sys.executable, "-c", script], env={**env, "GRAPHC_LOG": "recompiles"},
                          capture_output=True, text=True, timeout=300)
    assert quiet.returncode == loud.returncode == 0, loud.stderr
    assert "compiling" not in quiet.stderr
    assert loud.stderr.splitlines() == ["[graphc] compiling Linear.forward: first call",
                                        "[graphc] recompiling Linear.forward: argument 'input' shape [2, 3] -> [4, 3]"]


def test_an_unknown_log_topic_warns(monkeypatch):
    from graphc import config
    config.reset_warnings()
    monkeypatch.setenv("GRAPHC_LOG", "recompiles,graphs")
    with pytest.warns(RuntimeWarning, match="unknown topic 'graphs'"):
        assert config.log_topics() == {"recompiles"}
    config.reset_warnings()


def test_a_hook_registered_after_compiling_is_traced_in(caplog):
    model = _model()
    compiled = graphc.compile(model)
    x = graphc.randn(3, 5)
    with graphc.no_grad():
        plain = compiled(x).numpy()
        handle = model[0].register_forward_hook(lambda module, args, out: out * 0.0)
        with caplog.at_level(logging.INFO, logger="graphc"):
            hooked = compiled(x).numpy()
        np.testing.assert_allclose(hooked, model(x).numpy(), rtol=1e-6)
        assert not np.allclose(hooked, plain)
        handle.remove()
        np.testing.assert_allclose(compiled(x).numpy(), plain, rtol=1e-6)
        nn.Linear(2, 2).register_forward_hook(lambda *a: None)  # another model's hook changes nothing here
        compiled(x)
    assert compiled.specializations() == 2  # without the hook again: the first specialisation
    assert _messages(caplog) == ["recompiling Sequential.forward: forward hooks changed from no hooks to 1 on '0'"]


def test_a_train_step_traces_hooks_of_the_model_and_the_loss():
    model = _model()
    loss_fn = nn.MSELoss()
    step = graphc.compile_train_step(model, loss_fn, graphc.optim.SGD(model.parameters(), lr=0.0))
    x, y = graphc.randn(4, 5), graphc.randn(4, 2)
    plain = step(x, y).item()
    with loss_fn.register_forward_hook(lambda module, args, out: out * 10.0):
        np.testing.assert_allclose(step(x, y).item(), plain * 10.0, rtol=1e-5)
    np.testing.assert_allclose(step(x, y).item(), plain, rtol=1e-6)
    assert len(step._cache) == 2


def test_a_train_step_specialises_on_static_arguments_too():
    model = _selector(nn)
    step = graphc.compile_train_step(model, nn.MSELoss(), graphc.optim.SGD(model.parameters(), lr=0.1))
    x, y = graphc.randn(4, 4), graphc.randn(4, 2)
    for block, act in [("wide", "tanh"), ("narrow", "relu"), ("wide", "tanh")]:
        with graphc.no_grad():
            expected = nn.MSELoss()(model(x, block, act), y).item()
        before = model.blocks[block].weight.numpy().copy()
        np.testing.assert_allclose(step(x, block, act, y).item(), expected, rtol=1e-5)
        assert not np.array_equal(before, model.blocks[block].weight.numpy())
    assert len(step._cache) == 2
