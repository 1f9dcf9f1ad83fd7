"""Layers and loss modules against PyTorch: reprs, parameters, forward values and parameter gradients."""
import numpy as np
import pytest

import graphc
import graphc.nn as gnn


def layers(nn):
    return [nn.Linear(784, 512), nn.Linear(3, 2, bias=False), nn.Identity(54, unused=True), nn.ReLU(),
            nn.ReLU(inplace=True), nn.Tanh(), nn.Sigmoid(), nn.Softmax(), nn.Softmax(dim=1), nn.LogSoftmax(dim=-1),
            nn.Flatten(), nn.Flatten(0, 2), nn.MSELoss(), nn.MSELoss(reduction="sum"), nn.CrossEntropyLoss(),
            nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=3), nn.NLLLoss(reduction="none")]


def test_reprs_match_pytorch(torch):
    assert [repr(m) for m in layers(gnn)] == [repr(m) for m in layers(torch.nn)]
    assert repr(gnn.Linear(784, 512)) == "Linear(in_features=784, out_features=512, bias=True)"


def test_attributes_match_pytorch(torch):
    for g, t in zip(layers(gnn), layers(torch.nn)):
        for name in ("in_features", "out_features", "inplace", "dim", "start_dim", "end_dim", "reduction",
                     "ignore_index", "label_smoothing"):
            assert getattr(g, name, None) == getattr(t, name, None), (g, name)


def test_linear_parameters():
    layer = gnn.Linear(3, 2)
    assert [(n, tuple(p.shape)) for n, p in layer.named_parameters()] == [("weight", (2, 3)), ("bias", (2,))]
    assert all(isinstance(p, gnn.Parameter) and p.requires_grad for p in layer.parameters())
    no_bias = gnn.Linear(3, 2, bias=False)
    assert no_bias.bias is None and list(no_bias.state_dict()) == ["weight"]
    double = gnn.Linear(3, 2, dtype=graphc.float64)
    assert double.weight.dtype == "float64" and double(graphc.ones(1, 3, dtype=graphc.float64)).dtype == "float64"
    weight = layer.weight
    layer.reset_parameters()
    assert layer.weight is weight


def test_flatten_and_identity():
    x = graphc.randn(2, 3, 4)
    assert gnn.Flatten()(x).shape == (2, 12)
    assert gnn.Flatten(0, 1)(x).shape == (6, 4)
    assert gnn.Identity()(x) is x


def mlp(nn):
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(),
                         nn.Linear(8, 5), nn.Sigmoid(), nn.Linear(5, 4))


def _gradients(model, loss):
    loss.backward()
    return {n: p.grad.numpy() for n, p in model.named_parameters()}


@pytest.mark.parametrize("criterion,target", [
    ("CrossEntropyLoss", "index"), ("NLLLoss", "index"), ("MSELoss", "float"), ("CrossEntropyLoss", "probs")])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mlp_loss_and_parameter_gradients_match_pytorch(torch, to_torch, criterion, target, reduction):
    g = mlp(gnn)
    t = to_torch(g, mlp(torch.nn))
    r = np.random.default_rng(0)
    x = r.standard_normal((6, 3, 4)).astype(np.float32)
    y = {"index": r.integers(0, 4, 6), "float": r.standard_normal((6, 4)).astype(np.float32),
         "probs": r.dirichlet(np.ones(4), 6).astype(np.float32)}[target]
    weight = np.array([1.0, 0.5, 2.0, 1.5], np.float32)
    kw = {"reduction": reduction} | ({"weight": weight} if criterion != "MSELoss" else {})

    def run(nn, model, tensor, extra):
        loss_fn = getattr(nn, criterion)(**{k: tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()})
        out = model(tensor(x))
        if criterion == "NLLLoss":
            out = extra(out, dim=1)
        loss = loss_fn(out, tensor(y))
        return loss.detach().numpy(), _gradients(model, loss.sum())
    ours = run(gnn, g, graphc.tensor, gnn.functional.log_softmax)
    theirs = run(torch.nn, t, torch.tensor, torch.nn.functional.log_softmax)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-5)
    assert ours[1].keys() == theirs[1].keys()
    for name in ours[1]:
        np.testing.assert_allclose(ours[1][name], theirs[1][name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_loss_weight_is_a_buffer_like_pytorch(torch):
    g = gnn.CrossEntropyLoss(weight=graphc.tensor([1.0, 2.0]))
    t = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0]))
    assert list(g.state_dict()) == list(t.state_dict()) == ["weight"]
    assert [n for n, _ in g.named_buffers()] == ["weight"]
    assert list(gnn.NLLLoss().state_dict()) == [] and gnn.NLLLoss().weight is None
    assert list(g.parameters()) == []


def test_loss_module_inside_a_model_traces_its_weight_as_a_buffer():
    class WithLoss(gnn.Module):
        def __init__(self):
            super().__init__()
            self.fc = gnn.Linear(3, 2)
            self.loss = gnn.CrossEntropyLoss(weight=graphc.tensor([1.0, 3.0]))

        def forward(self, x, y):
            return self.loss(self.fc(x), y)
    model = WithLoss()
    x, y = graphc.randn(4, 3), graphc.tensor([0, 1, 1, 0])
    program = graphc.trace(model, x, y)
    assert "loss.weight" in program.params
    np.testing.assert_allclose(program(x, y).numpy(), model(x, y).detach().numpy(), rtol=1e-6)
