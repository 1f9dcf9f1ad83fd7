"""random_uniform against an independent splitmix64 in Python integers, and compiled == numpy bit for bit."""
import math

import numpy as np
import pytest

import graphc
import graphc.nn as gnn
from graphc.ops import functions as F
from graphc.ops.random import random_bits

MASK = (1 << 64) - 1


def splitmix64(key: int, index: int) -> int:
    z = (key + (index + 1) * 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


@pytest.mark.parametrize("key", [0, 1, -1, 2**63 - 1, -2**63, 123456789])
def test_reference_bits_are_splitmix64(key):
    bits = random_bits(np.int64(key), 5)
    assert [int(b) for b in bits] == [splitmix64(key & MASK, i) for i in range(5)]


class Uniform(gnn.Module):
    def __init__(self, shape, dtype):
        super().__init__()
        self.shape, self.dtype = shape, dtype

    def forward(self, key):
        return F.random_uniform(key, self.shape, self.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1,), (7, 13), (3, 1, 5)])
def test_compiled_equals_reference_bit_for_bit(dtype, shape):
    compiled = graphc.compile(Uniform(shape, dtype))
    for key in (0, -7, 2**62 + 3):
        k = graphc.tensor(np.int64(key))
        expected = F.random_uniform(k, shape, dtype).numpy()
        np.testing.assert_array_equal(compiled(k).numpy(), expected)
        bits = 24 if dtype == "float32" else 53
        top = [splitmix64(key & MASK, i) >> (64 - bits) for i in range(math.prod(shape))]
        np.testing.assert_array_equal(expected.ravel(), np.array(top, dtype=np.float64) * 2.0 ** -bits)


def test_keys_must_be_int64_scalars():
    with pytest.raises(graphc.ShapeError, match="int64 scalar"):
        F.random_uniform(graphc.tensor([1, 2]), (3,), "float32")
    with pytest.raises(graphc.ShapeError, match="float32 or float64"):
        F.random_uniform(graphc.tensor(np.int64(1)), (3,), "int64")


class Erf(gnn.Module):
    def forward(self, x):
        return F.erf(x)


@pytest.mark.parametrize("dtype,tolerance", [("float32", 1.2e-7), ("float64", 1e-15)])
def test_compiled_erf_is_accurate(dtype, tolerance):
    x = np.concatenate([np.linspace(-6, 6, 2001), [0.0, -0.0, 1e-30, np.inf, -np.inf, np.nan]]).astype(dtype)
    exact = np.array([math.erf(v) for v in x.astype(np.float64)])
    with graphc.no_grad():
        got = graphc.compile(Erf())(graphc.tensor(x)).numpy()
    np.testing.assert_allclose(got, exact, rtol=tolerance, atol=tolerance)
    np.testing.assert_array_equal(F.erf(graphc.tensor(x)).numpy(), exact.astype(dtype))
