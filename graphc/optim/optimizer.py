"""Optimizer base: PyTorch's param groups and state, with the update written once as op functions.

`update` sees tensors and per-step hyperparameters; eagerly they are arrays and floats, inside a
compiled train step they are graph values, so the same rule runs in both.
"""
from __future__ import annotations

import threading
from typing import Any, Iterable, Mapping

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


# torch's choices between its kernels (foreach, fused, ...): graphc has one implementation, so a
# torch state_dict's flags are dropped on loading, as torch fills them in when it loads graphc's
_TORCH_KERNEL_FLAGS = ("foreach", "capturable", "differentiable", "fused")
_ARGUMENT_NAMES = {"lr": "learning rate", "eps": "epsilon value"}


class OptimizerState(dict):
    """`optimizer.state`, torch's mapping from parameter to its state. A compiled train step
    keeps the step counts of the steps it ran to itself (so a step costs the same at any number
    of parameters); any use of this mapping writes them in first (Optimizer.sync_compiled)."""

    _optimizer: "Optimizer | None" = None

    def __reduce_ex__(self, protocol: Any) -> tuple:
        """Copies and pickles are plain dicts: a snapshot, never a second optimizer."""
        return dict, (dict(self.items()),)


def _synced(name: str) -> Any:
    method = getattr(dict, name)

    def synced(self: OptimizerState, *args: Any, **kwargs: Any) -> Any:
        if self._optimizer is not None and self._optimizer._live is not None:
            self._optimizer.sync_compiled()
        return method(self, *args, **kwargs)
    synced.__name__ = name
    return synced


for _name in ("__getitem__", "__setitem__", "__delitem__", "__contains__", "__iter__", "__reversed__", "__len__",
              "__eq__", "__ne__", "__or__", "__ior__", "__repr__", "get", "items", "keys", "values", "copy", "pop",
              "popitem", "setdefault", "update", "clear"):
    setattr(OptimizerState, _name, _synced(_name))
OptimizerState.__hash__ = None  # type: ignore[assignment]  # as dict's


def check_nonnegative(**values: float) -> None:
    """torch's argument checks, in the order given: `Invalid momentum value: -0.5`."""
    for name, value in values.items():
        if not 0.0 <= value:
            raise ValueError(f"Invalid {_ARGUMENT_NAMES.get(name, name + ' value')}: {value}")


