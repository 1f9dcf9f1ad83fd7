"""graphc.compile: compiled forward and backward against the reference interpreter and PyTorch."""
import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.ir import interpret
from graphc.passes import optimize
from graphc.stages import compile_graph

rng = np.random.default_rng(0)


class MLP(nn.Module):
    def __init__(self, sizes=(12, 16, 16, 5), act=nn.ReLU):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.act = act()

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        return self.layers[-1](x)


def batch(*shape, dtype=np.float32):
    return graphc.tensor(rng.standard_normal(shape).astype(dtype))


def to_torch(model, torch_model):
    import torch
    torch_model.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    return torch_model


def torch_mlp(sizes=(12, 16, 16, 5), act="ReLU"):
    import torch
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
    class T(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(layers)
            self.act = getattr(torch.nn, act)()

        def forward(self, x):
            for layer in self.layers[:-1]:
                x = self.act(layer(x))
            return self.layers[-1](x)
    return T()


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, nn.Sigmoid])
@pytest.mark.parametrize("n", [1, 7, 32])
def test_compiled_forward_matches_eager_and_interpreter(act, n):
    model = MLP(act=act).eval()
    compiled = graphc.compile(model)
    x = batch(n, 12)
    with graphc.no_grad():
        out = compiled(x)
    program = graphc.trace(model, x)
    (interpreted,) = interpret(optimize(program.graph), program.input_arrays(x))
    np.testing.assert_allclose(out.numpy(), interpreted, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), model(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_compiled_forward_and_backward_match_pytorch():
    torch = pytest.importorskip("torch")
    model = MLP()
    reference = to_torch(model, torch_mlp())
    compiled = graphc.compile(model)
    x, y = batch(9, 12), graphc.tensor(rng.integers(0, 5, 9))
    loss = F.cross_entropy(compiled(x), y)
    loss.backward()
    t_loss = torch.nn.functional.cross_entropy(reference(torch.tensor(x.numpy())), torch.tensor(y.numpy()))
    t_loss.backward()
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-5)
    t_params = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_backward_through_compiled_forward_matches_eager_and_accumulates():
    model = MLP(act=nn.Tanh)
    compiled = graphc.compile(model)
    x = batch(4, 12)
    (compiled(x) ** 2).mean().backward()
    compiled_grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    model.zero_grad()
    (model(x) ** 2).mean().backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(compiled_grads[name], p.grad.numpy(), rtol=1e-4, atol=1e-7, err_msg=name)
    before = model.layers[0].weight.grad.numpy().copy()
    (compiled(x) ** 2).mean().backward()
    np.testing.assert_allclose(model.layers[0].weight.grad.numpy(), 2 * before, rtol=1e-4, atol=1e-7)


def test_input_gradients_and_float64_models():
    model = MLP().double()
    compiled = graphc.compile(model)
    x = graphc.tensor(rng.standard_normal((3, 12)), requires_grad=True)
    compiled(x).sum().backward()
    x_eager = graphc.tensor(x.detach().numpy(), requires_grad=True)
    model(x_eager).sum().backward()
    assert x.grad.dtype == graphc.float64
    np.testing.assert_allclose(x.grad.numpy(), x_eager.grad.numpy(), rtol=1e-10)


