"""convolution_weight_grad: the native kernel against the numpy reference and the reference against
PyTorch's weight gradient, over padding, row stride, dilation, channel counts that leave a partial
tile, rows of several and partial vectors, batch 1 and 1-d; and the rule choosing it."""
import llvmlite.ir as ir
import numpy as np
import pytest

from graphc.lower.kernel import vector_unit
from graphc.lower.weight_gradient import direct_pays
from graphc.ops import OPS, TensorType
from harness import run_op, tolerance

rng = np.random.default_rng(7)

# (x shape, out channels, kernel, stride, dilation, padding)
GEOMETRIES = [
    ((4, 1, 28, 28), 6, (5, 5), (1, 1), (1, 1), ((2, 2), (2, 2))),  # LeNet's conv1
    ((3, 6, 14, 14), 16, (5, 5), (1, 1), (1, 1), ((0, 0), (0, 0))),  # LeNet's conv2
    ((1, 3, 9, 20), 7, (3, 3), (2, 1), (1, 1), ((1, 1), (1, 1))),  # batch 1, strided rows, 7 channels
    ((2, 2, 8, 35), 5, (3, 2), (1, 1), (2, 3), ((2, 1), (0, 3))),  # dilated, uneven padding, 3 vectors a row
    ((2, 4, 40), 3, (4,), (1,), (1,), ((3, 0),)),  # 1-d
]


def attrs_of(kernel, stride, dilation, padding):
    return dict(kernel=kernel, stride=stride, dilation=dilation, padding=padding)


def dy_for(x_shape, channels, kernel, stride, dilation, padding, dtype):
    """A random dy of the convolution's output shape (checked by the op's own infer rule)."""
    outs = tuple((n + p[0] + p[1] - d * (k - 1) - 1) // s + 1
                 for n, k, s, d, p in zip(x_shape[2:], kernel, stride, dilation, padding))
    dy = rng.standard_normal((x_shape[0], channels) + outs).astype(dtype)
    grad = OPS["convolution_weight_grad"].infer(TensorType(x_shape, dtype), TensorType(dy.shape, dtype),
                                                **attrs_of(kernel, stride, dilation, padding))
    assert grad.shape == (channels, x_shape[1] * int(np.prod(kernel)))
    return dy


@pytest.mark.parametrize("case", GEOMETRIES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernel_matches_the_reference(case, dtype):
    x_shape, channels, *geometry = case
    x = rng.standard_normal(x_shape).astype(dtype)
    dy = dy_for(x_shape, channels, *geometry, dtype)
    native, expected = run_op("convolution_weight_grad", [x, dy], **attrs_of(*geometry))
    scale = np.abs(expected).max()
    np.testing.assert_allclose(native / scale, expected / scale, **tolerance(dtype))


@pytest.mark.parametrize("case", GEOMETRIES, ids=str)
def test_reference_matches_pytorch(torch, case):
    x_shape, channels, kernel, stride, dilation, padding = case
    x = rng.standard_normal(x_shape)
    dy = dy_for(x_shape, channels, kernel, stride, dilation, padding, "float64")
    expected = torch.nn.grad.conv2d_weight if len(kernel) == 2 else torch.nn.grad.conv1d_weight
    pads = tuple(p[0] for p in padding)
    t_x = torch.tensor(x)
    if any(p[0] != p[1] for p in padding):  # uneven padding: pad x by hand, then no padding
        t_x = torch.nn.functional.pad(t_x, [v for p in reversed(padding) for v in p])
        pads = (0,) * len(kernel)
    want = expected(t_x, (channels, x_shape[1]) + kernel, torch.tensor(dy), stride, pads, dilation).numpy()
    got = OPS["convolution_weight_grad"].reference(x, dy, **attrs_of(kernel, stride, dilation, padding))
    np.testing.assert_allclose(got, want.reshape(channels, -1), rtol=1e-10, atol=1e-10)


def test_direct_pays_by_the_share_of_vector_lanes_a_row_fills():
    lanes = vector_unit().lanes(ir.FloatType())
    plain = ((3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    assert direct_pays((2, 3, 8, lanes), (2, 4, 8, lanes), plain, "float32")
    assert not direct_pays((2, 3, 8, lanes // 4), (2, 4, 8, lanes // 4), plain, "float32")  # a quarter of the lanes
    assert not direct_pays((2, 3, 8, 16), (2, 4, 8, 8), ((3, 3), (1, 2), (1, 1), ((1, 1), (1, 1))), "float32")
    assert not direct_pays((2, 3, 8, 16), (2, 4, 8, 16), plain, "int64")
