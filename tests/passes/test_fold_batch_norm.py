"""fold_batch_norm: golden text on a Linear + eval BatchNorm graph, results kept on traced models
(Linear and BatchNorm1d, channels-last matmuls moved to [N, C, H, W] before BatchNorm2d), what
the folded weights read, and the graphs it must leave alone."""
import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.ir import GraphBuilder, verify
from graphc.passes import PIPELINE, dead_code, fold_batch_norm, optimize
from graphc.passes.fold_batch_norm import parameter_only
from pass_graphs import assert_same_results, lines, random_inputs, rng

LINEAR = dict(module_path="fc", module_type="Linear", source="model.py:3")
BN = dict(module_path="bn", module_type="BatchNorm1d", source="model.py:4")


def linear_then_scale_and_shift(b):
    x, w = b.input("x", "user", (2, 3), "float32"), b.input("fc.weight", "param", (4, 3), "float32", key="fc.weight")
    bias = b.input("fc.bias", "param", (4,), "float32", key="fc.bias")
    scale = b.input("bn.scale", "buffer", (4,), "float32", key="bn.scale")
    shift = b.input("bn.shift", "buffer", (4,), "float32", key="bn.shift")
    y = b.add("matmul", [x, w], {"transpose_a": False, "transpose_b": True}, (2, 4), "float32", **LINEAR)
    y = b.add("add", [y, bias], {}, (2, 4), "float32", **LINEAR)
    y = b.add("mul", [y, scale], {}, (2, 4), "float32", **BN)
    return b.add("add", [y, shift], {}, (2, 4), "float32", **BN)


BEFORE = """
    graph (5 inputs, 9 nodes):
      %0 : f32[2,3] = input x  (user 0)
      %1 : f32[4,3] = input fc.weight  (param)
      %2 : f32[4] = input fc.bias  (param)
      %3 : f32[4] = input bn.scale  (buffer)
      %4 : f32[4] = input bn.shift  (buffer)
      %5 : f32[2,4] = matmul %0, %1  {transpose_a=False, transpose_b=True}  # fc (Linear)  model.py:3
      %6 : f32[2,4] = add %5, %2                                    # fc (Linear)  model.py:3
      %7 : f32[2,4] = mul %6, %3                                    # bn (BatchNorm1d)  model.py:4
      %8 : f32[2,4] = add %7, %4                                    # bn (BatchNorm1d)  model.py:4
      return %8 out0
    """
AFTER = """
    graph (5 inputs, 11 nodes):
      %0 : f32[2,3] = input x  (user 0)
      %1 : f32[4,3] = input fc.weight  (param)
      %2 : f32[4] = input fc.bias  (param)
      %3 : f32[4] = input bn.scale  (buffer)
      %4 : f32[4] = input bn.shift  (buffer)
      %5 : f32[4,1] = reshape %3  {shape=(4, 1)}                    # bn (BatchNorm1d)  model.py:4
      %6 : f32[4,3] = mul %1, %5                                    # bn (BatchNorm1d)  model.py:4
      %7 : f32[2,4] = matmul %0, %6  {transpose_a=False, transpose_b=True}  # fc (Linear)  model.py:3
      %8 : f32[4] = mul %2, %3                                      # bn (BatchNorm1d)  model.py:4
      %9 : f32[4] = add %8, %4                                      # bn (BatchNorm1d)  model.py:4
      %10 : f32[2,4] = add %7, %9                                   # bn (BatchNorm1d)  model.py:4
      return %10 out0
    """


def test_golden_text():
    b = GraphBuilder()
    graph = b.finish([linear_then_scale_and_shift(b)])
    assert str(graph).splitlines() == lines(BEFORE)
    folded = verify(dead_code(fold_batch_norm(graph)))
    assert str(folded).splitlines() == lines(AFTER)
    assert_same_results(graph, folded, random_inputs(graph), exact=False)


def randomised(model):
    """`model` in eval mode with random parameters and running statistics (not the identity init)."""
    with graphc.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.dtype.is_floating_point:
                values = rng.uniform(0.5, 2.0, t.shape) if name.endswith("running_var") else rng.standard_normal(t.shape)
                t.copy_(values.astype(np.float32))
    return model.eval()


