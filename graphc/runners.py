"""Running compiled graphs from the user's side: inference, a compiled forward whose outputs
backpropagate through a compiled backward graph, and whole train steps.

The graphs are built by graphc/compiled.py and graphc/train_step.py and loaded by the runtime
(runtime.executor.CompiledGraph); these runners gather tensors by the roles the compiler gave
them (positions, never names), call native code, and hand results back as graphc tensors,
with autograd attached. State is committed only after a call succeeded.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from runtime.executor import CompiledGraph

from . import autograd
from .tensor import Tensor, _Writes, rebinds, writes
from .trace import Program, fill_keys, unflatten


def _vouch_for_parameters(program: Program, compiled: CompiledGraph, positions: dict[int, int]) -> None:
    """Tell `compiled` which of its inputs are the program's parameters and buffers (compiled
    input i is program input positions[i]): while tensor.rebinds() is unchanged it skips them."""
    bound = program._binding()
    compiled.stable_inputs = frozenset(i for i, j in positions.items() if isinstance(bound[j], Tensor))


@dataclass
class InferenceRunner:
    """A forward without gradients. With a `prepare` graph (graphc/prepare.py), what depends only
    on parameters and buffers is computed by it, once, and again only after one of them was
    written or rebound; `forward` then reads those values as its last inputs."""

    program: Program
    forward: CompiledGraph
    prepare: CompiledGraph | None = None
    prepare_inputs: tuple[int, ...] = ()  # per prepare input, its position among the program's inputs

    def __post_init__(self) -> None:
        own = len(self.program.graph.inputs)
        _vouch_for_parameters(self.program, self.forward, {j: j for j in range(own)})
        if self.prepare is not None:
            _vouch_for_parameters(self.program, self.prepare, dict(enumerate(self.prepare_inputs)))
            self.forward.stable_inputs |= frozenset(range(own, len(self.forward.inputs)))
        self._prepared: list[np.ndarray] = []
        self._prepared_at: tuple[int, int] | None = None
        self._updates_inputs = self.forward.updates_inputs

    def _prepared_values(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        version = (rebinds(), writes())
        if version != self._prepared_at:
            self._prepared = self.prepare.run([arrays[j] for j in self.prepare_inputs], rebinds())
            self._prepared_at = version
        return self._prepared

    def __call__(self, inputs: tuple) -> Any:
        arrays = self.program.call_arrays(self.program.user_tensors(*inputs))
        if self.prepare is None:
            outputs = self.forward.run(arrays, rebinds())
        else:
            outputs = self.forward.run(arrays + self._prepared_values(arrays), (rebinds(), self._prepared_at))
        if self._updates_inputs:
            _Writes.bump()
        return unflatten(self.program.output_spec, [Tensor._wrap(o) for o in outputs])


@dataclass(frozen=True)
class BackwardFeeds:
    """How the backward graph's inputs are fed: per input, ("input", j) is forward input j,
    ("output", j) forward output j (a saved value), ("seed", k) the gradient of model output k.
    `grad_of[j]` is the forward input whose gradient backward output j is."""

    sources: tuple[tuple[str, int], ...]
    grad_of: tuple[int, ...]


@dataclass
class DifferentiableRunner:
    """Compiled forward that also returns what the compiled backward needs; each float output
    carries a GradFn that runs the backward graph, so `loss.backward()` reaches the parameters."""

    program: Program
    forward: CompiledGraph   # outputs: the model's outputs, then the saved values
    backward: CompiledGraph
    feeds: BackwardFeeds
    n_outputs: int

    def __post_init__(self) -> None:
        _vouch_for_parameters(self.program, self.forward, {j: j for j in range(len(self.forward.inputs))})
        _vouch_for_parameters(self.program, self.backward,
                              {i: j for i, (kind, j) in enumerate(self.feeds.sources) if kind == "input"})
        # buffers the forward writes in place (running statistics) that the backward reads: it
        # must read them as they were before the call, so those are copied first
        self._stale = sorted({j for kind, j in self.feeds.sources if kind == "input"} & self.forward.artifact.updated)

    def __call__(self, inputs: tuple) -> Any:
        user = self.program.user_tensors(*inputs)
        arrays = self.program.call_arrays(user)
        kept = [(j, arrays[j].copy()) for j in self._stale]
        results = self.forward.run(arrays, rebinds())
        if self.forward.updates_inputs:
            _Writes.bump()
        for j, array in kept:
            arrays[j] = array
        bound = self.program._binding()
        sources = [user[b] if b.__class__ is int else b for b in map(bound.__getitem__, self.feeds.grad_of)]
        outputs = [Tensor._wrap(o) for o in results[:self.n_outputs]]
        for k, t in enumerate(outputs):
            if t.dtype.is_floating_point:
                t.requires_grad = True
                t._grad_fn = autograd.GradFn("compiled", sources, self._backward_fn(k, arrays, results))
        return unflatten(self.program.output_spec, outputs)

    def _backward_fn(self, k: int, arrays: list[np.ndarray],
                     results: list[np.ndarray]) -> Callable[[Tensor], list]:
        """Backward for output k; gradients are linear in the seeds, so one call per output adds up."""
        def run(grad: Tensor) -> list[Tensor]:
            feed = []
            for (kind, j), spec in zip(self.feeds.sources, self.backward.inputs):
                if kind == "input":
                    feed.append(arrays[j])
                elif kind == "output":
                    feed.append(results[j])
                elif j == k:
                    feed.append(np.asarray(grad._data, spec.dtype))
                else:
                    feed.append(np.zeros(spec.shape, spec.dtype))
            return [Tensor._wrap(g) for g in self.backward.run(feed, rebinds())]
        return run


@dataclass
class Trained:
    """One trainable parameter of a compiled step: its group and the names of its
    hyperparameter inputs."""

    name: str
    param: Tensor
    group: dict
    hyper: tuple[str, ...]


_PACK_CODES = {"float16": "e", "float32": "f", "float64": "d"}


class _Cohort:
    """Trained parameters whose hyperparameters are equal at every step: the same group, step
    count and dtype, and the same state tensors started at their first step. They share one
    0-d array per hyperparameter, views of one block refilled in place (so their pointers stay
    cached) by one struct.pack_into a step: six numpy scalar writes cost three times as much."""

    __slots__ = ("group", "step", "fresh", "hyper", "members", "_names", "_block", "_pack")

    def __init__(self, group: dict, step: int, fresh: frozenset, names: Sequence[str], dtype: np.dtype):
        self.group, self.step, self.fresh = group, step, fresh
        self._names = tuple(names)
        self._block = np.zeros(len(self._names), dtype)
        self.hyper = {name: self._block[i, ...] for i, name in enumerate(self._names)}
        code = _PACK_CODES.get(dtype.name)
        self._pack = struct.Struct(f"={len(self._names)}{code}").pack_into if code and dtype.isnative else None
        self.members: list[int] = []

    def fill(self, hyper: dict[str, Any]) -> None:
        """Write this step's hyperparameters (plain floats as a rule) into the block."""
        if self._pack is not None:
            try:
                return self._pack(self._block, 0, *map(hyper.__getitem__, self._names))
            except (TypeError, OverflowError, struct.error):
                pass  # a tensor or numpy value, or a float past the dtype's range: numpy converts it
        for i, name in enumerate(self._names):
            self._block[i] = hyper[name]


