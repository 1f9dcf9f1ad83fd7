"""Sequential, ModuleList and ModuleDict against PyTorch: indexing, mutation, reprs, state_dict keys."""
from collections import OrderedDict

import numpy as np
import pytest

import graphc
import graphc.nn as gnn


def nested(nn):
    return nn.Sequential(
        nn.Sequential(OrderedDict([("fc", nn.Linear(6, 5)), ("act", nn.ReLU())])),
        nn.ModuleList([nn.Linear(5, 5), nn.Linear(5, 5), nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 5)]),
        nn.ModuleDict({"out": nn.Linear(5, 2), "norm": nn.LogSoftmax(dim=1)}),
        nn.ModuleList(),
        nn.Sequential(),
    )


def test_nested_repr_and_keys_match_pytorch(torch):
    g, t = nested(gnn), nested(torch.nn)
    assert repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict())


def test_sequential_runs_children_in_order(torch, to_torch):
    g = gnn.Sequential(gnn.Linear(4, 8), gnn.ReLU(), gnn.Linear(8, 3), gnn.Softmax(dim=1))
    t = to_torch(g, torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3),
                                        torch.nn.Softmax(dim=1)))
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(g(graphc.tensor(x)).detach().numpy(), t(torch.from_numpy(x)).detach().numpy(),
                               atol=1e-6)


def test_sequential_indexing(torch):
    def build(nn):
        return nn.Sequential(OrderedDict([("a", nn.ReLU()), ("b", nn.Tanh()), ("c", nn.Sigmoid())]))
    g, t = build(gnn), build(torch.nn)
    assert g[0] is g.a and g[-1] is g.c and g.b is g._modules["b"]
    assert repr(g[1:]) == repr(t[1:])  # slices keep the original keys
    assert isinstance(g[1:], gnn.Sequential)
    assert len(g) == 3 and list(g) == [g.a, g.b, g.c]
    with pytest.raises(IndexError, match="index 5 is out of range"):
        g[5]
    g[1] = gnn.Identity()
    assert isinstance(g.b, gnn.Identity)


def test_sequential_mutation_renumbers_like_pytorch(torch):
    def mutate(nn):
        s = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid())
        del s[0]
        s.append(nn.Identity())
        s.insert(1, nn.Flatten())
        s.extend([nn.ReLU()])
        s.pop(0)
        return s + nn.Sequential(nn.Tanh())
    assert repr(mutate(gnn)) == repr(mutate(torch.nn))


def test_module_list(torch):
    def build(nn):
        layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
        layers.append(nn.ReLU())
        layers.extend([nn.Tanh(), nn.Tanh()])
        layers += [nn.Identity()]
        layers.insert(1, nn.Sigmoid())
        del layers[0]
        return layers
    g, t = build(gnn), build(torch.nn)
    assert repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict())
    assert len(g) == len(t) == 7
    assert isinstance(g[2:4], gnn.ModuleList) and repr(g[2:4]) == repr(t[2:4])
    assert g[-1] is list(g)[-1]
    assert repr(g + gnn.ModuleList([gnn.ReLU()])) == repr(t + torch.nn.ModuleList([torch.nn.ReLU()]))
    assert "0" not in dir(g)
    with pytest.raises(IndexError):
        g[7]
    with pytest.raises(TypeError):
        g.extend(3)


def test_module_list_without_forward():
    with pytest.raises(NotImplementedError):
        gnn.ModuleList([gnn.ReLU()])(graphc.ones(1))


def test_module_dict(torch):
    def build(nn):
        d = nn.ModuleDict({"z": nn.ReLU(), "a": nn.Tanh()})
        d["m"] = nn.Linear(1, 1)
        d.update([("b", nn.Sigmoid())])
        d.update(OrderedDict(c=nn.Identity()))
        d.pop("a")
        del d["b"]
        return d
    g, t = build(gnn), build(torch.nn)
    assert repr(g) == repr(t)
    assert list(g) == list(t) == list(g.keys()) == ["z", "m", "c"]
    assert [type(v).__name__ for v in g.values()] == ["ReLU", "Linear", "Identity"]
    assert [k for k, _ in g.items()] == list(g)
    assert "m" in g and "a" not in g and len(g) == 3
    assert list(g.state_dict()) == list(t.state_dict())
    with pytest.raises(ValueError):
        g.update([("x", gnn.ReLU(), 1)])
    g.clear()
    assert len(g) == 0


