"""fuse_weight_gradient: a train step's convolution weight gradient (dyᵀ @ gathered windows) becomes
one convolution_weight_grad node reading x in place, the gather and dy's permute go, the bias
gradient sums dy unpermuted; results unchanged (reference interpreter), and what it leaves alone."""
import numpy as np
import pytest

import graphc.nn as nn
from graphc.ir import verify
from graphc.passes.fuse_weight_gradient import fuse_weight_gradient
from pass_graphs import assert_same_results, joint_kernels, random_inputs


def joint(model, *shape):
    return joint_kernels(model, shape, "param")


@pytest.mark.parametrize("layer, shape", [
    (nn.Conv2d(2, 4, 3, padding=1), (2, 2, 6, 16)),
    (nn.Conv2d(3, 9, (3, 2), stride=(2, 1), dilation=(1, 2), padding=(1, 0)), (1, 3, 7, 18)),
    (nn.Conv1d(3, 5, 3, padding=2, dilation=2), (2, 3, 16)),
], ids=str)
def test_the_weight_gradient_reads_x_in_place(layer, shape):
    before, after = joint(nn.Sequential(layer, nn.ReLU()), *shape)
    ops = [n.op for n in after.nodes]
    assert ops.count("convolution_weight_grad") == 1 and ops.count("convolution") == 1
    assert "window_gather" not in ops and "permute" not in ops
    (grad,) = [n for n in after.nodes if n.op == "convolution_weight_grad"]
    assert grad.shape == (layer.out_channels, layer.weight.numel() // layer.out_channels)
    assert grad.module_path == "0" and grad.attr("kernel") == tuple(layer.kernel_size)
    bias = [n for n in after.nodes if n.op == "sum" and after.nodes[n.inputs[0]].op != "permute"
            and n.shape[-1:] in ((1,), (layer.out_channels,))]
    assert bias, "the bias gradient sums dy without its permute"
    assert_same_results(before, verify(after), random_inputs(before), exact=False)


def test_leaves_what_the_direct_kernel_does_not_compute():
    """Strided along the width: the im2col gather and matmul stay."""
    before, after = joint(nn.Sequential(nn.Conv2d(2, 4, 3, stride=2), nn.ReLU()), 2, 2, 9, 16)
    assert "convolution_weight_grad" not in [n.op for n in after.nodes]
    assert "window_gather" in [n.op for n in after.nodes]
    assert fuse_weight_gradient(after) is after
