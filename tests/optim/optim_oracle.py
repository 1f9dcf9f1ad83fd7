"""The checks every graphc optimizer passes against torch.optim, shared by tests/optim/test_<name>.py.

One small classifier in graphc and in torch with the same weights, the same batches, and the same
optimizer arguments: N eager steps, N compiled steps (`compile_train_step`), a compiled step that
fails on a bad label, and state_dict round trips through numpy in both directions. Float32
tolerances: losses rtol 1e-4; parameters rtol 1e-4, atol 1e-4; state tensors rtol 1e-3, atol 1e-5
(a buffer of g / sqrt(mean g^2), RMSprop's momentum, carries the rounding of a small denominator).
"""
import copy

import numpy as np
import pytest

import graphc
import graphc.nn as gnn

torch = pytest.importorskip("torch")

STEPS = 10
TORCH_KERNEL_FLAGS = ("foreach", "capturable", "differentiable", "fused")  # graphc has one implementation
IN, HIDDEN, CLASSES, BATCH = 6, 12, 3, 8


def classifier_pair(seed: int = 0):
    """The same MLP in graphc and torch, torch's weights copied from graphc's."""
    graphc.manual_seed(seed)
    g_model = gnn.Sequential(gnn.Linear(IN, HIDDEN), gnn.ReLU(), gnn.Linear(HIDDEN, CLASSES))
    t_model = torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, CLASSES))
    t_model.load_state_dict({k: torch.tensor(v.numpy()) for k, v in g_model.state_dict().items()})
    return g_model, t_model


def class_batches(seed: int = 1, steps: int = STEPS):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((BATCH, IN)).astype(np.float32), rng.integers(0, CLASSES, BATCH).astype(np.int64))
            for _ in range(steps)]


def param_groups(model, extra):
    """Parameters as given to the optimizer: one list, or two groups (first and last layer)."""
    if extra is None:
        return list(model.parameters())
    first = [p for n, p in model.named_parameters() if n.startswith("0.")]
    last = [p for n, p in model.named_parameters() if n.startswith("2.")]
    return [{"params": first}, {"params": last, **extra}]


def make_optimizers(g_model, t_model, name, kwargs, groups=None):
    g_opt = getattr(graphc.optim, name)(param_groups(g_model, groups), **kwargs)
    t_opt = getattr(torch.optim, name)(param_groups(t_model, groups), **kwargs)
    return g_opt, t_opt


def torch_step(t_model, t_opt, x, y, loss_fn=None):
    t_opt.zero_grad()
    loss = (loss_fn or torch.nn.CrossEntropyLoss())(t_model(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    t_opt.step()
    return loss.item()


def eager_step(g_model, g_opt, x, y, loss_fn=None):
    g_opt.zero_grad()
    loss = (loss_fn or gnn.CrossEntropyLoss())(g_model(graphc.tensor(x)), graphc.tensor(y))
    loss.backward()
    g_opt.step()
    return loss.item()


def assert_same_params(g_model, t_model):
    t_state = t_model.state_dict()
    for name, value in g_model.state_dict().items():
        np.testing.assert_allclose(value.numpy(), t_state[name].numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


def assert_same_optimizer_state(g_model, g_opt, t_model, t_opt):
    """Per-parameter state tensors and step counts agree with torch's, key for key."""
    t_params = dict(t_model.named_parameters())
    for name, p in g_model.named_parameters():
        t_state = t_opt.state.get(t_params[name], {})
        g_state = {k: v for k, v in g_opt.state.get(p, {}).items() if k != "fresh"}
        if not g_opt.saves_step:
            g_state.pop("step", None)
        assert set(g_state) == set(t_state), name
        for key, t_value in t_state.items():
            if key == "step":
                assert g_state["step"] == int(t_value), name
            else:
                np.testing.assert_allclose(g_state[key].numpy(), t_value.numpy(), rtol=1e-3, atol=1e-5,
                                           err_msg=f"{name}:{key}")


# ---- the checks ----------------------------------------------------------------------------------

def check_eager_matches_torch(name, kwargs, groups=None):
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs, groups)
    g_losses = [eager_step(g_model, g_opt, x, y) for x, y in class_batches()]
    t_losses = [torch_step(t_model, t_opt, x, y) for x, y in class_batches()]
    np.testing.assert_allclose(g_losses, t_losses, rtol=1e-4)
    assert_same_params(g_model, t_model)
    assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)


def check_compiled_matches_torch_and_eager(name, kwargs, groups=None):
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs, groups)
    e_model, _ = classifier_pair()  # the eager graphc optimizer: the same rule, run on arrays
    e_opt = getattr(graphc.optim, name)(param_groups(e_model, groups), **kwargs)
    step = graphc.compile_train_step(g_model, gnn.CrossEntropyLoss(), g_opt)
    g_losses, e_losses, t_losses = [], [], []
    for x, y in class_batches():
        loss = step(graphc.tensor(x), graphc.tensor(y))
        assert isinstance(loss, graphc.Tensor) and loss.shape == ()
        g_losses.append(loss.item())
        e_losses.append(eager_step(e_model, e_opt, x, y))
        t_losses.append(torch_step(t_model, t_opt, x, y))
    np.testing.assert_allclose(g_losses, e_losses, rtol=1e-4)
    np.testing.assert_allclose(g_losses, t_losses, rtol=1e-4)
    assert_same_params(g_model, e_model)
    assert_same_params(g_model, t_model)
    assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)
    assert step._cache.builds == 1


