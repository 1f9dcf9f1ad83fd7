"""PyTorch eager on 2 threads and, with --torch-compile, torch.compile: the workload's model code
built with torch.nn, graphc's initial weights loaded by state_dict (the keys match)."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np

from .case import Case, Peer, missing
from .timing import Timed, timed

THREADS = 2


def torch_model(case: Case, params: dict[str, np.ndarray]) -> Any:
    import torch
    torch.set_num_threads(THREADS)
    model = case.model(torch.nn, torch.tensor)
    model.load_state_dict({name: torch.tensor(value) for name, value in params.items()})
    return model


@contextlib.contextmanager
def _prepare(case: Case, params: dict, wrap: Callable[[Any], Any]) -> Iterator[Timed]:
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
        yield timed(step, lambda loss: loss.detach().numpy())
        return
    forward = wrap(model.eval())
    with torch.no_grad():
        yield timed(lambda: forward(*inputs), lambda out: out.numpy())


def prepare_eager(case: Case, params: dict) -> contextlib.AbstractContextManager[Timed]:
    return _prepare(case, params, lambda model: model)


def prepare_compiled(case: Case, params: dict) -> contextlib.AbstractContextManager[Timed]:
    import torch
    return _prepare(case, params, torch.compile)


EAGER = Peer("torch", "PyTorch eager", prepare_eager, lambda: missing("torch"))
COMPILED = Peer("torch_compile", "torch.compile", prepare_compiled, lambda: missing("torch"))
