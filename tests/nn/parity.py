"""Run a graphc module and its torch twin (same weights) eagerly and compiled; compare outputs,
input gradients and parameter gradients. float32 tolerances: rtol 1e-4, atol 1e-5."""
from __future__ import annotations

import numpy as np

import graphc
import graphc.nn as gnn

RTOL, ATOL = 1e-4, 1e-5


class Call(gnn.Module):
    """A module calling `fn(x, **kwargs)`: functional forms go through graphc.compile too."""

    def __init__(self, fn, **kwargs):
        super().__init__()
        self.fn, self.kwargs = fn, kwargs

    def forward(self, x):
        return self.fn(x, **self.kwargs)


def _torch_run(torch, model, x, weights):
    xt = torch.tensor(x, requires_grad=True)
    out = model(xt)
    (out * torch.tensor(weights)).sum().backward()
    grads = {n: p.grad.numpy() for n, p in model.named_parameters()}
    return out.detach().numpy(), xt.grad.numpy(), grads


def _graphc_run(model, run, x, weights):
    model.zero_grad()
    xg = graphc.tensor(x, requires_grad=True)
    out = run(xg)
    (out * graphc.tensor(weights)).sum().backward()
    grads = {n: p.grad.numpy() for n, p in model.named_parameters()}
    return out.detach().numpy(), xg.grad.numpy(), grads


def assert_matches_torch(torch, model, torch_model, x: np.ndarray, compiled: bool = True,
                         rtol: float = RTOL, atol: float = ATOL) -> None:
    """Eager forward and backward (input and parameter gradients) against torch, then the same
    through graphc.compile (its forward, and .backward() of a loss of its output)."""
    if torch_model is not None and list(model.state_dict()):
        torch_model.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()})
    expected_out = torch_model(torch.tensor(x)).detach().numpy()
    weights = np.random.default_rng(7).standard_normal(expected_out.shape).astype(x.dtype)
    expected = _torch_run(torch, torch_model, x, weights)
    runs = [("eager", model)] + ([("compiled", graphc.compile(model))] if compiled else [])
    for how, run in runs:
        out, x_grad, grads = _graphc_run(model, run, x, weights)
        np.testing.assert_allclose(out, expected[0], rtol=rtol, atol=atol, err_msg=f"{how} output")
        np.testing.assert_allclose(x_grad, expected[1], rtol=rtol, atol=atol, err_msg=f"{how} input gradient")
        assert grads.keys() == expected[2].keys()
        for name in grads:
            np.testing.assert_allclose(grads[name], expected[2][name], rtol=rtol, atol=atol,
                                       err_msg=f"{how} gradient of {name}")


def torch_call(torch, fn, **kwargs):
    """Call's torch twin."""
    class TorchCall(torch.nn.Module):
        def forward(self, x):
            return fn(x, **kwargs)
    return TorchCall()


def _torch_steps(torch, model, x, y, steps, **sgd):
    opt = torch.optim.SGD(model.parameters(), **sgd)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def assert_train_steps_match_torch(torch, model, twin, x, y, steps=3, **sgd):
    """Losses and final weights of `steps` compiled cross-entropy SGD train steps against torch's."""
    twin.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()})
    step = graphc.compile_train_step(model, gnn.CrossEntropyLoss(), graphc.optim.SGD(model.parameters(), **sgd))
    ours = [float(step(graphc.tensor(x), graphc.tensor(y))) for _ in range(steps)]
    theirs = _torch_steps(torch, twin, x, y, steps, **sgd)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(value.numpy(), twin.state_dict()[name].numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
