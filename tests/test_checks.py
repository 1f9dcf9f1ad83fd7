"""Preconditions checked inside native code: a failed check raises the op's own error naming the
module path, and nothing is committed (issue 5, items 2 and 3)."""
import copy

import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.ir import interpret

torch = pytest.importorskip("torch")


class Classifier(nn.Module):
    def __init__(self, loss=None):
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.loss = loss

    def forward(self, x, target):
        logits = self.fc(x)
        return self.loss(logits, target) if self.loss is not None else F.cross_entropy(logits, target)


def _state(model, optimizer):
    params = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    state = {id(p): {k: (v.numpy().copy() if hasattr(v, "numpy") else copy.copy(v)) for k, v in s.items()}
             for p, s in optimizer.state.items()}
    return params, state


def _assert_same_state(before, after):
    assert before[0].keys() == after[0].keys() and before[1].keys() == after[1].keys()
    for k in before[0]:
        np.testing.assert_array_equal(before[0][k], after[0][k])
    for p in before[1]:
        assert before[1][p].keys() == after[1][p].keys()
        for k in before[1][p]:
            np.testing.assert_array_equal(np.asarray(before[1][p][k]), np.asarray(after[1][p][k]))


@pytest.mark.parametrize("bad", [99, -3, 4])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_a_compiled_forward_raises_pytorchs_index_error_for_a_bad_class(bad, loss):
    model = Classifier(getattr(F, loss))
    compiled = graphc.compile(model)
    x = graphc.randn(3, 6)
    compiled(x, graphc.tensor([0, 1, 2]))  # compiles; good labels run
    with pytest.raises(IndexError, match=rf"in module '<root>' \(Classifier\) at .*: Target {bad} is out of bounds\."):
        compiled(x, graphc.tensor([1, bad, 2]))
    with pytest.raises(IndexError, match=f"Target {bad} is out of bounds"):
        getattr(torch.nn.functional, loss)(torch.randn(3, 4), torch.tensor([1, bad, 2]))
    compiled(x, graphc.tensor([0, 1, 2]))  # still usable


def test_ignore_index_is_not_an_error_in_compiled_code():
    model = Classifier(nn.CrossEntropyLoss(ignore_index=-1))
    x = graphc.randn(3, 6)
    target = graphc.tensor([-1, 1, 3])
    np.testing.assert_allclose(graphc.compile(model)(x, target).item(), model(x, target).item(), rtol=1e-5)


@pytest.mark.parametrize("optimizer", [graphc.optim.SGD, graphc.optim.Adam])
@pytest.mark.parametrize("labels", [[0, 99, 2], [99, 99, 99], [-3, 1, 1]])
def test_a_train_step_with_a_bad_label_raises_and_changes_nothing(optimizer, labels):
    model = Classifier()
    opt = optimizer(model.parameters(), lr=0.1) if optimizer is graphc.optim.SGD else optimizer(model.parameters())
    step = graphc.compile_train_step(model, lambda loss, _: loss, opt)
    x = graphc.randn(3, 6)
    step(x, graphc.tensor([0, 1, 2]), graphc.tensor(0.0))
    before = _state(model, opt)
    bad = next(v for v in labels if not 0 <= v < 4)
    with pytest.raises(IndexError, match=f"Target {bad} is out of bounds"):
        step(x, graphc.tensor(labels), graphc.tensor(0.0))
    _assert_same_state(before, _state(model, opt))
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.parameters())


def test_compile_train_step_with_a_loss_module_checks_labels_too():
    model = nn.Linear(6, 4)
    opt = graphc.optim.Adam(model.parameters())
    step = graphc.compile_train_step(model, nn.CrossEntropyLoss(), opt)
    x = graphc.randn(5, 6)
    with pytest.raises(IndexError, match=r"in module '<CrossEntropyLoss>'.*Target 7 is out of bounds"):
        step(x, graphc.tensor([0, 1, 7, 2, 3]))
    assert opt.state == {}  # the failed first step started no state


def test_the_interpreter_raises_the_same_error():
    program = graphc.trace(Classifier(), graphc.randn(2, 6), graphc.tensor([0, 1]))
    arrays = program.input_arrays(graphc.randn(2, 6), graphc.tensor([0, 12]))
    with pytest.raises(IndexError, match=r"in module '<root>' \(Classifier\).*Target 12 is out of bounds\."):
        interpret(program.graph, arrays)


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_minus_infinity_in_a_logit_that_is_not_the_target_gives_pytorchs_finite_loss(loss):
    logits = np.array([[1.0, -np.inf, 2.0, 0.5], [0.5, 0.1, -np.inf, 3.0], [-np.inf, -np.inf, 0.0, 1.0]], np.float32)
    if loss == "nll_loss":
        with np.errstate(divide="ignore"):
            logits = np.log(np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    target = np.array([0, 3, 2])
    t_logits = torch.tensor(logits, requires_grad=True)
    expected = getattr(torch.nn.functional, loss)(t_logits, torch.tensor(target))
    expected.backward()
    assert np.isfinite(expected.item())

    class Loss(nn.Module):
        def forward(self, z, t):
            return getattr(F, loss)(z, t)

    for run in (Loss(), graphc.compile(Loss())):
        z = graphc.tensor(logits, requires_grad=True)
        got = run(z, graphc.tensor(target))
        got.backward()
        np.testing.assert_allclose(got.item(), expected.item(), rtol=1e-6)
        np.testing.assert_allclose(z.grad.numpy(), t_logits.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_the_interpreter_raises_bce_range_errors_too():
    program = graphc.trace(nn.BCELoss(), graphc.rand(2, 3), graphc.rand(2, 3))
    arrays = program.input_arrays(graphc.tensor(np.full((2, 3), 1.5, np.float32)), graphc.rand(2, 3))
    with pytest.raises(RuntimeError, match=r"in module '<root>' \(BCELoss\).*all elements of input should be between"):
        interpret(program.graph, arrays)
    ok = program.input_arrays(graphc.rand(2, 3), graphc.rand(2, 3))
    assert np.isfinite(interpret(program.graph, ok)[0]).all()
