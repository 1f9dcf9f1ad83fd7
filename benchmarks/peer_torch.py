"""PyTorch eager on 2 threads and, with --torch-compile, torch.compile: the workload's model code
built with torch.nn, graphc's initial weights loaded by state_dict (the keys match)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .case import Case, Peer, missing
from .timing import Budget, Measurement, measure

THREADS = 2


def torch_model(case: Case, params: dict[str, np.ndarray]) -> Any:
    import torch
    torch.set_num_threads(THREADS)
    model = case.model(torch.nn, torch.tensor)
    model.load_state_dict({name: torch.tensor(value) for name, value in params.items()})
    return model


def _measure(case: Case, params: dict, budget: Budget, wrap: Callable[[Any], Any]) -> Measurement:
    import torch
    model = torch_model(case, params)
    inputs = [torch.from_numpy(x) for x in case.inputs]
    if case.is_train_step:
        forward = wrap(model.train())
        loss_fn = getattr(torch.nn, case.loss[0])(**case.loss[1])
        optimizer = getattr(torch.optim, case.optimizer[0])(model.parameters(), **case.optimizer[1])

        def step() -> Any:
            optimizer.zero_grad()
            loss = loss_fn(forward(*inputs[:-1]), inputs[-1])
            loss.backward()
            optimizer.step()
            return loss
        return measure(step, budget, lambda loss: loss.detach().numpy())
    forward = wrap(model.eval())
    with torch.no_grad():
        return measure(lambda: forward(*inputs), budget, lambda out: out.numpy())


def measure_eager(case: Case, params: dict, budget: Budget) -> Measurement:
    return _measure(case, params, budget, lambda model: model)


def measure_compiled(case: Case, params: dict, budget: Budget) -> Measurement:
    import torch
    return _measure(case, params, budget, torch.compile)


EAGER = Peer("torch", "PyTorch eager", measure_eager, lambda: missing("torch"))
COMPILED = Peer("torch_compile", "torch.compile", measure_compiled, lambda: missing("torch"))