def test_multiple_outputs_each_carry_gradients():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            h = self.fc(x)
            return h.relu(), h.sigmoid()

    model = Two()
    x = batch(2, 3)
    a, b = graphc.compile(model)(x)
    (a.sum() + (b * b).sum()).backward()
    compiled_grad = model.fc.weight.grad.numpy().copy()
    model.zero_grad()
    a, b = model(x)
    (a.sum() + (b * b).sum()).backward()
    np.testing.assert_allclose(compiled_grad, model.fc.weight.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_specialisations_per_shape_mode_and_grad_mode():
    model = MLP()
    compiled = graphc.compile(model)
    compiled(batch(2, 12))
    compiled(batch(3, 12))
    compiled(batch(3, 12))
    assert compiled.specializations() == 2
    with graphc.no_grad():
        compiled(batch(3, 12))
    assert compiled.specializations() == 3
    compiled.eval()
    assert not model.training
    with graphc.no_grad():
        compiled(batch(3, 12))
    assert compiled.specializations() == 4


def test_wrapper_reaches_the_model():
    model = MLP()
    compiled = graphc.compile(model)
    assert compiled.layers is model.layers
    assert list(compiled.parameters()) == list(model.parameters())
    assert list(compiled.state_dict()) == list(model.state_dict())
    compiled.train(False)
    assert model.training is False


def test_weights_loaded_after_compiling_are_used():
    model = MLP().eval()
    compiled = graphc.compile(model)
    x = batch(2, 12)
    with graphc.no_grad():
        compiled(x)
        other = MLP()
        model.load_state_dict(other.state_dict())
        np.testing.assert_allclose(compiled(x).numpy(), other(x).numpy(), rtol=1e-5, atol=1e-6)


def test_inputs_the_model_cannot_take_raise_errors_naming_the_module():
    compiled = graphc.compile(MLP())
    with pytest.raises(graphc.ShapeError, match=r"'layers.0' \(Linear\).*12x|matmul"):
        compiled(batch(2, 13))
    with pytest.raises(graphc.ShapeError, match="dtype"):
        compiled(batch(2, 12, dtype=np.float64))


def test_compiled_graph_checks_shape_and_dtype_before_native_code():
    model = MLP()
    program = graphc.trace(model, batch(2, 12))
    compiled = compile_graph(optimize(program.graph), context="MLP")
    arrays = program.input_arrays(batch(2, 12))
    compiled.run(arrays)
    bad_shape = [np.zeros((3, 12), np.float32)] + arrays[1:]
    with pytest.raises(graphc.InputError, match=r"MLP: input 'x' expected float32\[2, 12\], got float32\[3, 12\]"):
        compiled.run(bad_shape)
    with pytest.raises(graphc.InputError, match="float64"):
        compiled.run([np.zeros((2, 12))] + arrays[1:])
    strided = np.random.default_rng(0).standard_normal((12, 2)).astype(np.float32).T  # staged, not rejected
    np.testing.assert_array_equal(compiled.run([strided] + arrays[1:])[0],
                                  compiled.run([strided.copy()] + arrays[1:])[0])
    with pytest.raises(graphc.InputError, match="expected"):
        compiled.run(arrays[:1])
    compiled.run(arrays)  # still usable after rejected calls


def test_concurrent_calls_from_python_threads_give_correct_results():
    import threading
    model = MLP(sizes=(64, 256, 256, 8)).eval()
    compiled = graphc.compile(model)
    inputs = [batch(32, 64) for _ in range(4)]
    with graphc.no_grad():
        expected = [compiled(x).numpy() for x in inputs]
        results = {}

        def work(i):
            for _ in range(20):
                with graphc.no_grad():  # grad mode is per thread, as in PyTorch
                    results[i] = compiled(inputs[i]).numpy()
            eager = graphc.compile(model)(inputs[i])  # a trace per thread, while others run
            np.testing.assert_allclose(eager.detach().numpy(), expected[i], rtol=1e-5)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for i in range(4):
        np.testing.assert_allclose(results[i], expected[i], rtol=1e-6)


def test_static_arguments_specialise_even_when_unhashable():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x, scales):
            return self.fc(x) * scales[0]

    model = Scaled().eval()
    compiled = graphc.compile(model)
    x = batch(2, 3)
    with graphc.no_grad():
        for scales in ([1.0], [2.0], [2.0]):  # atol: under FMA contraction an output near 0 differs relatively
            np.testing.assert_allclose(compiled(x, scales).numpy(), model(x, scales).numpy(), rtol=1e-5, atol=1e-6)
    assert compiled.specializations() == 2
