"""contiguous() copies strided or byte-swapped data into C order; factories keep 0-d shapes 0-d."""
import warnings

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.arrays import c_contiguous

rng = np.random.default_rng(0)
BASE = rng.standard_normal((4, 6)).astype(np.float32)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# views of one array that numpy (and torch.from_numpy) keep strided
VIEWS = {
    "transposed": lambda a: a.T,
    "every_other_row": lambda a: a[::2],
    "column_slice": lambda a: a[:, 1:4],
    "strided_both": lambda a: a[1::2, ::3],
    "broadcast": lambda a: np.broadcast_to(a[:1], a.shape),
}
NEGATIVE = {  # torch.from_numpy refuses negative strides, so these compare with numpy only
    "reversed_rows": lambda a: a[::-1],
    "reversed_columns": lambda a: a[:, ::-1],
    "reversed_transposed": lambda a: a[::-1, 1:5].T,
}


@pytest.mark.parametrize("make", [lambda: graphc.zeros(()), lambda: graphc.ones(()), lambda: graphc.full((), 2.0),
                                  lambda: graphc.randn(()), lambda: graphc.rand(()), lambda: graphc.empty(()),
                                  lambda: graphc.zeros([]), lambda: graphc.tensor(3.0), lambda: graphc.randint(5),
                                  lambda: graphc.zeros((), dtype=graphc.int64)],
                         ids=["zeros", "ones", "full", "randn", "rand", "empty", "zeros_list", "tensor", "randint",
                              "zeros_int"])
def test_zero_dimensional_factories_stay_zero_dimensional(make):
    t = make()
    assert t.shape == () and t.ndim == 0 and t.numpy().shape == ()
    assert isinstance(t.numpy(), np.ndarray)


def test_full_of_a_zero_dimensional_shape_holds_the_value():
    assert graphc.full((), 2.0).item() == 2.0 and graphc.ones(()).item() == 1.0


@pytest.mark.parametrize("view", {**VIEWS, **NEGATIVE}.values(), ids=[*VIEWS, *NEGATIVE])
def test_contiguous_copies_strided_views_into_c_order(view):
    array = view(BASE)
    t = graphc.from_numpy(array)
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c is not t and c.is_contiguous() and c.numpy().flags.c_contiguous
    assert c.shape == t.shape and c.dtype == t.dtype
    np.testing.assert_array_equal(c.numpy(), array)
    assert c.contiguous() is c


def test_contiguous_data_is_returned_as_it_is():
    t = graphc.from_numpy(BASE)
    assert t.contiguous() is t
    s = graphc.zeros(())
    assert s.contiguous() is s


@pytest.mark.parametrize("view", VIEWS.values(), ids=list(VIEWS))
def test_gradients_through_contiguous_match_torch(view, torch):
    array = view(BASE)
    weight = rng.standard_normal(array.shape).astype(np.float32)
    x = graphc.from_numpy(array).requires_grad_()
    (x.contiguous().tanh() * graphc.tensor(weight)).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # broadcast views are read-only
        tx = torch.from_numpy(array).requires_grad_()
    (tx.contiguous().tanh() * torch.from_numpy(weight)).sum().backward()
    assert x.grad.shape == array.shape
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_contiguous_records_a_gradient_only_when_needed():
    x = graphc.from_numpy(BASE.T)
    assert x.contiguous().grad_fn is None and not x.contiguous().requires_grad
    x.requires_grad_()
    with graphc.no_grad():
        assert x.contiguous().grad_fn is None
    assert x.contiguous().requires_grad and x.contiguous().grad_fn is not None


ARRAYS = {
    **{name: lambda view=view: view(BASE) for name, view in VIEWS.items()},
    "contiguous": lambda: BASE,
    "rows": lambda: BASE[1:3],
    "one_row_strided": lambda: BASE[:1, ::2],  # strides of size-1 dimensions do not matter
    "one_column": lambda: BASE[:, :1],
    "column_of_transpose": lambda: BASE.T[:, :1],
    "unsqueezed_transpose": lambda: BASE.T[:, None, :],
    "empty": lambda: BASE[:, :0],
    "zero_dimensional": lambda: BASE[1, 2, ...],
}


@pytest.mark.parametrize("make", ARRAYS.values(), ids=list(ARRAYS))
def test_is_contiguous_matches_torch(make, torch):
    array = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = torch.from_numpy(array).is_contiguous()
    assert graphc.from_numpy(array).is_contiguous() == expected


def test_traced_values_are_contiguous_and_contiguous_is_a_no_op_there():
    seen = []

    class Net(nn.Module):
        def forward(self, x):
            seen.append((x.is_contiguous(), x.contiguous() is x))
            return x.contiguous() * 2

    program = graphc.trace(Net(), graphc.randn(2, 3))
    assert seen == [(True, True)]
    assert [node.op for node in program.graph.nodes if node.op == "mul"] == ["mul"]


@pytest.mark.parametrize("shape", [(2, 3), (5,), ()])
def test_big_endian_arrays_from_numpy_convert(shape):
    big = rng.standard_normal(shape).astype(">f4")
    t = graphc.from_numpy(big)
    assert t.dtype == graphc.float32
    c = t.contiguous()
    assert c is not t and c.numpy().dtype.isnative and c.numpy().dtype == np.float32
    assert c.shape == shape and c.numpy().flags.c_contiguous
    np.testing.assert_array_equal(c.numpy(), big)
    transposed = graphc.from_numpy(big.T).contiguous()
    assert transposed.numpy().dtype.isnative and transposed.numpy().flags.c_contiguous
    np.testing.assert_array_equal(transposed.numpy(), big.T)


def test_c_contiguous_keeps_shape_and_avoids_copies():
    assert c_contiguous(BASE) is BASE
    assert c_contiguous(np.float32(3)).shape == () and c_contiguous(2.5).shape == ()
    assert c_contiguous(np.zeros((), ">i8")).dtype == np.int64
    converted = c_contiguous(BASE.T, np.float64)
    assert converted.dtype == np.float64 and converted.flags.c_contiguous
    np.testing.assert_array_equal(converted, BASE.T)
    swapped = c_contiguous(BASE.astype(">f8")[::-1], "float32")
    assert swapped.dtype == np.float32 and swapped.dtype.isnative
    np.testing.assert_array_equal(swapped, BASE[::-1])
