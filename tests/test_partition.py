"""graphc.partition: the min-cut split of a joint graph gives build_backward's gradients (and
eager autograd's) while the forward saves no more bytes, and fewer where recomputing is cheap."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.autodiff import build_backward, with_saved_outputs
from graphc.compiled import backward_feeds
from graphc.ir import interpret, verify
from graphc.ops import functions as O
from graphc.partition import joint_graph, partition, saved_bytes
from graphc.passes import optimize
from test_differential import build, programs

rng = np.random.default_rng(0)


def array(*shape, dtype="float32"):
    return rng.standard_normal(shape).astype(dtype)


def run_backward(forward_train, backward, arrays, seeds):
    """Gradients by wrt id: forward_train interpreted, the backward fed by role."""
    outs = interpret(forward_train, arrays)
    feed = [arrays[j] if kind == "input" else outs[j] if kind == "output" else seeds[j]
            for kind, j in backward_feeds(forward_train, backward).sources]
    return dict(zip(backward.wrt, interpret(backward.graph, feed)))


def both_ways(forward, wrt):
    """(forward_train, backward) from build_backward and from partition, every graph verified."""
    backward = build_backward(forward, wrt)
    joint = joint_graph(forward, wrt)
    forward_train, partitioned = partition(joint)
    for graph in (backward.graph, joint.graph, forward_train, partitioned.graph):
        verify(graph)
    assert [n.role for n in forward_train.inputs] == [n.role for n in forward.inputs]
    assert forward_train.nodes == forward.nodes
    assert forward_train.outputs[:len(forward.outputs)] == forward.outputs
    assert partitioned.wrt == backward.wrt
    return (with_saved_outputs(forward, backward.saved), backward), (forward_train, partitioned)


def check_gradients(forward, arrays, seeds, wrt=None, eager=None, tol=1e-5):
    """Partitioned gradients equal build_backward's, and eager autograd's when given (by wrt id)."""
    wrt = [n.id for n in forward.inputs if n.dtype.startswith("float")] if wrt is None else wrt
    (fwd, backward), (fwd_min, partitioned) = both_ways(forward, wrt)
    expected = run_backward(fwd, backward, arrays, seeds)
    got = run_backward(fwd_min, partitioned, arrays, seeds)
    assert got.keys() == expected.keys()
    for w in expected:
        np.testing.assert_allclose(got[w], expected[w], rtol=tol, atol=tol, err_msg=forward.nodes[w].attr("name"))
        if eager is not None:
            np.testing.assert_allclose(got[w], eager[w], rtol=tol, atol=tol, err_msg=forward.nodes[w].attr("name"))
    return saved_bytes(fwd, backward), saved_bytes(fwd_min, partitioned)


def mlp(sizes, act):
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers[:-1])


def loss_graph(model, x, t):
    """The optimized forward of cross_entropy(model(x), t), its input arrays (bound by role) and
    eager autograd's gradients by wrt id."""
    program = graphc.trace(lambda x, t: F.cross_entropy(model(x), t), x, t, root=model)
    forward = optimize(program.graph)
    arrays = [program.tensor_for(n.role, [x, t]).numpy() for n in forward.inputs]
    for p in model.parameters():
        p.grad = None
    F.cross_entropy(model(x), t).backward()
    eager = {n.id: program.params[n.role.key].grad.numpy() for n in forward.inputs if n.role.kind == "param"}
    return forward, arrays, eager


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, nn.Sigmoid])
def test_mlp_loss_gradients_are_kept(act):
    model = mlp((12, 16, 16, 5), act)
    forward, arrays, eager = loss_graph(model, graphc.tensor(array(7, 12)), graphc.tensor(rng.integers(0, 5, 7)))
    before, after = check_gradients(forward, arrays, {0: np.ones((), "float32")}, list(eager), eager)
    assert after <= before


def eager_gradients(fn, arrays, seeds):
    """Gradients of sum_k <fn(*arrays)[k], seeds[k]> by eager autograd, by input position."""
    tensors = [graphc.tensor(a, requires_grad=True) for a in arrays]
    outs = fn(*tensors)
    outs = outs if isinstance(outs, tuple) else (outs,)
    total = None
    for k, out in enumerate(outs):
        term = O.sum(O.mul(out, graphc.tensor(seeds[k])))
        total = term if total is None else O.add(total, term)
    total.backward()
    return [np.zeros(a.shape, a.dtype) if t.grad is None else t.grad.numpy() for t, a in zip(tensors, arrays)]


def check_function(fn, arrays, tol):
    """fn traced on `arrays`, differentiated w.r.t. all of them, both ways and eagerly."""
    forward = optimize(graphc.trace(fn, *[graphc.tensor(a) for a in arrays]).graph)
    seeds = {k: array(*forward.nodes[i].shape, dtype=forward.nodes[i].dtype) for k, i in enumerate(forward.outputs)}
    grads = eager_gradients(fn, arrays, seeds)
    eager = {n.id: grads[n.role.key] for n in forward.inputs}
    return check_gradients(forward, arrays, seeds, eager=eager, tol=tol)