def test_empty_sequential_is_the_identity_eagerly_and_compiled():
    x = graphc.randn(2, 3)
    assert gnn.Sequential()(x) is x
    model = gnn.Sequential(gnn.Sequential(), gnn.Linear(3, 2), gnn.Sequential())
    with graphc.no_grad():
        np.testing.assert_allclose(graphc.compile(model)(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_sequential_deletion_by_slice_and_negative_index(torch):
    def mutate(nn):
        s = nn.Sequential(OrderedDict([("a", nn.ReLU()), ("b", nn.Tanh()), ("c", nn.Sigmoid()), ("d", nn.Identity())]))
        del s[1:3]
        s[-1] = nn.Flatten()
        s.insert(-1, nn.Tanh())
        popped = s.pop(-1)
        return s, popped
    (g, gp), (t, tp) = mutate(gnn), mutate(torch.nn)
    assert repr(g) == repr(t) and repr(gp) == repr(tp)
    assert len(g) == 2 and type(g[-2]).__name__ == "ReLU"


def _parameter_containers(nn, torch_like):
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.plist = nn.ParameterList([nn.Parameter(torch_like.ones(2, 3)),
                                           nn.Parameter(torch_like.ones(4, dtype=torch_like.float64))])
            self.plist.append(torch_like.zeros(5))  # a plain tensor becomes a Parameter
            self.plist.extend([nn.Parameter(torch_like.ones(1), requires_grad=False)])
            self.pdict = nn.ParameterDict({"w": nn.Parameter(torch_like.ones(3, 3))})
            self.pdict["b"] = torch_like.zeros(3)
            self.pdict.update([("s", nn.Parameter(torch_like.ones(1, dtype=torch_like.float64)))])
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x) @ self.pdict["w"] + self.pdict["b"] + self.plist[0].sum()
    return Holder()


def test_parameter_containers_match_pytorch(torch):
    g, t = _parameter_containers(gnn, graphc), _parameter_containers(torch.nn, torch)
    assert repr(g) == repr(t).replace("torch.", "graphc.")
    assert list(g.state_dict()) == list(t.state_dict())
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [p.requires_grad for p in g.parameters()] == [p.requires_grad for p in t.parameters()]
    assert isinstance(g.plist[2], gnn.Parameter) and isinstance(g.pdict["b"], gnn.Parameter)
    assert repr(gnn.ParameterList()) == repr(torch.nn.ParameterList())
    assert repr(gnn.ParameterDict()) == repr(torch.nn.ParameterDict())
    assert repr(g.plist[1:]) == repr(t.plist[1:]).replace("torch.", "graphc.")


def test_parameter_containers_load_from_torch_and_train(torch):
    g, t = _parameter_containers(gnn, graphc), _parameter_containers(torch.nn, torch)
    g.load_state_dict(t.state_dict())
    x = np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32)
    g(graphc.tensor(x)).sum().backward()
    t(torch.from_numpy(x)).sum().backward()
    for (name, gp), (_, tp) in zip(g.named_parameters(), t.named_parameters()):
        assert (gp.grad is None) == (tp.grad is None), name
        if tp.grad is not None:
            np.testing.assert_allclose(gp.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


def test_parameter_list_api():
    plist = gnn.ParameterList([graphc.ones(2), graphc.zeros(3)])
    plist += [graphc.ones(1)]
    assert len(plist) == 3 and [tuple(p.shape) for p in plist] == [(2,), (3,), (1,)]
    assert plist[-1] is plist[2] and isinstance(plist[1:], gnn.ParameterList) and len(plist[1:]) == 2
    replacement = gnn.Parameter(graphc.ones(7))
    plist[0] = replacement
    assert plist[0] is replacement and plist.get_parameter("0") is replacement
    assert "0" not in dir(plist)
    with pytest.raises(IndexError):
        plist[3]
    with pytest.raises(RuntimeError, match="should not be called"):
        plist()


def test_parameter_dict_api(torch):
    def build(nn, lib):
        d = nn.ParameterDict({"a": nn.Parameter(lib.ones(2)), "b": nn.Parameter(lib.ones(3))})
        d["c"] = nn.Parameter(lib.ones(1))
        d.pop("a")
        return d
    g, t = build(gnn, graphc), build(torch.nn, torch)
    assert list(g) == list(t) == list(g.keys()) == ["b", "c"]
    assert "b" in g and "a" not in g and len(g) == 2
    assert [k for k, _ in g.items()] == ["b", "c"] and [tuple(v.shape) for v in g.values()] == [(3,), (1,)]
    assert g.get("a") is None and g.get("b") is g["b"]
    assert list(g.state_dict()) == list(t.state_dict())
    with pytest.raises(KeyError):
        g["a"]
    g.clear()
    assert len(g) == 0 and list(g.parameters()) == []
