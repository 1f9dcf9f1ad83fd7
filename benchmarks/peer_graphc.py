"""graphc: `graphc.compile(model.eval())` called under `graphc.no_grad()` for inference,
`graphc.compile_train_step(model, loss, optimizer)` for train steps."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import graphc
import graphc.nn as gnn

from .case import Case
from .timing import Timed, timed


def build_model(case: Case) -> gnn.Module:
    """The case's model with graphc's initial weights (seeded): every peer loads these."""
    graphc.manual_seed(0)
    return case.model(gnn, graphc.tensor)


@contextlib.contextmanager
def compiled_call(case: Case, model: gnn.Module) -> Iterator[Callable[[], Any]]:
    """The call to time; its first call compiles."""
    inputs = [graphc.tensor(x) for x in case.inputs]
    if case.is_train_step:
        (loss, loss_args), (optimizer, optimizer_args) = case.loss, case.optimizer
        step = graphc.compile_train_step(model.train(), getattr(gnn, loss)(**loss_args),
                                         getattr(graphc.optim, optimizer)(model.parameters(), **optimizer_args))
        yield lambda: step(*inputs)
        return
    forward = graphc.compile(model.eval())
    with graphc.no_grad():
        yield lambda: forward(*inputs)


@contextlib.contextmanager
def prepare_graphc(case: Case, model: gnn.Module) -> Iterator[Timed]:
    with compiled_call(case, model) as call:
        yield timed(call, lambda out: out.numpy())