def broadcasting_chain(a, b, c):
    mixed = O.mul(O.sigmoid(O.add(O.mul(a, b), c)), O.tanh(b))
    scaled = O.div(O.sub(mixed, O.exp(c)), O.add(O.mul(a, a), 1.0))
    return O.relu(scaled), O.sum(O.maximum(scaled, O.neg(a)), (1,), True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_broadcasting_elementwise_chain_gradients_are_kept(dtype):
    arrays = [array(3, 4, dtype=dtype), array(4, dtype=dtype), array(3, 1, dtype=dtype)]
    before, after = check_function(broadcasting_chain, arrays, 1e-5 if dtype == "float32" else 1e-12)
    assert after < before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_programs_gradients_are_kept(program):
    shape, steps, dtype = program
    arrays = [array(*shape, dtype=dtype), array(*shape[-1:], dtype=dtype)]
    before, after = check_function(build(steps), arrays, 1e-4 if dtype == "float32" else 1e-9)
    assert after <= before


def test_w1_saves_no_more_than_build_backward():
    model = mlp((784, 512, 512, 10), nn.ReLU)
    x, t = graphc.tensor(array(128, 784)), graphc.tensor(rng.integers(0, 10, 128))
    forward, arrays, eager = loss_graph(model, x, t)
    before, after = check_gradients(forward, arrays, {0: np.ones((), "float32")}, list(eager), eager, tol=1e-4)
    print(f"W1 saved bytes: build_backward {before}, partition {after}")
    assert after <= before
    _, backward = partition(joint_graph(forward, list(eager)))
    # of the cheapest cuts, the one nearest the backward: ReLU outputs are saved, not recomputed
    assert not any(n.op == "relu" for n in backward.graph.nodes)


@pytest.mark.parametrize("through_matmul", [True, False])
def test_recomputing_an_elementwise_chain_saves_one_tensor_or_none(through_matmul):
    x, w = array(64, 32), array(32, 32)
    first = (lambda x, w: O.matmul(x, w)) if through_matmul else (lambda x, w: x)
    fn = lambda x, w: O.sum(O.exp(O.sigmoid(O.tanh(first(x, w)))))  # noqa: E731
    forward = optimize(graphc.trace(fn, graphc.tensor(x), graphc.tensor(w)).graph)
    wrt = [n.id for n in forward.inputs]
    before, after = check_function(fn, [x, w], 1e-5)
    _, backward = partition(joint_graph(forward, wrt))
    print(f"tanh -> sigmoid -> exp {'after a matmul ' if through_matmul else ''}saved bytes: "
          f"build_backward {before}, partition {after}")
    assert len(build_backward(forward, wrt).saved) == 3 and before == 3 * x.nbytes
    # after a matmul the tanh output is saved (recomputing tanh would need the matmul again);
    # from an input nothing is: the backward recomputes the chain from x
    assert [forward.nodes[i].op for i in backward.saved] == (["tanh"] if through_matmul else [])
    assert after == (x.nbytes if through_matmul else 0)


def test_joint_graph_records_forward_backward_and_gradients():
    fn = lambda x, w: O.sum(O.tanh(O.matmul(x, w)))  # noqa: E731
    forward = graphc.trace(fn, graphc.tensor(array(4, 3)), graphc.tensor(array(3, 2))).graph
    joint = joint_graph(forward, [1, 0])
    assert joint.graph.nodes[:joint.forward_size] == forward.nodes
    assert joint.forward == forward
    assert [n.role.kind for n in joint.graph.inputs] == ["user", "user", "seed"]
    assert joint.wrt == (1, 0)
    assert joint.graph.output_names == ("out", "grad_w", "grad_x")
    assert all(joint.is_forward(i) for i in range(len(forward.nodes))) and not joint.is_forward(len(forward.nodes))
    printed = [line.split("  #")[0].rstrip() for line in str(joint).splitlines()]  # source lines dropped
    assert printed == JOINT_TEXT.splitlines()


JOINT_TEXT = """\
joint graph (3 inputs, 5 forward nodes, 9 backward nodes):
  -- forward
  %0 : f32[4,3] = input x  (user 0)
  %1 : f32[3,2] = input w  (user 1)
  %2 : f32[4,2] = matmul %0, %1  {transpose_a=False, transpose_b=False}
  %3 : f32[4,2] = tanh %2
  %4 : f32[] = sum %3  {dims=(0, 1), keepdim=False}
  -- backward
  %5 : f32[] = input grad_out  (seed 0)
  %6 : f32[1,1] = reshape %5  {shape=(1, 1)}
  %7 : f32[4,2] = expand %6  {shape=(4, 2)}
  %8 : f32[4,2] = mul %3, %3
  %9 : f32[] = constant 1.
  %10 : f32[4,2] = sub %9, %8
  %11 : f32[4,2] = mul %7, %10
  %12 : f32[4,3] = matmul %11, %1  {transpose_a=False, transpose_b=True}
  %13 : f32[3,2] = matmul %0, %11  {transpose_a=True, transpose_b=False}
  return %4 out  | gradients %13 grad_w, %12 grad_x"""


def test_inputs_without_a_gradient_are_left_out():
    fn = lambda x, y: O.sum(O.exp(x))  # noqa: E731
    forward = graphc.trace(fn, graphc.tensor(array(3)), graphc.tensor(array(3))).graph
    joint = joint_graph(forward, [0, 1])
    assert joint.wrt == (0,)
    _, backward = partition(joint)
    assert backward.wrt == (0,) and len(backward.graph.outputs) == 1
