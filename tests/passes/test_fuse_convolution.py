"""fuse_convolution: an im2col convolution (gather, matmul and its epilogue, permute) and the
elementwise op after it become one `convolution` node; results unchanged (reference interpreter),
and what it must leave alone."""
import itertools

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.ir import verify
from graphc.ops.window import adaptive_table, window_table
from graphc.passes import KERNEL_PIPELINE, PIPELINE, fuse_convolution, optimize
from graphc.partition import joint_graph
from graphc.passes.fuse_convolution import table_geometry
from graphc.trace import trace
from pass_graphs import assert_same_results, random_inputs, rng

BEFORE_CONVOLUTION = KERNEL_PIPELINE[:KERNEL_PIPELINE.index(fuse_convolution)]


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", [
    (s, k, st, p, d) for s, k, st, p, d in itertools.product((1, 5, 12), (1, 2, 3), (1, 2, 3), ((0, 0), (1, 1), (2, 1)), (1, 2))
    if s + p[0] + p[1] >= d * (k - 1) + 1])
def test_table_geometry_recovers_every_zero_padded_window(size, kernel, stride, padding, dilation):
    table = window_table(size, kernel, stride, padding, dilation)
    found = table_geometry(table, size)
    if (table < 0).all():  # windows of padding only: nothing to read, left to im2col
        assert found is None
        return
    assert found is not None
    s, d, p = found
    np.testing.assert_array_equal(window_table(size, kernel, s, p, d), table)  # the same windows


@pytest.mark.parametrize("table, size", [
    (window_table(6, 3, 1, (2, 2), 1, "reflect"), 6), (window_table(6, 3, 1, (1, 1), 1, "circular"), 6),
    (window_table(6, 3, 1, (1, 1), 1, "replicate"), 6), (adaptive_table(7, 4), 7)], ids=range(4))
def test_table_geometry_rejects_other_windows(table, size):
    assert table_geometry(table, size) is None


def kernels(model, *shape):
    """The eval graph before and after KERNEL_PIPELINE (fuse_convolution last), and sample inputs."""
    model.eval()
    with graphc.no_grad():
        program = trace(model, graphc.tensor(rng.standard_normal(shape).astype(np.float32)))
    graph = optimize(program.graph, PIPELINE)
    return graph, optimize(graph, KERNEL_PIPELINE), random_inputs(graph)


def test_conv_batchnorm_relu_is_one_node_with_its_body():
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.Tanh())
    before, after, arrays = kernels(model, 2, 3, 9, 10)
    convs = [n for n in after.nodes if n.op == "convolution"]
    assert [repr(n.attr("body")) for n in convs] == ["relu(add(in0, in1))", "tanh(add(in0, in1))"]
    assert convs[0].module_path == "0+1+2" and convs[0].module_type == "Conv2d+BatchNorm2d+ReLU"
    assert not any(n.op in ("window_gather", "permute", "matmul_epilogue") for n in after.nodes)
    assert_same_results(before, after, arrays, exact=False)


@pytest.mark.parametrize("layer", [
    nn.Conv1d(3, 5, 3, padding=2, dilation=2), nn.Conv2d(3, 5, (3, 1), stride=(2, 1), bias=False),
    nn.Conv2d(3, 5, 2, padding=(0, 3))], ids=str)
def test_results_unchanged_with_and_without_a_user(layer):
    graphc.manual_seed(1)
    # output rows of 16 pixels: whole vectors on AVX2 and AVX-512 hosts, so the direct kernel takes them
    shape = (1, 3, 16) if isinstance(layer, nn.Conv1d) else (1, 3, 7, 16 if layer.padding == (0, 0) else 11)
    for model in (layer, nn.Sequential(layer, nn.ReLU())):
        before, after, arrays = kernels(model, *shape)
        assert sum(n.op == "convolution" for n in after.nodes) == 1
        assert_same_results(before, after, arrays, exact=False)


@pytest.mark.parametrize("layer, why", [
    (nn.Conv2d(4, 6, 3, stride=2), "strided along the width: im2col"),
    (nn.Conv2d(4, 6, (3, 6)), "rows of 3 output pixels fill too few vector lanes"),
    (nn.Conv2d(4, 6, 3, groups=2), "groups: a batched matmul"),
    (nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"), "reflect padding reads mirrored windows"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_leaves_what_the_direct_kernel_does_not_compute(layer, why):
    before, after, arrays = kernels(layer, 2, 4, 8, 8)
    assert not any(n.op == "convolution" for n in after.nodes), why
    assert after == optimize(before, BEFORE_CONVOLUTION), why


def test_a_train_step_keeps_the_gather_for_the_weight_gradient():
    graphc.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU())
    x = graphc.tensor(rng.standard_normal((2, 2, 6, 16)).astype(np.float32), requires_grad=True)
    program = trace(model, x)
    wrt = [n.id for n in program.graph.inputs if n.role.kind == "param"]
    joint = optimize(joint_graph(program.graph, wrt).graph, PIPELINE)
    fused = verify(fuse_convolution(optimize(joint, BEFORE_CONVOLUTION)))
    assert sum(n.op == "convolution" for n in fused.nodes) == 1
    assert sum(n.op == "window_gather" for n in fused.nodes) == 1  # read by the weight gradient
    assert_same_results(joint, fused, random_inputs(joint), exact=False)
