"""pool and pool_backward: native kernels against the numpy references, and the references against
PyTorch's max/avg pools, over kernel, stride, padding, dilation, ceil-mode overhang, odd and wide
rows (vectors looped in the interior), batch 1 and 1-d; ties, -inf windows and NaN as the
reference rules them."""
import math

import numpy as np
import pytest

from graphc.lower.pool import _Geometry
from graphc.nn.functional_conv import pool_output_size
from graphc.ops import OPS, TensorType
from harness import run_op, tolerance

rng = np.random.default_rng(5)

# (x shape, kernel, stride, padding, dilation, ceil_mode)
GEOMETRIES = [
    ((2, 3, 8, 9), (2, 2), (2, 2), (0, 0), (1, 1), False),  # LeNet's, odd width: the tail is dropped
    ((1, 6, 28, 28), (2, 2), (2, 2), (0, 0), (1, 1), False),  # batch 1; windows tile the input exactly
    ((2, 2, 9, 12), (3, 3), (3, 3), (0, 0), (1, 1), False),  # tiling, stride 3
    ((2, 3, 16), (2,), (2,), (0,), (1,), False),  # tiling, 1-d
    ((2, 2, 9, 11), (3, 3), (2, 2), (1, 1), (1, 1), False),  # padded, overlapping
    ((2, 2, 9, 11), (3, 3), (2, 2), (1, 1), (1, 1), True),  # ceil mode: the last window hangs over
    ((1, 3, 7, 8), (3, 2), (1, 2), (1, 1), (1, 1), True),
    ((2, 2, 10, 10), (3, 3), (1, 1), (1, 1), (2, 2), False),  # dilated, stride 1
    ((1, 2, 8, 9), (2, 4), (1, 1), (0, 0), (2, 1), False),
    ((1, 2, 7, 7), (2, 2), (3, 3), (1, 1), (1, 1), True),  # stride beyond the kernel
    ((1, 2, 5, 70), (3, 3), (1, 1), (1, 1), (1, 1), False),  # wide rows: interior vectors in a loop
    ((1, 2, 6, 75), (2, 3), (2, 3), (0, 1), (1, 1), True),  # stride 3 along the width
    ((2, 4, 17), (3,), (2,), (1,), (1,), True),  # 1-d
    ((3, 40), (4,), (1,), (2,), (1,), False),  # 1-d, unbatched
]


def geometry_attrs(shape, kernel, stride, padding, dilation, ceil_mode):
    """The attrs F.max_pool gives its pool op (ceil mode as extra high padding)."""
    dims = len(kernel)
    pads = []
    for n, k, s, p, d in zip(shape[len(shape) - dims:], kernel, stride, padding, dilation):
        o = pool_output_size(n, k, s, p, d, ceil_mode)
        pads.append((p, max(0, (o - 1) * s + d * (k - 1) + 1 - n - p)))
    return dict(kernel=kernel, stride=stride, dilation=dilation, padding=tuple(pads))


def distinct(shape, dtype):
    return (rng.permutation(math.prod(shape)).reshape(shape) / 5.0 - 3.0).astype(dtype)


def torch_pool(torch, reduce, x, kernel, stride, padding, dilation, ceil_mode, grad):
    """PyTorch's value and input gradient; sums as avg_pool2d with divisor_override=1 (a 1-d one
    as rows of one)."""
    t = torch.tensor(x, requires_grad=True)
    if reduce == "max":
        y = getattr(torch.nn.functional, f"max_pool{len(kernel)}d")(t, kernel, stride, padding, dilation, ceil_mode)
    else:
        two = (lambda v: v) if len(kernel) == 2 else (lambda v: (1,) + tuple(v))
        y = torch.nn.functional.avg_pool2d(t if len(kernel) == 2 else t.unsqueeze(-2), two(kernel), two(stride),
                                           two(padding) if len(kernel) == 2 else (0,) + tuple(padding), ceil_mode,
                                           divisor_override=1)
        y = y if len(kernel) == 2 else y.squeeze(-2)
    y.backward(torch.tensor(grad))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("reduce", ["max", "sum"])
