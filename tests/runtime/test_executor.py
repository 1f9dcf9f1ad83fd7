"""runtime/executor.py: outputs up to SMALL_OUTPUTS_BYTES go through one kept block and are copied out."""
import numpy as np

import graphc
from runtime.executor import SMALL_OUTPUTS_BYTES


def test_small_outputs_are_fresh_arrays_each_call():
    f = graphc.compile(graphc.nn.Linear(3, 2).eval())
    x = graphc.randn(4, 3)
    with graphc.no_grad():
        first, second, again = f(x), f(x + 1), f(x)
    assert not np.shares_memory(first.numpy(), second.numpy())
    assert not np.allclose(first.numpy(), second.numpy())
    np.testing.assert_array_equal(first.numpy(), again.numpy())


def test_large_outputs_are_fresh_blocks_too():
    width = SMALL_OUTPUTS_BYTES // 4  # one row of floats already fills the kept block's limit
    f = graphc.compile(graphc.nn.Linear(3, width).eval())
    x = graphc.randn(2, 3)
    with graphc.no_grad():
        first, second = f(x), f(x)
    assert not np.shares_memory(first.numpy(), second.numpy())
    np.testing.assert_array_equal(first.numpy(), second.numpy())
