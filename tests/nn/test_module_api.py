"""Module: registration, traversal, state_dict round trips with PyTorch, hooks, modes, casting."""
import contextlib
import copy
from collections import OrderedDict

import numpy as np
import pytest

import graphc
import graphc.nn as gnn
from graphc.ops import dispatch


def make_net(nn, ones):
    """The same model for graphc.nn and torch.nn: children of every container kind and buffers."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 8)
            self.act = nn.ReLU()
            self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Tanh()])
            self.heads = nn.ModuleDict({"b": nn.Linear(8, 3), "a": nn.Identity()})
            self.register_buffer("scale", ones(3))
            self.register_buffer("cache", ones(2), persistent=False)
            self.register_parameter("unused", None)

        def forward(self, x):
            x = self.act(self.fc1(x))
            for block in self.blocks:
                x = block(x)
            return self.heads["a"](self.heads["b"](x)) * self.scale
    return Net()


@pytest.fixture
def nets(torch):
    g = make_net(gnn, graphc.ones)
    t = make_net(torch.nn, torch.ones)
    with torch.no_grad():
        t.scale.copy_(torch.tensor([1.0, 2.0, 3.0]))
    return g, t


def test_repr_matches_pytorch(nets):
    g, t = nets
    assert repr(g) == repr(t)


def test_names_and_order_match_pytorch(nets):
    g, t = nets
    assert list(g.state_dict()) == list(t.state_dict())
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in g.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in g.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in g.named_children()] == [n for n, _ in t.named_children()]
    assert [n for n, _ in g.named_parameters(prefix="m", recurse=False)] == []
    assert [n for n, _ in g.fc1.named_parameters(prefix="fc1")] == ["fc1.weight", "fc1.bias"]


def test_state_dict_values_are_detached_views(nets):
    g, _ = nets
    state = g.state_dict()
    assert isinstance(state, OrderedDict)
    weight = state["fc1.weight"]
    assert not weight.requires_grad and not isinstance(weight, gnn.Parameter)
    assert np.shares_memory(weight.numpy(), g.fc1.weight.detach().numpy())
    assert g.state_dict(keep_vars=True)["fc1.weight"] is g.fc1.weight
    assert list(g.state_dict(prefix="net.")) == ["net." + k for k in state]


def test_torch_weights_load_into_graphc(nets, torch):
    g, t = nets
    weight = g.fc1.weight
    result = g.load_state_dict(t.state_dict())
    assert repr(result) == "<All keys matched successfully>"
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert g.fc1.weight is weight  # copied in place
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(g(graphc.tensor(x)).detach().numpy(), t(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


def test_graphc_weights_load_into_torch(nets, torch, to_torch):
    g, t = nets
    to_torch(g, t)
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(g(graphc.tensor(x)).detach().numpy(), t(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


def test_numpy_values_load():
    g = gnn.Linear(3, 2)
    g.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})
    assert g.weight.dtype == "float32"
    np.testing.assert_array_equal(g.weight.numpy(), np.ones((2, 3), np.float32))


def _broken(state):
    state = OrderedDict(state)
    del state["fc1.bias"]
    state["heads.b.weight"] = state["heads.b.weight"][:2]
    state["fc1.extra"] = state["scale"]
    state["nothere.weight"] = state["scale"]
    return state


def test_strict_errors_match_pytorch(nets):
    g, t = nets
    with pytest.raises(RuntimeError) as torch_error:
        t.load_state_dict(_broken(t.state_dict()))
    with pytest.raises(RuntimeError) as graphc_error:
        g.load_state_dict(_broken(g.state_dict()))
    message = str(graphc_error.value)
    assert message.startswith("Error(s) in loading state_dict for Net:\n\tMissing key(s) in state_dict: \"fc1.bias\"")
    assert message == str(torch_error.value).replace("torch.Size", "graphc.Size")


def test_non_strict_reports_keys_like_pytorch(nets):
    g, t = nets
    state = OrderedDict(t.state_dict())
    del state["scale"]
    state["fc1.extra"] = state["fc1.bias"]
    assert tuple(g.load_state_dict(state, strict=False)) == tuple(t.load_state_dict(state, strict=False))
    assert g.load_state_dict(state, strict=False).missing_keys == ["scale"]


def test_size_mismatch_raises_even_when_not_strict():
    g = gnn.Linear(3, 2)
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with shape "
                                           r"graphc.Size\(\[3, 3\]\) from checkpoint, the shape in current "
                                           r"model is graphc.Size\(\[2, 3\]\)."):
        g.load_state_dict({"weight": np.ones((3, 3))}, strict=False)


def _shared(nn):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Linear(4, 4)
            self.decoder = nn.Linear(4, 4)
            self.decoder.weight = self.encoder.weight
    return Tied()


def test_shared_parameter_listed_once(torch):
    g, t = _shared(gnn), _shared(torch.nn)
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in g.named_parameters()] == ["encoder.weight", "encoder.bias", "decoder.bias"]
    assert len(list(g.named_parameters(remove_duplicate=False))) == 4
    assert list(g.state_dict()) == list(t.state_dict())  # state_dict keeps both names


def test_shared_module_listed_once():
    inner = gnn.Linear(2, 2)
    outer = gnn.Sequential(inner, inner)
    assert [n for n, _ in outer.named_modules()] == ["", "0"]
    assert [n for n, _ in outer.named_modules(remove_duplicate=False)] == ["", "0", "1"]
    assert len(list(outer.parameters())) == 2


def test_registration_semantics():
    m = gnn.Module()
    m.w = gnn.Parameter(graphc.ones(2))
    assert m._parameters["w"] is m.w and "w" not in m.__dict__
    m.child = gnn.Linear(2, 2)
    assert "child" in m._modules
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        m.w = graphc.ones(2)
    m.w = None
    assert m.w is None and list(m.named_parameters()) == [("child.weight", m.child.weight), ("child.bias", m.child.bias)]
    m.register_buffer("b", graphc.zeros(1))
    m.b = graphc.ones(1)
    assert m._buffers["b"].item() == 1.0
    with pytest.raises(TypeError):
        m.b = 3
    with pytest.raises(KeyError, match="attribute 'child' already exists"):
        m.register_buffer("child", graphc.ones(1))
    with pytest.raises(KeyError, match="contain"):
        m.add_module("a.b", gnn.ReLU())
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)
    m.register_module("act", gnn.ReLU())
    del m.act, m.b, m.w
    assert "act" not in m._modules and "b" not in m._buffers and "w" not in m._parameters
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nothing'"):
        m.nothing
    assert {"child", "training", "forward"} <= set(dir(m))


def test_attribute_reassignment_moves_between_tables():
    m = gnn.Module()
    m.x = gnn.Linear(1, 1)
    m.x = gnn.Parameter(graphc.ones(1))
    assert "x" not in m._modules and "x" in m._parameters


def test_assigning_before_init_fails():
    class Bad(gnn.Module):
        def __init__(self):
            self.w = gnn.Parameter(graphc.ones(1))
    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()


def test_get_submodule_and_parameter_errors_match_pytorch(nets):
    g, t = nets
    assert g.get_submodule("blocks.0") is g.blocks[0]
    assert g.get_submodule("") is g
    assert g.get_parameter("heads.b.bias") is g.heads["b"].bias
    assert g.get_buffer("scale") is g.scale
    for call in (lambda m: m.get_submodule("blocks.7"), lambda m: m.get_submodule("fc1.weight"),
                 lambda m: m.get_parameter("fc1.nope"), lambda m: m.get_parameter("fc1")):
        with pytest.raises(AttributeError) as te:
            call(t)
        with pytest.raises(AttributeError) as ge:
            call(g)
        assert str(ge.value) == str(te.value)


def test_forward_hook_replaces_output_and_handle_removes_it():
    m = gnn.Linear(2, 2)
    seen = []
    handle = m.register_forward_hook(lambda mod, args, out: seen.append((mod, args[0].shape)) or out * 0)
    x = graphc.ones(3, 2)
    assert (m(x).detach().numpy() == 0).all()
    assert seen == [(m, (3, 2))]
    handle.remove()
    assert not (m(x).detach().numpy() == 0).all()
    assert len(seen) == 1


def test_pre_hook_replaces_args_and_wraps_single_values():
    m = gnn.Identity()
    h1 = m.register_forward_pre_hook(lambda mod, args: args[0] + 1)  # not a tuple: wrapped
    m.register_forward_pre_hook(lambda mod, args: (args[0] * 10,))
    assert m(graphc.tensor(1.0)).item() == 20.0
    h1.remove()
    assert m(graphc.tensor(1.0)).item() == 10.0


def test_hooks_run_in_order_and_prepend_goes_first():
    m, calls = gnn.Identity(), []
    m.register_forward_hook(lambda *a: calls.append("a"))
    m.register_forward_hook(lambda *a: calls.append("b"))
    with m.register_forward_hook(lambda *a: calls.append("first"), prepend=True):
        m(graphc.ones(1))
    m(graphc.ones(1))
    assert calls == ["first", "a", "b", "a", "b"]


def test_call_enters_the_recorders_module_scope():
    class Scopes:
        entered = []

        def module_scope(self, module):
            Scopes.entered.append(type(module).__name__)
            return contextlib.nullcontext()
    model = gnn.Sequential(gnn.Identity(), gnn.Sequential(gnn.Identity()))
    with dispatch.recording(Scopes()):
        model(graphc.ones(1))
    assert Scopes.entered == ["Sequential", "Identity", "Sequential", "Identity"]


def test_trace_records_module_paths():
    model = gnn.Sequential(gnn.Linear(3, 4), gnn.ReLU())
    printed = str(graphc.trace(model, graphc.ones(2, 3)).graph)
    assert "# 0 (Linear)" in printed and "# 1 (ReLU)" in printed


def test_train_eval_propagate(nets, torch):
    g, t = nets
    assert g.eval() is g
    assert all(not m.training for m in g.modules())
    g.heads.train()
    t.eval()
    t.heads.train()
    assert [m.training for m in g.modules()] == [m.training for m in t.modules()]
    assert g.heads["b"].training and not g.fc1.training
    with pytest.raises(ValueError):
        g.train("yes")


def test_zero_grad_and_requires_grad():
    m = gnn.Sequential(gnn.Linear(3, 2), gnn.ReLU(), gnn.Linear(2, 1))
    m(graphc.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all((p.grad.numpy() == 0).all() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())


def test_apply_visits_children_first(torch):
    def visited(nn, ones):
        names = []
        make_net(nn, ones).apply(lambda m: names.append(type(m).__name__))
        return names
    assert visited(gnn, graphc.ones) == visited(torch.nn, torch.ones)


def test_float_double_to_cast_in_place():
    m = gnn.Linear(3, 2)
    m.register_buffer("steps", graphc.tensor([1]))
    weight = m.weight
    assert m.double() is m and m.weight is weight
    assert m.weight.dtype == "float64" and m.bias.dtype == "float64" and m.steps.dtype == "int64"
    assert m(graphc.ones(1, 3, dtype=graphc.float64)).dtype == "float64"
    assert m.float().weight.dtype == "float32"
    assert m.to(graphc.float64).weight.dtype == "float64"
    assert m.to("cpu").cpu() is m and m.weight.dtype == "float64"
    with pytest.raises(TypeError):
        m.to(graphc.int64)


def test_deepcopy_makes_independent_module():
    m = gnn.Sequential(gnn.Linear(2, 2))
    clone = copy.deepcopy(m)
    assert repr(clone) == repr(m)
    clone[0].weight.detach().fill_(0.0)
    assert not (m[0].weight.numpy() == 0).all()
    assert isinstance(clone[0].weight, gnn.Parameter) and clone[0].weight.requires_grad


def test_missing_forward():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        gnn.Module()(1)


def test_parameter_shares_data_and_prints_like_pytorch(torch):
    data = graphc.ones(2)
    p = gnn.Parameter(data)
    assert np.shares_memory(p.numpy(), data.numpy()) and p.requires_grad
    assert repr(p) == repr(torch.nn.Parameter(torch.ones(2)))
    assert repr(gnn.Parameter(graphc.ones(2), requires_grad=False)) == repr(
        torch.nn.Parameter(torch.ones(2), requires_grad=False))
    assert gnn.Parameter().shape == (0,)
    with pytest.raises(RuntimeError):
        gnn.Parameter(graphc.tensor([1, 2]))


def _scaled(nn):
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x, scale=1.0):
            return self.fc(x) * scale
    return Scaled()


def _hook_calls(nn, lib, m):
    seen = []

    def pre(module, args, kwargs):
        seen.append(("pre", sorted(kwargs)))
        return (args[0] * 2,), {**kwargs, "scale": 3.0}

    def post(module, args, kwargs, output):
        seen.append(("post", kwargs["scale"]))
        return output + 1
    m.register_forward_pre_hook(pre, with_kwargs=True)
    handle = m.register_forward_hook(post, with_kwargs=True)
    out = m(lib.ones(1, 3), scale=0.5)
    handle.remove()
    return out, seen, m(lib.ones(1, 3), scale=0.5)


def test_hooks_with_kwargs_match_pytorch(torch, to_torch):
    g = _scaled(gnn)
    t = to_torch(g, _scaled(torch.nn))
    (g_out, g_seen, g_after), (t_out, t_seen, t_after) = _hook_calls(gnn, graphc, g), _hook_calls(torch.nn, torch, t)
    assert g_seen == t_seen == [("pre", ["scale"]), ("post", 3.0), ("pre", ["scale"])]  # the pre-hook stays
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(g_after.detach().numpy(), t_after.detach().numpy(), rtol=1e-6)
    bad = gnn.Identity()
    bad.register_forward_pre_hook(lambda m, a, k: a, with_kwargs=True)
    with pytest.raises(RuntimeError, match="must return None or a tuple of"):
        bad(graphc.ones(1))


def test_hooks_run_at_trace_time_so_the_compiled_result_changes_too():
    model = gnn.Sequential(gnn.Linear(3, 4), gnn.Tanh(), gnn.Linear(4, 2))
    model[0].register_forward_pre_hook(lambda m, args: args[0] * 2.0)
    model[2].register_forward_hook(lambda m, args, out: out + args[0].sum(dim=1, keepdim=True))
    x = graphc.randn(5, 3)
    compiled = graphc.compile(model)
    out, eager = compiled(x), model(x)
    np.testing.assert_allclose(out.detach().numpy(), eager.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    compiled_grads = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    eager.sum().backward()
    for got, want in zip(compiled_grads, [p.grad.numpy() for p in model.parameters()]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    printed = str(graphc.trace(model, x).graph)
    assert printed.count("mul") >= 1 and "sum" in printed


def _partly_frozen():
    model = gnn.Sequential(gnn.Linear(3, 4), gnn.ReLU(), gnn.Linear(4, 2))
    model[0].requires_grad_(False)
    return model


def test_compiled_backward_leaves_frozen_parameters_out():
    model = _partly_frozen()
    compiled = graphc.compile(model)
    x = graphc.randn(5, 3)
    compiled(x).sum().backward()
    assert model[0].weight.grad is None and model[0].bias.grad is None
    runner = compiled._cache.values()[-1]
    differentiated = {runner.program.graph.inputs[j].role.key for j in runner.feeds.grad_of}
    assert differentiated == {"2.weight", "2.bias"}
    compiled_grads = [p.grad.numpy().copy() for p in model[2].parameters()]
    model.zero_grad()
    model(x).sum().backward()
    for got, p in zip(compiled_grads, model[2].parameters()):
        np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-5, atol=1e-6)
    model[0].requires_grad_(True)  # unfreezing is a new specialisation that trains them again
    model.zero_grad()
    compiled(x).sum().backward()
    assert model[0].weight.grad is not None and compiled.specializations() == 2


def test_compiled_train_step_leaves_frozen_parameters_out():
    model = _partly_frozen()
    frozen = [p.numpy().copy() for p in model[0].parameters()]
    trained = [p.numpy().copy() for p in model[2].parameters()]
    step = graphc.compile_train_step(model, gnn.MSELoss(), graphc.optim.SGD(model.parameters(), lr=0.1))
    x, y = graphc.randn(8, 3), graphc.randn(8, 2)
    for _ in range(3):
        step(x, y)
    assert [t.name for t in step._cache.values()[-1].trained] == ["2.weight", "2.bias"]
    for before, p in zip(frozen, model[0].parameters()):
        np.testing.assert_array_equal(before, p.numpy())
    assert not all(np.array_equal(before, p.numpy()) for before, p in zip(trained, model[2].parameters()))


def test_non_persistent_buffer_is_a_buffer_but_not_state(torch):
    def build(nn, lib):
        m = nn.Linear(2, 2)
        m.register_buffer("running", lib.zeros(2))
        m.register_buffer("scratch", lib.ones(2), persistent=False)
        return m
    g, t = build(gnn, graphc), build(torch.nn, torch)
    assert [n for n, _ in g.named_buffers()] == [n for n, _ in t.named_buffers()] == ["running", "scratch"]
    assert list(g.state_dict()) == list(t.state_dict()) == ["weight", "bias", "running"]
    assert repr(g.load_state_dict(t.state_dict())) == "<All keys matched successfully>"
    g.register_buffer("scratch", graphc.ones(2))  # registered again as persistent
    assert "scratch" in g.state_dict()


def _printed(nn):
    class Empty(nn.Module):
        pass

    class Multi(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Empty()

        def extra_repr(self):
            return "first=1,\nsecond=2"

    class Top(nn.Module):
        def __init__(self):
            super().__init__()
            self.empty = Empty()
            self.multi = Multi()
            self.seq = nn.Sequential(Multi(), nn.ModuleList([Empty(), Empty()]), nn.ModuleDict({"e": Empty()}))
    return Top()


def test_nested_reprs_match_pytorch(torch):
    assert repr(_printed(gnn)) == repr(_printed(torch.nn))
    assert repr(_printed(gnn).empty) == "Empty()"


def test_named_members_prefix_recurse_and_duplicates_match_pytorch(torch):
    def build(nn):
        shared = nn.Linear(2, 2)
        m = nn.Sequential(shared, nn.ReLU(), shared, nn.Sequential(shared))
        m.register_buffer("b", None)
        return m
    g, t = build(gnn), build(torch.nn)
    for kwargs in ({}, {"prefix": "net"}, {"recurse": False}, {"remove_duplicate": False},
                   {"prefix": "p", "remove_duplicate": False}):
        assert [n for n, _ in g.named_parameters(**kwargs)] == [n for n, _ in t.named_parameters(**kwargs)]
        assert [n for n, _ in g.named_buffers(**kwargs)] == [n for n, _ in t.named_buffers(**kwargs)]
    for kwargs in ({}, {"prefix": "net"}, {"remove_duplicate": False}):
        assert [n for n, _ in g.named_modules(**kwargs)] == [n for n, _ in t.named_modules(**kwargs)]
    assert [n for n, _ in g.named_children()] == [n for n, _ in t.named_children()]
    assert len(list(g.children())) == len(list(t.children())) and len(list(g.modules())) == len(list(t.modules()))


def test_load_state_dict_result_is_torchs_named_tuple(torch):
    g, t = gnn.Linear(2, 2), torch.nn.Linear(2, 2)
    state = {"weight": np.ones((2, 2), np.float32), "extra": np.ones(1, np.float32)}
    got = g.load_state_dict(state, strict=False)
    want = t.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    assert type(got).__name__ == type(want).__name__ == "_IncompatibleKeys"
    assert got._fields == want._fields and tuple(got) == tuple(want) and repr(got) == repr(want)