class ChannelsLast(nn.Module):
    """[N, H, W, C_in] -> Linear -> [N, C, H, W] -> BatchNorm2d: the layout a convolution lowered to
    a matmul produces (with `flat`, the matmul is over [N*H*W, C_in] rows, then reshaped)."""

    def __init__(self, flat=False, affine=True, late_bias=False):
        super().__init__()
        self.fc, self.bn, self.flat = nn.Linear(3, 5, bias=not late_bias), nn.BatchNorm2d(5, affine=affine), flat
        self.late_bias = nn.Parameter(graphc.zeros(5, 1, 1)) if late_bias else None

    def forward(self, x):
        n, h, w, c = x.shape
        y = self.fc(x.reshape(n * h * w, c)).reshape(n, h, w, 5) if self.flat else self.fc(x)
        y = y.permute(0, 3, 1, 2)
        return self.bn(y if self.late_bias is None else y + self.late_bias).relu()  # a convolution's bias


FOLDED = [
    (lambda: nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU()), (3, 6)),
    (lambda: nn.Sequential(nn.Linear(6, 4, bias=False), nn.BatchNorm1d(4, affine=False)), (3, 6)),
    (lambda: nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4, bias=False)), (3, 6)),
    (lambda: ChannelsLast(), (2, 3, 2, 3)),
    (lambda: ChannelsLast(flat=True, affine=False), (2, 3, 2, 3)),
    (lambda: ChannelsLast(flat=True, late_bias=True), (2, 3, 2, 3)),
]


@pytest.mark.parametrize("build, shape", FOLDED, ids=["linear-bn1d", "no-bias-no-affine", "bn-without-bias",
                                                       "channels-last-bn2d", "flat-matmul-reshape-bn2d",
                                                       "bias-after-the-moves"])
def test_folds_and_keeps_results_on_traced_models(build, shape):
    model = randomised(build())
    x = graphc.tensor(rng.standard_normal(shape).astype(np.float32))
    graph = graphc.trace(model, x).graph
    before = optimize(graph, tuple(p for p in PIPELINE if p is not fold_batch_norm))
    after = optimize(graph)
    arrays = [x.numpy() if t is None else t.numpy() for t in _inputs(model, graph)]
    assert_same_results(graph, after, arrays, exact=False)
    (matmul,) = [n for n in after.nodes if n.op == "matmul"]
    fixed = parameter_only(after)
    assert matmul.inputs[1] in fixed and matmul.inputs[1] not in [n.id for n in after.inputs]  # scaled weights
    activations = [n for n in after.nodes if n.id not in fixed and n.op == "mul"]
    assert not activations  # the per-call BatchNorm multiply is gone
    per_call = [n for n in after.nodes if n.id not in fixed]
    assert len(per_call) < len([n for n in before.nodes if n.id not in parameter_only(before)])
    with graphc.no_grad():
        np.testing.assert_allclose(graphc.compile(model)(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def _inputs(model, graph):
    """The tensors behind the graph's inputs, by role."""
    state = dict(model.named_parameters()) | dict(model.named_buffers())
    return [None if n.role.kind == "user" else state[n.role.key] for n in graph.inputs]


def test_train_mode_batch_statistics_are_not_folded():
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4))
    graph = graphc.trace(model, graphc.randn(3, 6)).graph
    assert str(fold_batch_norm(graph)) == str(graph)  # the scale depends on the batch


def test_a_matmul_used_elsewhere_is_left_alone():
    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.bn = nn.Linear(6, 4), nn.BatchNorm1d(4)

        def forward(self, x):
            y = self.fc(x)
            return self.bn(y) + y

    graph = optimize(graphc.trace(randomised(Both()), graphc.randn(3, 6)).graph)
    assert [n.op for n in graph.nodes].count("matmul") == 1
    assert any(n.op == "mul" and n.shape == (3, 4) for n in graph.nodes)  # the batch norm is still applied


def test_channels_along_another_axis_than_the_columns_are_left_alone():
    class Rows(nn.Module):  # BatchNorm1d over dim 1 of [N, C, L], the Linear over L
        def __init__(self):
            super().__init__()
            self.fc, self.bn = nn.Linear(5, 5), nn.BatchNorm1d(3)

        def forward(self, x):
            return self.bn(self.fc(x))

    model, x = randomised(Rows()), graphc.randn(2, 3, 5)
    graph = graphc.trace(model, x).graph
    assert str(fold_batch_norm(graph)) == str(graph)
    with graphc.no_grad():
        np.testing.assert_allclose(graphc.compile(model)(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
