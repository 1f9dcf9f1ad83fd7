"""runtime/executor.py: the workspace a graph's kernels share, and the kept block of small outputs."""
import numpy as np
import pytest

import graphc
import runtime.executor as executor
from runtime.executor import POPULATE_BYTES, workspace


@pytest.mark.parametrize("nbytes", [1, 4096, POPULATE_BYTES - 1, POPULATE_BYTES, 3 << 20])
def test_a_workspace_is_aligned_writable_and_sized(nbytes):
    space = workspace(nbytes)
    assert space.nbytes == nbytes and space.dtype == np.uint8 and space.flags.writeable
    assert space.ctypes.data % executor.ALIGNMENT == 0
    space[:] = 7
    assert int(space[-1]) == 7


def test_a_large_workspace_is_mapped_zeroed_and_freed_with_its_array():
    import weakref
    space = workspace(POPULATE_BYTES * 2)
    if not isinstance(space.base, memoryview):  # no MAP_POPULATE on this system: numpy's allocator
        pytest.skip("mmap.MAP_POPULATE is not available here")
    assert not space.any()
    mapping = space.base.obj
    ref = weakref.ref(mapping)
    del space, mapping
    assert ref() is None


def test_small_outputs_are_fresh_arrays_each_call():
    f = graphc.compile(graphc.nn.Linear(3, 2).eval())
    x = graphc.randn(4, 3)
    with graphc.no_grad():
        first, second, again = f(x), f(x + 1), f(x)
    assert not np.shares_memory(first.numpy(), second.numpy())
    assert not np.allclose(first.numpy(), second.numpy())
    np.testing.assert_array_equal(first.numpy(), again.numpy())
