"""What compiled calls accept, as PyTorch does, and what they reject with a clear error
(issue 5, items 7, 8, 9 and 11)."""
import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc.ir import GraphBuilder
from graphc.stages import compile_graph


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x).tanh()


class Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return (self.fc(x) * self.fc(x)).sum()


def _base(shape=(4, 8)):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


VIEWS = {
    "transposed": lambda: _base((4, 3)).T,
    "strided": lambda: _base((3, 8))[:, ::2],
    "negative stride": lambda: _base((3, 4))[::-1],
    "big-endian": lambda: _base((3, 4)).astype(">f4"),
    "unaligned": lambda: np.frombuffer(b"\0" + _base((3, 4)).tobytes(), np.float32, offset=1).reshape(3, 4),
}


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_compiled_calls_accept_any_strided_input(view):
    array = VIEWS[view]()
    model = Net()
    contiguous = graphc.tensor(np.array(array, np.float32))
    compiled = graphc.compile(model)
    expected = compiled(contiguous).detach().numpy()
    np.testing.assert_allclose(expected, model(contiguous).detach().numpy(), rtol=1e-5, atol=1e-6)
    for x in (graphc.from_numpy(array), graphc.tensor(array), array):  # staged: exactly the same bytes in
        np.testing.assert_array_equal(compiled(x).detach().numpy(), expected)
    assert graphc.from_numpy(array).contiguous().is_contiguous()


@pytest.mark.parametrize("view", ["transposed", "negative stride"])
def test_gradients_through_strided_inputs_match_eager(view):
    array = VIEWS[view]()
    model = Net()
    x = graphc.from_numpy(array).requires_grad_()
    model(x).sum().backward()
    expected = x.grad.numpy().copy(), model.fc.weight.grad.numpy().copy()
    model.zero_grad()
    x = graphc.from_numpy(array).requires_grad_()
    graphc.compile(model)(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.fc.weight.grad.numpy(), expected[1], rtol=1e-5, atol=1e-6)


def test_a_train_step_updates_a_parameter_held_as_a_strided_view():
    graphc.manual_seed(0)
    model, twin = nn.Linear(4, 3), nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    model.weight.data = np.asfortranarray(model.weight.detach().numpy())  # column-major storage
    assert not model.weight.is_contiguous()
    x, y = graphc.randn(5, 4), graphc.randn(5, 3)
    step = graphc.compile_train_step(model, nn.MSELoss(), graphc.optim.SGD(model.parameters(), lr=0.1))
    opt = graphc.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(3):
        loss = step(x, y)
        opt.zero_grad()
        expected = nn.MSELoss()(twin(x), y)
        expected.backward()
        opt.step()
        np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-5)
    np.testing.assert_allclose(model.weight.detach().numpy(), twin.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_a_zero_dimensional_output_backpropagates():
    model = Scalar()
    x = graphc.randn(2, 4)
    model(x).backward()
    expected = model.fc.weight.grad.numpy().copy()
    model.zero_grad()
    loss = graphc.compile(model)(x)
    assert loss.shape == ()
    loss.backward()
    np.testing.assert_allclose(model.fc.weight.grad.numpy(), expected, rtol=1e-5)
    assert graphc.zeros(()).shape == () and graphc.tensor([1.0, 2.0])[0].shape == ()


@pytest.mark.parametrize("bad, kind", [([[1.0, 2.0, 3.0, 4.0]], "list"), (None, "NoneType"), (3.0, "float"),
                                       (7, "int")])
def test_non_tensor_arguments_get_a_type_error_naming_the_argument(bad, kind):
    with pytest.raises(TypeError, match=rf"forward argument 'x' \(position 0\) must be a Tensor, not {kind}"):
        graphc.compile(Net())(bad)


def test_a_byte_order_mismatch_is_converted_and_a_dtype_mismatch_is_named():
    b = GraphBuilder()
    x = b.input("x", "user", (2, 3), "float32")
    graph = b.finish([b.add("neg", [x], {}, (2, 3), "float32")])
    compiled = compile_graph(graph)
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    np.testing.assert_array_equal(compiled.run([big])[0], -np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(graphc.InputError, match=r"expected float32\[2, 3\], got float64\[2, 3\] \(big-endian\)"):
        compiled.run([np.zeros((2, 3), ">f8")])


def test_an_array_resized_in_place_is_checked_again():
    model = Net()
    compiled = graphc.compile(model)
    array = _base((2, 4))
    x = graphc.from_numpy(array)
    compiled(x)
    array.resize((200, 4), refcheck=False)  # new memory; the old pointer is freed
    array[:] = 1.0
    array.resize((2, 4), refcheck=False)    # same shape again, likely another pointer
    np.testing.assert_allclose(compiled(x).detach().numpy(), model(graphc.tensor(array.copy())).detach().numpy(), rtol=1e-6)
    array.resize((3, 4), refcheck=False)
    with pytest.raises(graphc.InputError, match=r"expected float32\[2, 4\], got float32\[3, 4\]"):
        compiled._cache.values()[0].forward.run([array] + [p._data for p in model.parameters()])