@pytest.mark.parametrize("case", GEOMETRIES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pool_kernels_match_the_reference(case, reduce, dtype):
    shape, *geometry = case
    attrs = geometry_attrs(shape, *geometry)
    x = distinct(shape, dtype)
    native, expected = run_op("pool", [x], reduce=reduce, **attrs)
    np.testing.assert_allclose(native, expected, **tolerance(dtype))
    g = rng.standard_normal(expected.shape).astype(dtype)
    saved = [x, expected] if reduce == "max" else []
    native, reference = run_op("pool_backward", [g, *saved], reduce=reduce, size=shape[len(shape) - len(geometry[0]):],
                               **attrs)
    np.testing.assert_allclose(native, reference, **tolerance(dtype))


@pytest.mark.parametrize("reduce,case", [(r, c) for r in ("max", "sum") for c in GEOMETRIES
                                          if len(c[0]) == len(c[1]) + 2 and (r == "max" or set(c[4]) == {1})],
                         ids=str)  # PyTorch's avg pools have no dilation
def test_references_match_pytorch(torch, case, reduce):
    shape, kernel, stride, padding, dilation, ceil_mode = case
    attrs = geometry_attrs(shape, kernel, stride, padding, dilation, ceil_mode)
    x = distinct(shape, "float64")
    value = OPS["pool"].reference(x, reduce=reduce, **attrs)
    g = rng.standard_normal(value.shape)
    expected, expected_grad = torch_pool(torch, reduce, x, kernel, stride, padding, dilation, ceil_mode, g)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    saved = [x, value] if reduce == "max" else []
    grad = OPS["pool_backward"].reference(g, *saved, reduce=reduce, size=shape[2:], **attrs)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel, stride, padding, ceil_mode", [((3, 3), (2, 2), (1, 1), True),
                                                                  ((2, 2), (2, 2), (0, 0), False),
                                                                  ((3, 2), (1, 1), (1, 0), False)])
def test_ties_and_special_values_route_as_pytorch(torch, kernel, stride, padding, ceil_mode):
    """Tied maxima send the gradient to the first of them, a window of NaNs to its last NaN, and
    an all -inf window to its first element: where PyTorch's scan puts it (an element is taken
    when greater than all before it, or NaN), natively, in the reference and in torch."""
    x = rng.integers(-2, 2, (2, 3, 6, 7)).astype(np.float32)
    x[0, 0, :3, :3] = -np.inf
    x[1, 2, 3, 3] = x[1, 2, 2, 4] = x[1, 1, 0, 0] = np.nan
    attrs = geometry_attrs(x.shape, kernel, stride, padding, (1, 1), ceil_mode)
    native, expected = run_op("pool", [x], reduce="max", **attrs)
    np.testing.assert_array_equal(native, expected)
    g = rng.standard_normal(expected.shape).astype(np.float32)
    native, reference = run_op("pool_backward", [g, x, expected], reduce="max", size=(6, 7), **attrs)
    np.testing.assert_allclose(native, reference, **tolerance("float32"))  # overlapping windows add in another order
    value, grad = torch_pool(torch, "max", x, kernel, stride, padding, (1, 1), ceil_mode, g)
    np.testing.assert_array_equal(expected, value)
    np.testing.assert_allclose(reference, grad, rtol=1e-6, atol=1e-6)


def test_interior_vectors_become_a_loop():
    """A wide row's full vectors run as one loop; its borders, with their masks, are unrolled."""
    g = _Geometry(planes=1, H=5, W=70, OH=5, OW=70, KH=3, KW=3, sh=1, sw=1, dh=1, dw=1, ph=1, pw=1, lanes=16)
    assert g.vector_runs() == [(0, 1, False), (1, 3, True), (4, 1, False)]
    assert _Geometry(1, 28, 28, 14, 14, 2, 2, 2, 2, 1, 1, 0, 0, 16).vector_runs() == [(0, 1, False)]


def test_infer_rejects_what_the_kernels_do_not_take():
    from graphc.ops import ShapeError
    attrs = dict(kernel=(2, 2), stride=(2, 2), dilation=(1, 1), padding=((0, 0), (0, 0)))
    with pytest.raises(ShapeError, match="not implemented for int64"):
        OPS["pool"].infer(TensorType((1, 1, 4, 4), "int64"), reduce="max", **attrs)
    with pytest.raises(ShapeError, match="does not fit"):
        OPS["pool"].infer(TensorType((1, 1, 1, 4), "float32"), reduce="max", **attrs)
    with pytest.raises(ShapeError, match="pooled shape"):
        OPS["pool_backward"].infer(TensorType((1, 1, 3, 2), "float32"), reduce="sum", size=(4, 4), **attrs)


def test_windows_that_tile_the_input_are_stored_once():
    """2x2 windows of stride 2 over even sizes cover every element once: the backward stores
    without zeroing; an odd size leaves a tail to zero, padding or overlap needs the adds."""
    assert _Geometry(1, 28, 28, 14, 14, 2, 2, 2, 2, 1, 1, 0, 0, 16).tiles_exactly
    assert not _Geometry(1, 28, 29, 14, 14, 2, 2, 2, 2, 1, 1, 0, 0, 16).tiles_exactly
    assert not _Geometry(1, 28, 28, 14, 14, 2, 2, 2, 2, 1, 1, 1, 1, 16).tiles_exactly
    assert not _Geometry(1, 28, 28, 27, 27, 2, 2, 1, 1, 1, 1, 0, 0, 16).tiles_exactly
