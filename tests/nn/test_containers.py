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
