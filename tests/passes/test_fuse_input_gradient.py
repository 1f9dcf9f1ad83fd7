"""fuse_input_gradient: a stride-1 convolution's input gradient (dy @ w, then col2im) becomes a
direct convolution of dy with the flipped, channel-swapped kernel; results unchanged (reference
interpreter), and strided convolutions keep col2im."""
import numpy as np
import pytest

import graphc.nn as nn
from graphc.ir import verify
from graphc.passes.fuse_input_gradient import fuse_input_gradient
from pass_graphs import assert_same_results, joint_kernels, random_inputs


def joint(model, *shape):
    return joint_kernels(model, shape, "user")


@pytest.mark.parametrize("layer, shape, padding", [
    (nn.Conv2d(6, 16, 5), (2, 6, 14, 14), ((4, 4), (4, 4))),  # LeNet's conv2
    (nn.Conv2d(3, 4, 3, padding=1), (1, 3, 6, 16), ((1, 1), (1, 1))),
    (nn.Conv2d(3, 5, (3, 2), dilation=(2, 1), padding="same"), (2, 3, 7, 16), ((2, 2), (1, 0))),
    (nn.Conv1d(3, 5, 3, padding=2, dilation=2), (2, 3, 16), ((2, 2),)),
], ids=str)
def test_the_input_gradient_is_a_direct_convolution_of_dy(layer, shape, padding):
    before, after = joint(nn.Sequential(layer, nn.Tanh()), *shape)
    ops = [n.op for n in after.nodes]
    assert "window_scatter" not in ops and "matmul" not in ops
    (grad,) = [n for n in after.nodes if n.op == "convolution" and n.shape == shape]
    assert grad.attr("padding") == padding and grad.attr("body") is None
    weight = after.nodes[grad.inputs[1]]
    assert weight.shape == (shape[1], layer.out_channels * int(np.prod(layer.kernel_size)))
    assert_same_results(before, verify(after), random_inputs(before), exact=False)


def test_strided_convolutions_keep_col2im():
    before, after = joint(nn.Sequential(nn.Conv2d(2, 4, 3, stride=(2, 1)), nn.Tanh()), 2, 2, 9, 16)
    assert "window_scatter" in [n.op for n in after.nodes]
    assert fuse_input_gradient(after) is after