def _snapshot(model, opt):
    params = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    state = {id(p): {k: (v.numpy().copy() if hasattr(v, "numpy") else v) for k, v in s.items()}
             for p, s in opt.state.items()}
    return params, state


def _assert_same_snapshot(a, b):
    assert a[0].keys() == b[0].keys()
    for n in a[0]:
        np.testing.assert_array_equal(a[0][n], b[0][n], err_msg=n)
    assert a[1].keys() == b[1].keys()
    for p in a[1]:
        assert a[1][p].keys() == b[1][p].keys()
        for k in a[1][p]:
            np.testing.assert_array_equal(np.asarray(a[1][p][k]), np.asarray(b[1][p][k]), err_msg=k)


def check_failed_compiled_step_changes_nothing(name, kwargs, groups=None):
    """A class index out of range makes cross_entropy's check fail inside native code: first
    and later steps leave parameters and optimizer state as they were, and training goes on
    as if the step had never been tried."""
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs, groups)
    step = graphc.compile_train_step(g_model, gnn.CrossEntropyLoss(), g_opt)
    batches = class_batches(steps=4)
    bad_x, bad_y = batches[0][0], np.full(BATCH, CLASSES + 5, np.int64)
    for i, (x, y) in enumerate(batches):
        if i in (0, 2):  # before the first step (no state yet) and between steps
            before = _snapshot(g_model, g_opt)
            with pytest.raises(IndexError, match="out of bounds"):
                step(graphc.tensor(bad_x), graphc.tensor(bad_y))
            _assert_same_snapshot(before, _snapshot(g_model, g_opt))
        step(graphc.tensor(x), graphc.tensor(y))
        torch_step(t_model, t_opt, x, y)
    assert_same_params(g_model, t_model)
    assert_same_optimizer_state(g_model, g_opt, t_model, t_opt)


def to_numpy_state_dict(t_state_dict):
    """A torch optimizer's state_dict with its tensors as numpy arrays."""
    return {"state": {i: {k: v.numpy().copy() for k, v in s.items()} for i, s in t_state_dict["state"].items()},
            "param_groups": copy.deepcopy(t_state_dict["param_groups"])}


def to_torch_state_dict(g_state_dict):
    """A graphc optimizer's state_dict with its tensors (and step counts) as torch tensors."""
    def value(k, v):
        return torch.tensor(float(v)) if k == "step" else torch.tensor(np.array(v.numpy()))
    return {"state": {i: {k: value(k, v) for k, v in s.items()} for i, s in g_state_dict["state"].items()},
            "param_groups": copy.deepcopy(g_state_dict["param_groups"])}