_NO_STATE = {"step": 0}
_NOT_FRESH: frozenset = frozenset()


@dataclass
class TrainStepRunner:
    """One compiled train step. `roles` has one (kind, key) per graph input: user k, a param or
    buffer by qualified name, state and hyper by (parameter name, name), rng k (a fresh key).

    Between steps the runner holds the optimizer state it trains (the state tensors, updated in
    place by native code, and per cohort a count of steps), so a step's Python cost does not
    grow with the number of parameters: the step counts are written into `optimizer.state`
    only when someone uses it (Optimizer.sync_compiled), and the state is gathered again from
    it before the next step."""

    program: Program
    compiled: CompiledGraph  # inputs: user, params, state and hyper; output: the loss
    trained: list[Trained]
    roles: tuple[tuple[str, Any], ...]
    _trained_by_name: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._trained_by_name = {t.name: i for i, t in enumerate(self.trained)}
        self.compiled.stable_inputs = frozenset(
            j for j, (kind, _) in enumerate(self.roles) if kind in ("param", "buffer", "state", "hyper"))
        slots: dict[str, list] = {"user": [], "state": [], "hyper": []}
        self._key_slots = [(j, key) for j, (kind, key) in enumerate(self.roles) if kind == "rng"]
        for j, (kind, key) in enumerate(self.roles):
            if kind == "user":
                slots["user"].append((j, key))
            elif kind in ("state", "hyper"):
                i = self._trained_by_name[key[0]]
                slots[kind].append((j, i, key[1]))
        self._user_slots, self._state_slots, self._hyper_slots = slots["user"], slots["state"], slots["hyper"]
        self._fixed_at: tuple[int, int] | None = None
        self._gathered = 0  # bumped per gather: with rebinds(), the token vouching for fixed inputs
        self._cohorts: list[_Cohort] = []
        self._states: list[dict[str, Any]] = []  # per trained parameter, its state during the steps
        self._taken = 0  # steps run since the state was gathered

    def _gather(self, optimizer: Any) -> None:
        """Take the state of every trained parameter from `optimizer.state` as `prepare_step`
        would (state tensors not there yet start from `initial_state`), and sort the parameters
        into cohorts. Nothing is stored in the optimizer: a failed first step starts no state."""
        state, cohorts, self._states = optimizer.state, {}, []
        for i, t in enumerate(self.trained):
            old = state.get(t.param, _NO_STATE)
            fresh = frozenset(n for n in optimizer.group_state_names(t.group) if n not in old)
            self._states.append({**old, **{n: Tensor._wrap(optimizer.initial_state(n, t.param, t.group))
                                           for n in fresh}})
            key = (id(t.group), old["step"], fresh, t.param.dtype)
            if key not in cohorts:
                dtype = np.dtype(t.param.dtype)
                cohorts[key] = _Cohort(t.group, old["step"], fresh, t.hyper, dtype)
            cohorts[key].members.append(i)
        self._cohorts = list(cohorts.values())
        self._of = {i: c for c in self._cohorts for i in c.members}
        self._gathered, self._taken = self._gathered + 1, 0

    def write_state(self, state: dict) -> None:
        """Put the state of the steps run since the last gather into `state`, as `commit_step`
        after each of them would have: the step count, the state tensors, which started fresh."""
        if self._taken:
            for cohort in self._cohorts:
                entry = {"step": cohort.step + self._taken, "fresh": cohort.fresh if self._taken == 1 else _NOT_FRESH}
                for i in cohort.members:
                    state[self.trained[i].param] = {**self._states[i], **entry}
        self._cohorts, self._states, self._taken = [], [], 0

    def _fixed(self) -> list:
        """The arrays that stay put between steps (parameters, buffers, optimizer state and the
        hyperparameter buffers), gathered again only after a rebind or a new gather; user slots
        are filled per call."""
        at = (rebinds(), self._gathered)
        if self._fixed_at != at:
            self.program._binding()  # rebinds the program's parameters first (a replaced Parameter object)
            params = self.program.params
            self._fixed_arrays = [params[key]._data if kind in ("param", "buffer") else None
                                  for kind, key in self.roles]
            for j, i, entry in self._state_slots:
                self._fixed_arrays[j] = self._states[i][entry]._data
            for j, i, entry in self._hyper_slots:
                self._fixed_arrays[j] = self._of[i].hyper[entry]
            self._fixed_at = at
        return self._fixed_arrays

    def __call__(self, optimizer: Any, inputs: tuple) -> Tensor:
        """Everything is checked and prepared before native code runs; parameters and optimizer
        state change only when the whole step succeeded (the caller holds optimizer.lock).
        Parameters, state tensors and hyperparameter buffers (refilled in place) are vouched for
        while no array was rebound and the state was not gathered again; user inputs are
        checked every call."""
        user = self.program.user_tensors(*inputs)
        if optimizer._live is not self:
            optimizer.sync_compiled()  # another step's counts first
            self._gather(optimizer)
        arrays = self._fixed()  # its user slots are refilled below, every call
        for j, k in self._user_slots:
            arrays[j] = user[k]._data
        for cohort in self._cohorts:
            fresh = cohort.fresh if not self._taken else _NOT_FRESH
            cohort.fill(optimizer.step_hyper(cohort.group, {"step": cohort.step + self._taken + 1, "fresh": fresh}))
        if self.program.random_keys:
            fill_keys(arrays, self._key_slots, self.program.random_keys)
        (loss,) = self.compiled.run(arrays, self._fixed_at)
        _Writes.bump()  # parameters and state were updated in place
        self._taken += 1
        optimizer._live = self
        return Tensor._wrap(loss)
