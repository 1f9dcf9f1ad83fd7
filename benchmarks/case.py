"""What a benchmark case and a peer are, and where the cases are."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

# nn is graphc.nn or torch.nn, tensor is graphc.tensor or torch.tensor: the same code builds both.
ModelFactory = Callable[[Any, Callable], Any]


@dataclass(frozen=True)
class Case:
    """One timed computation. Inference cases call the model on `inputs`; train steps (those
    with a `loss`) call a compiled step on `inputs` (the last one the target).

    `reference(xp, state, *inputs)` is the hand-written version in numpy (or jax.numpy as `xp`):
    it returns the output, or for a train step `(loss, new_state)`, where `state` starts as
    `reference_state(params)` and params are the graphc model's state_dict as arrays."""

    key: str  # "W1_inference_b1": the JSON key; the part before "_" is its --only group
    title: str
    model: ModelFactory
    inputs: tuple[np.ndarray, ...]
    reference: Callable
    loss: tuple[str, dict] | None = None  # a loss class in graphc.nn and torch.nn, with its arguments
    optimizer: tuple[str, dict] | None = None  # an optimizer class in graphc.optim and torch.optim
    reference_state: Callable[[dict], dict] = dict
    tolerance: float = 1e-4  # the largest relative difference from graphc's result a peer may show

    @property
    def workload(self) -> str:
        return self.key.split("_")[0]

    @property
    def is_train_step(self) -> bool:
        return self.loss is not None


@dataclass(frozen=True)
class Peer:
    """What graphc is compared with. `prepare(case, params)` is a context manager that loads
    `params` (graphc's initial weights) and gives a `timing.Timed`, or None when the peer does not
    run this kind of case; `unavailable()` says why it cannot run on this machine, or None."""

    key: str  # the JSON key
    title: str
    prepare: Callable[..., Any]
    unavailable: Callable[[], str | None]


def missing(*modules: str) -> str | None:
    """`unavailable` for peers that need these modules."""
    absent = [name for name in modules if importlib.util.find_spec(name) is None]
    return f"{', '.join(absent)} not installed" if absent else None


def stepping(train_step: Callable, state: Any, inputs: tuple) -> Callable[[], Any]:
    """A call running one step of a reference `train_step(state, *inputs) -> (loss, state)`, carrying
    the state from call to call; it returns the loss."""
    current = [state]

    def step() -> Any:
        loss, current[0] = train_step(current[0], *inputs)
        return loss
    return step


def all_cases() -> list[Case]:
    from . import w1_mlp, w2_lenet, w3_tutorial, w4_convbn, w5_sgemm
    return [*w1_mlp.cases(), *w2_lenet.cases(), *w3_tutorial.cases(), *w4_convbn.cases(), *w5_sgemm.cases()]


def find_case(key: str) -> Case:
    for case in all_cases():
        if case.key == key:
            return case
    raise KeyError(f"no benchmark case {key!r}")


def relative_error(value: Any, expected: Any) -> float:
    """Largest absolute difference over the largest magnitude expected."""
    value, expected = np.asarray(value, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(value - expected)) / max(float(np.max(np.abs(expected))), 1e-30))
