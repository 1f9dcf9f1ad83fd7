"""Graph inputs are bound by role and position, never by their printed names (issue 5, item 1)."""
import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.ir import GraphBuilder, Role, VerifyError, verify


class ArgNamedLikeASeed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, grad_out):
        return self.fc(grad_out).tanh()


class ArgNamedLikeAParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(graphc.randn(4))

    def forward(self, weight, out):
        return (weight * self.weight + out).sum()


def _eager_and_compiled_grads(model, *arrays):
    results = []
    for run in (model, graphc.compile(model)):
        model.zero_grad()
        xs = [graphc.tensor(a, requires_grad=True) for a in arrays]
        loss = run(*xs).sum()
        loss.backward()
        results.append((loss.item(), [x.grad.numpy() for x in xs], [p.grad.numpy() for p in model.parameters()]))
    return results


@pytest.mark.parametrize("model, shapes", [(ArgNamedLikeASeed, [(2, 4)]), (ArgNamedLikeAParameter, [(4,), (4,)])])
def test_argument_names_that_collide_with_internal_names_get_the_right_gradients(model, shapes):
    graphc.manual_seed(0)
    arrays = [np.random.default_rng(1).standard_normal(s).astype(np.float32) for s in shapes]
    (eager_loss, eager_x, eager_p), (loss, got_x, got_p) = _eager_and_compiled_grads(model(), *arrays)
    np.testing.assert_allclose(loss, eager_loss, rtol=1e-5)
    for got, expected in zip(got_x + got_p, eager_x + eager_p):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_train_step_binds_parameters_by_role_when_an_argument_shares_their_name():
    graphc.manual_seed(0)
    model = ArgNamedLikeAParameter()
    twin = ArgNamedLikeAParameter()
    twin.load_state_dict(model.state_dict())
    w, o = graphc.randn(4), graphc.randn(4)
    step = graphc.compile_train_step(model, lambda y, t: (y - t) * (y - t), graphc.optim.SGD(model.parameters(), lr=0.1))
    loss = step(w, o, graphc.tensor(1.0))
    opt = graphc.optim.SGD(twin.parameters(), lr=0.1)
    expected = (twin(w, o) - 1.0) * (twin(w, o) - 1.0)
    expected.backward()
    opt.step()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-5)
    np.testing.assert_allclose(model.weight.detach().numpy(), twin.weight.detach().numpy(), rtol=1e-5)


def test_traced_labels_are_unique_and_roles_say_what_each_input_is():
    program = graphc.trace(ArgNamedLikeAParameter(), graphc.randn(4), graphc.randn(4))
    inputs = program.graph.inputs
    assert [n.role for n in inputs] == [Role("user", 0), Role("user", 1), Role("param", "weight")]
    labels = [n.attr("name") for n in inputs]
    assert len(set(labels)) == len(labels) and labels[2] == "weight#1"


def test_verify_rejects_two_inputs_of_one_name_or_one_role():
    def graph_with(first, second):
        b = GraphBuilder()
        b.input("x", "user", (2,), "float32", key=0)
        b.input("y", "user", (2,), "float32", key=1)
        nodes = list(b.nodes)
        nodes[1] = nodes[1].__class__(1, "input", (), tuple(sorted({"name": second[0], "role": second[1]}.items())),
                                      (2,), "float32")
        nodes[0] = nodes[0].__class__(0, "input", (), tuple(sorted({"name": first[0], "role": first[1]}.items())),
                                      (2,), "float32")
        from graphc.ir import Graph
        return Graph(tuple(nodes), (0,), ("out",))

    verify(graph_with(("x", Role("user", 0)), ("y", Role("user", 1))))
    with pytest.raises(VerifyError, match="two inputs are named 'x'"):
        verify(graph_with(("x", Role("user", 0)), ("x", Role("user", 1))))
    with pytest.raises(VerifyError, match="two inputs have the role user 0"):
        verify(graph_with(("x", Role("user", 0)), ("y", Role("user", 0))))


def test_a_repeated_output_backpropagates_through_each_position():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            y = self.fc(x)
            return y, y

    model = Twice()
    x = graphc.randn(2, 3)
    model(x)[1].sum().backward()
    expected = model.fc.weight.grad.numpy().copy()
    model.zero_grad()
    graphc.compile(model)(x)[1].sum().backward()
    np.testing.assert_allclose(model.fc.weight.grad.numpy(), expected, rtol=1e-5)