class Optimizer:
    saves_step = True  # whether state_dict() saves the step count (torch's SGD keeps none)

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list[dict[str, Any]] = []
        self.lock = threading.RLock()  # a step, eager or compiled, is atomic across threads
        self._live: Any = None  # the compiled step whose step counts are not yet in `state`
        self.state = {}
        for group in groups:
            self.add_param_group(group)

    @property
    def state(self) -> OptimizerState:
        return self._state

    @state.setter
    def state(self, value: Mapping[Tensor, dict[str, Any]]) -> None:
        if self._live is not None:
            self.sync_compiled()
        self._state = OptimizerState(value)
        self._state._optimizer = self

    def sync_compiled(self) -> None:
        """Write the step counts of the steps a compiled train step ran into `state`; that step
        reads `state` again before its next step, since whoever looks may change it."""
        with self.lock:
            live, self._live = self._live, None
            if live is not None:
                live.write_state(self._state)

    def add_param_group(self, group: dict[str, Any]) -> None:
        group = dict(group)
        group["params"] = list(group["params"]) if not isinstance(group["params"], Tensor) else [group["params"]]
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def prepare_step(self, p: Tensor, group: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
        """The state `p` has during this step and this step's scalar hyperparameters (learning
        rate, bias corrections). Nothing is stored: `commit_step` stores the state once the step
        succeeded, so a step that fails changes no count and starts no buffer. State tensors start
        from `initial_state` when first needed (a momentum buffer switched on later starts then);
        `fresh` names those started at this step."""
        old = self.state.get(p, {"step": 0})
        fresh = [n for n in self.group_state_names(group) if n not in old]
        state = {**old, **{n: Tensor._wrap(self.initial_state(n, p, group)) for n in fresh}}
        state["step"], state["fresh"] = old["step"] + 1, frozenset(fresh)
        return state, self.step_hyper(group, state)

    def commit_step(self, p: Tensor, state: dict[str, Any]) -> None:
        self.state[p] = state

    def group_state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The per-parameter state tensors the update rule of `group` reads and writes."""
        return ()

    @property
    def state_names(self) -> tuple[str, ...]:
        """Every group's state names, in order (what a compiled step's structure depends on)."""
        names = (n for g in self.param_groups for n in self.group_state_names(g))
        return tuple(dict.fromkeys(names))

    def initial_state(self, name: str, p: Tensor, group: dict[str, Any]) -> np.ndarray:
        """The value a state tensor starts from: zeros, as most of PyTorch's optimizers."""
        return np.zeros(p.shape, p.dtype)

    def step_hyper(self, group: dict[str, Any], state: dict[str, Any]) -> dict[str, float]:
        """Scalars for this step of one parameter (learning rate, bias corrections), as floats."""
        raise NotImplementedError  # every concrete optimizer defines it

    def update(self, p: Any, g: Any, state: dict[str, Any], hyper: dict[str, Any],
               group: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """New parameter and new state tensors, written with op functions."""
        raise NotImplementedError  # every concrete optimizer defines it

    @staticmethod
    def regularized_gradient(p: Any, g: Any, hyper: dict[str, Any], group: dict[str, Any]) -> Any:
        """The gradient after `maximize` and L2 `weight_decay`, as PyTorch's optimizers apply them
        (decoupled weight decay scales the parameter instead: AdamW)."""
        if group["maximize"]:
            g = -g
        if group["weight_decay"] and not group.get("decoupled_weight_decay"):
            g = g + hyper["weight_decay"] * p
        return g

    @no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        with self.lock:
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state, hyper = self.prepare_step(p, group)
                    tensors = {n: state[n] for n in self.group_state_names(group)}
                    new_p, new_state = self.update(p.detach(), p.grad, tensors, hyper, group)
                    p._set(new_p._data)
                    for name, value in new_state.items():
                        state[name]._set(value._data)
                    self.commit_step(p, state)
        return loss

    def _indexed_params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: {'state': {index: {name: value}}, 'param_groups': [{..., 'params':
        [index]}]}, parameters numbered across groups in order. Values are the live tensors (as
        torch's); deep-copy the dict to keep a snapshot."""
        index = {id(p): i for i, p in enumerate(self._indexed_params())}
        state = {}
        for p, s in self.state.items():
            entry = {k: (v.detach() if isinstance(v, Tensor) else v) for k, v in s.items()
                     if k != "fresh" and (k != "step" or self.saves_step)}
            if entry:
                state[index[id(p)]] = entry
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyperparameters and state from `state_dict()` (graphc's, or torch's with its
        tensors as numpy arrays). Every entry is checked before anything is replaced; values are
        copied, so the dict and the optimizer share nothing afterwards."""
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(self.param_groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        by_index = {i: p for s, g in zip(saved_groups, self.param_groups) for i, p in zip(s["params"], g["params"])}
        state = {}
        for index, entry in state_dict["state"].items():
            if int(index) not in by_index:
                raise ValueError(f"loaded state dict has state for parameter {index}, which no group holds")
            p = by_index[int(index)]
            state[p] = {"step": 0, **{k: self._loaded_value(k, v, p, index) for k, v in entry.items()}}
        with self.lock:
            for group, saved in zip(self.param_groups, saved_groups):
                params = group["params"]
                group.clear()
                # an older torch's dict may lack newer options (decoupled_weight_decay): defaults fill them
                group.update(self.defaults)
                group.update({k: v for k, v in saved.items() if k not in _TORCH_KERNEL_FLAGS}, params=params)
            self.state = state

    @staticmethod
    def _loaded_value(name: str, value: Any, p: Tensor, index: Any) -> Any:
        if name == "step":
            return int(np.asarray(value).item())
        array = np.asarray(value)
        if array.shape != tuple(p.shape):
            raise ValueError(f"loaded state dict's {name!r} of parameter {index} has shape {list(array.shape)}; "
                             f"the parameter has shape {list(p.shape)}")
        return Tensor._wrap(np.array(array, dtype=p.dtype, order="C"))

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines += [""] * (i > 0) + [f"Parameter Group {i}"]  # torch leaves a blank line between groups
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])