def check_state_dict_round_trips_with_torch(name, kwargs, groups=None, compiled=False):
    """Five steps, then the state moves across (torch -> graphc and graphc -> torch, through
    numpy) into fresh optimizers on copies of the trained weights; five more steps on each side
    equal an uninterrupted torch run."""
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs, groups)
    batches = class_batches()
    for x, y in batches[:5]:
        eager_step(g_model, g_opt, x, y)
        torch_step(t_model, t_opt, x, y)
    g_saved, t_saved = copy.deepcopy(g_opt.state_dict()), copy.deepcopy(t_opt.state_dict())
    assert g_saved["state"].keys() == t_saved["state"].keys()
    for i in t_saved["state"]:
        assert g_saved["state"][i].keys() == t_saved["state"][i].keys(), i
    for g_group, t_group in zip(g_saved["param_groups"], t_saved["param_groups"]):
        assert {k: v for k, v in t_group.items() if k in g_group} == g_group

    # torch's state into graphc: a fresh model with the trained weights and a fresh optimizer
    resumed, resumed_t = classifier_pair(seed=5)
    resumed.load_state_dict(g_model.state_dict())
    resumed_t.load_state_dict(t_model.state_dict())
    r_opt = getattr(graphc.optim, name)(param_groups(resumed, groups), lr=123.0)  # loading restores lr too
    r_opt.load_state_dict(to_numpy_state_dict(t_saved))
    # graphc's state into torch
    rt_opt = getattr(torch.optim, name)(param_groups(resumed_t, groups), lr=123.0)
    rt_opt.load_state_dict(to_torch_state_dict(g_saved))

    step = graphc.compile_train_step(resumed, gnn.CrossEntropyLoss(), r_opt) if compiled else None
    for x, y in batches[5:]:
        torch_step(t_model, t_opt, x, y)  # the uninterrupted run
        torch_step(resumed_t, rt_opt, x, y)
        if step is not None:
            step(graphc.tensor(x), graphc.tensor(y))
        else:
            eager_step(resumed, r_opt, x, y)
    assert_same_params(resumed, t_model)
    for key, value in resumed_t.state_dict().items():
        np.testing.assert_allclose(value.numpy(), t_model.state_dict()[key].numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=key)
    assert_same_optimizer_state(resumed, r_opt, t_model, t_opt)
    assert_same_optimizer_state(resumed, r_opt, resumed_t, rt_opt)


def check_invalid_arguments_raise_like_torch(name, kwargs):
    g_model, t_model = classifier_pair()
    with pytest.raises(ValueError) as expected:
        getattr(torch.optim, name)(t_model.parameters(), **kwargs)
    with pytest.raises(ValueError) as got:
        getattr(graphc.optim, name)(g_model.parameters(), **kwargs)
    assert str(got.value) == str(expected.value)


def check_defaults_match_torch(name):
    """Constructor defaults as torch's: the param group keys graphc has hold torch's values."""
    g_model, t_model = classifier_pair()
    g_group = getattr(graphc.optim, name)(g_model.parameters()).param_groups[0]
    t_group = getattr(torch.optim, name)(t_model.parameters()).param_groups[0]
    g_values = {k: v for k, v in g_group.items() if k != "params"}
    assert {k: (type(v), v) for k, v in g_values.items()} == {k: (type(t_group[k]), t_group[k]) for k in g_values}
    assert set(g_values) == set(t_group) - {"params", *TORCH_KERNEL_FLAGS}


def check_repr_matches_torch(name, kwargs, groups=None):
    """torch's repr without the lines of its kernel flags, which graphc does not have."""
    g_model, t_model = classifier_pair()
    g_opt, t_opt = make_optimizers(g_model, t_model, name, kwargs, groups)
    t_lines = [line for line in repr(t_opt).splitlines() if line.split(":")[0].strip() not in TORCH_KERNEL_FLAGS]
    assert repr(g_opt) == "\n".join(t_lines)
