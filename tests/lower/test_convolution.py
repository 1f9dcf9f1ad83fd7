"""The direct convolution kernel against the numpy reference (which is the im2col gather and
matmul): 1-d and 2-d, padding, height strides, dilation, odd sizes, batch 1, rows of several
vectors and of one partial vector, epilogue bodies with per-channel and full-shape operands."""
import numpy as np
import pytest

from graphc.lower import convolution
from graphc.lower.convolution import direct_pays, tile_shape
from graphc.lower.kernel import VectorUnit, vector_unit
from graphc.ops.fused import Body
from harness import run_op, tolerance

rng = np.random.default_rng(11)

# (N, C, size, O, kernel, stride, dilation, padding)
CASES_2D = [
    (1, 1, (4, 4), 1, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),
    (2, 3, (7, 9), 5, (3, 3), (1, 1), (1, 1), ((0, 0), (0, 0))),
    (1, 2, (5, 20), 3, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),  # rows of two vectors, the second partial
    (3, 4, (9, 33), 10, (3, 5), (2, 1), (1, 1), ((1, 2), (2, 1))),  # height stride, asymmetric padding
    (2, 3, (8, 11), 7, (3, 3), (1, 1), (2, 3), ((2, 2), (3, 3))),  # dilated
    (1, 6, (14, 14), 16, (5, 5), (1, 1), (1, 1), ((0, 0), (0, 0))),  # LeNet's second layer
    (4, 1, (28, 28), 6, (5, 5), (1, 1), (1, 1), ((2, 2), (2, 2))),  # LeNet's first layer
    (2, 16, (16, 16), 32, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),  # W4's layers, smaller
    (1, 2, (3, 40), 3, (1, 7), (3, 1), (1, 1), ((0, 0), (6, 6))),  # padding wider than the row reaches
    (2, 3, (6, 6), 4, (6, 6), (1, 1), (1, 1), ((0, 0), (0, 0))),  # one output pixel
]
CASES_1D = [
    (1, 3, (11,), 6, (3,), (1,), (1,), ((1, 1),)),
    (2, 5, (40,), 9, (4,), (1,), (3,), ((0, 2),)),
    (3, 1, (5,), 2, (5,), (1,), (1,), ((2, 2),)),
]


def _conv(x_shape, channels, kernel, stride, dilation, padding, dtype, body=None, extras=()):
    n, c = x_shape[:2]
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((channels, c * int(np.prod(kernel)))).astype(dtype)
    return run_op("convolution", [x, w, *extras], kernel=kernel, stride=stride, dilation=dilation,
                  padding=padding, body=body)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES_2D + CASES_1D, ids=str)
def test_convolution_matches_the_reference(case, dtype):
    n, c, size, o, kernel, stride, dilation, padding = case
    native, expected = _conv((n, c) + size, o, kernel, stride, dilation, padding, dtype)
    np.testing.assert_allclose(native, expected, **tolerance(dtype))


def _bodies(out_shape):
    n, o, *rest = out_shape
    per_channel = rng.standard_normal((o,) + (1,) * len(rest)).astype(np.float32)
    full = rng.standard_normal(out_shape).astype(np.float32)
    relu_bias = Body((("add", ("in0", "in1"), (), "float32"), ("relu", ("s0",), (), "float32")))
    residual = Body((("mul", ("in0", "in1"), (), "float32"), ("add", ("s0", "in2"), (), "float32"),
                     ("sub", ("s1", "in0"), (), "float32")))  # reads in0 twice
    return [(relu_bias, [per_channel]), (residual, [per_channel, full])]


@pytest.mark.parametrize("unit", [VectorUnit(512, 32), VectorUnit(256, 16)])
@pytest.mark.parametrize("case", [CASES_2D[3], CASES_2D[8], CASES_1D[1]], ids=str)
def test_convolution_follows_the_vector_unit(monkeypatch, case, unit):
    """Tiles, packed rows and their padding sized for either register file give the same values."""
    monkeypatch.setattr(convolution, "vector_unit", lambda: unit)
    n, c, size, o, kernel, stride, dilation, padding = case
    native, expected = _conv((n, c) + size, o, kernel, stride, dilation, padding, "float32")
    np.testing.assert_allclose(native, expected, **tolerance("float32"))


@pytest.mark.parametrize("unit", [VectorUnit(512, 32), VectorUnit(256, 16)])
def test_packed_rows_in_blocks_of_channels(monkeypatch, unit):
    """Rows too wide for all 16 channels' rows in MAX_PACKED_BYTES: blocks of channels, each
    adding to out's partial sums, the epilogue after the last. Small integers: the sums are exact
    whatever their order."""
    monkeypatch.setattr(convolution, "vector_unit", lambda: unit)
    x = rng.integers(-2, 3, (2, 16, 5, 200)).astype(np.float32)
    w = rng.integers(-2, 3, (6, 16 * 9)).astype(np.float32)
    bias = rng.integers(-2, 3, (6, 1, 1)).astype(np.float32)
    relu_bias = Body((("add", ("in0", "in1"), (), "float32"), ("relu", ("s0",), (), "float32")))
    native, expected = run_op("convolution", [x, w, bias], kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                              padding=((1, 1), (1, 1)), body=relu_bias)
    np.testing.assert_array_equal(native, expected)


@pytest.mark.parametrize("case", [CASES_2D[3], CASES_2D[6], CASES_1D[1]], ids=str)
def test_epilogue_bodies_read_channel_and_full_operands(case):
    n, c, size, o, kernel, stride, dilation, padding = case
    out = [(s + p[0] + p[1] - d * (k - 1) - 1) // st + 1 for s, k, st, d, p in zip(size, kernel, stride, dilation, padding)]
    for body, extras in _bodies((n, o, *out)):
        native, expected = _conv((n, c) + size, o, kernel, stride, dilation, padding, "float32", body, extras)
        np.testing.assert_allclose(native, expected, **tolerance("float32"))


def test_tiles_fit_the_register_file():
    registers = vector_unit().registers
    for channels, rows, vectors in [(32, 32, 2), (6, 28, 2), (16, 10, 1), (1, 1, 1), (64, 56, 4), (3, 100, 7)]:
        mr, r, group = tile_shape(channels, rows, vectors, registers)
        assert mr <= channels and r <= rows and group <= vectors
        assert mr * r * group + r * group + 1 + registers // 16 <= registers  # room for LLVM's schedule
        assert r == 1 or group == vectors  # a tile of several rows takes whole rows


def test_direct_kernel_takes_unit_width_strides_only():
    geometry = ((3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    assert direct_pays((16, 16, 32, 32), 32, geometry, "float32")
    assert not direct_pays((16, 16, 32, 32), 32, ((3, 3), (1, 2), (1, 1), ((1, 1), (1, 1))), "float32")
    assert not direct_pays((2, 3, 4, 4, 4), 8, ((3, 3, 3), (1, 1, 1), (1, 1, 1), ((1, 1),) * 3), "float32")
    # rows of 3 output pixels fill under half of an AVX2 or AVX-512 vector: im2col's full tiles win
    assert not direct_pays((16, 128, 5, 5), 128, ((3, 3), (1, 1), (1, 1), ((0, 0), (0, 0))), "float32")
