"""compile_train_step: forward, loss, backward and optimizer update as one native call.

The joint graph is the optimised forward graph, then the gradient rules (autodiff.backprop),
then the optimizer's own update rule traced on symbolic tensors; new parameter and state values
are graph `updates`, written in place into the model's and optimizer's arrays. Each parameter
has its own scalar hyperparameter inputs (Adam's bias corrections depend on its step count); the
runner feeds parameters with equal values one shared 0-d array, refilled in place, so a step
computes them once per group and the executor reuses their pointers (runners.TrainStepRunner).
"""
from __future__ import annotations

import hashlib
import inspect
import operator
from typing import Any

import numpy as np

from .autodiff import backprop
from .compiled import ModelParts
from .ir import Graph, GraphBuilder
from .ir.digest import source_identity
from .ops.dispatch import recording
from .runners import Trained, TrainStepRunner
from .stages import Built, Driver
from .optim.optimizer import Optimizer
from .tensor import Tensor
from .nn.module import HooksSignature, hooks_version
from .specializations import DEFAULT_LIMIT, Specializations, signature
from .trace import Tracer, trace


_SWITCHES = ("momentum", "nesterov", "amsgrad", "weight_decay", "maximize", "dampening", "centered",
             "decoupled_weight_decay")
_ROLE_KINDS = ("user", "param", "buffer", "state", "hyper", "rng")


def _code_identity(cls: type) -> str | None:
    """The optimizer's classes by name, and the identity of the sources of those outside graphc
    (whose own sources are in the compiler digest): a subclass with an edited update rule
    must not meet the build recorded for the old one. None when a source file cannot be named
    (a class typed into a notebook, say): such a build is not recorded."""
    names = [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__]
    try:
        outside = [inspect.getsourcefile(c) for c in cls.__mro__
                   if c.__module__.split(".")[0] not in ("graphc", "builtins")]
    except (TypeError, OSError):
        return None
    if not all(outside):
        return None
    return ";".join(names) + "|" + hashlib.sha256(source_identity(outside)).hexdigest()


def _no_switches(group: dict) -> tuple:
    return ()


class TrainStep:
    """`step(*inputs, target)` runs one training step natively and returns the loss."""

    def __init__(self, model: Any, loss_fn: Any, optimizer: Optimizer, max_specializations: int = DEFAULT_LIMIT):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self._cache = Specializations(f"the train step of {type(model).__name__}", max_specializations,
                                      self._part_names)
        self._parts = ModelParts(model)
        self._hooks_at = -1
        self._switch_keys = tuple(k for k in _SWITCHES if k in optimizer.defaults)
        self._switches: tuple | None = None
        self._raw_switches: tuple | None = None
        # each group's switch values in one C call (a tuple, or the value itself for one switch)
        self._switch_values = operator.itemgetter(*self._switch_keys) if self._switch_keys else _no_switches
        # graphc's update rules name their state tensors from the switches alone; a subclass's
        # own group_state_names may read anything, so it is asked every step
        self._names_follow_switches = type(optimizer).group_state_names.__module__.startswith("graphc.")
        self._hooks = HooksSignature()

    def _part_names(self, key: tuple) -> list[str]:
        count = len(key) - 5
        return ([f"argument {i}" for i in range(count)] +
                ["training mode", "optimizer switches", "requires_grad of the parameters", "optimizer state",
                 "forward hooks"])

    def _structure(self) -> tuple:
        """What changes the graph besides shapes: the modules' modes, update-rule switches and
        which params train. The optimizer's state names follow from its switches."""
        parts = self._parts.current()
        try:
            raw = tuple(map(self._switch_values, self.optimizer.param_groups))
        except KeyError:  # a group without some switch reads as None, as g.get does
            raw = None
        if raw is None or raw != self._raw_switches:  # as a rule the values of the step before
            self._raw_switches = raw
            self._switch_truths = tuple([tuple(map(bool, map(g.get, self._switch_keys)))
                                         for g in self.optimizer.param_groups])
        switches = self._switch_truths
        if switches != self._switches or not self._names_follow_switches:
            self._switches, self._state_names = switches, self.optimizer.state_names
        return parts.modes, switches, parts.trainable, self._state_names

    def __call__(self, *inputs: Any) -> Tensor:
        """A step is atomic: steps from any number of threads equal the same steps run in turn."""
        with self.optimizer.lock:
            if self._hooks_at != hooks_version():
                self._hooks, self._hooks_at = HooksSignature.of(self.model, self.loss_fn), hooks_version()
            key = (*signature(inputs), *self._structure(), self._hooks)
            return self._cache.get(key, lambda: self._build(inputs))(self.optimizer, inputs)

    def _build(self, inputs: tuple, driver: Driver | None = None) -> TrainStepRunner:
        """traced -> optimized -> differentiated (forward, loss, backward and update in one
        graph) -> kernels -> planned -> llvm -> native, through `driver` (graphc dump passes its own)."""
        model, loss_fn, optimizer = self.model, self.loss_fn, self.optimizer

        def forward_and_loss(*args):
            return loss_fn(model(*args[:-1]), args[-1])

        program = trace(forward_and_loss, *inputs, root=model)
        loss_node = program.graph.nodes[program.graph.outputs[0]]
        if len(program.graph.outputs) != 1 or loss_node.shape != ():
            raise ValueError("compile_train_step: the loss function must return one scalar tensor")
        driver = driver or Driver()
        groups = optimizer.param_groups
        group_of = {id(g): i for i, g in enumerate(groups)}
        member = {id(q): i for i, g in enumerate(groups) for q in g["params"]}

        def make() -> Built:
            forward = driver.optimize(program.graph, "train step")
            joint, trained = self._joint(program, forward)
            joint = driver.differentiated(joint, "train step")
            compiled = driver.compile(joint, "train_step", "train step", type(model).__name__)
            return Built({"train step": compiled},
                         {"roles": [(n.role.kind, n.role.key) for n in joint.inputs],
                          "trained": [(t.name, group_of[id(t.group)], t.hyper) for t in trained]})

        def bind(bindings: dict) -> tuple[list[Trained], tuple]:
            trained = []
            for name, group, hyper in bindings["trained"]:
                param = program.params[name]
                if member.get(id(param)) != group or not all(isinstance(h, str) for h in hyper):
                    raise ValueError(f"a recorded train step trains {name!r} in another group")
                trained.append(Trained(name, param, groups[group], tuple(hyper)))
            roles = tuple((kind, tuple(key) if isinstance(key, list) else key) for kind, key in bindings["roles"])
            if any(kind not in _ROLE_KINDS for kind, _ in roles):
                raise ValueError("a recorded train step has an input of no known role")
            return trained, roles

        identity = _code_identity(type(optimizer))
        what = None if identity is None else ("train step", identity, self._structure(),
                                              tuple(member.get(id(p), -1) for p in program.params.values()))
        built = driver.build(program.graph, what, type(model).__name__, make, bind)
        trained, roles = built.bound
        return TrainStepRunner(program, built.compiled["train step"], trained, roles)

    def _joint(self, program: Any, forward: Graph) -> tuple[Graph, list[Trained]]:
        """The graph of one whole step: `forward` (model and loss), the gradient rules
        (autodiff.backprop) and the optimizer's update traced on symbolic tensors, whose new
        parameter and state values are the graph's updates; and the parameters it trains."""
        optimizer = self.optimizer
        loss_node = forward.nodes[forward.outputs[0]]
        tracer = Tracer(builder=GraphBuilder(list(forward.nodes)))
        value = {n.id: Tensor._symbolic(tracer, n.id, n.shape, n.dtype) for n in forward.nodes}
        param_inputs = {n.role.key: n for n in forward.inputs if n.role.kind == "param"}
        candidates = [(name, p, g) for g in optimizer.param_groups for name, p in program.params.items()
                      if p.requires_grad and name in param_inputs and any(p is q for q in g["params"])]
        loss_id = forward.outputs[0]
        with recording(tracer):
            seed = tracer.builder.constant(np.ones((), loss_node.dtype))
        grads = backprop(forward, tracer, value.__getitem__,
                         {loss_id: Tensor._symbolic(tracer, seed, (), loss_node.dtype)},
                         [param_inputs[name].id for name, _, _ in candidates])
        updates, trained = list(forward.updates), []  # the forward's buffer writes (running statistics) first
        with recording(tracer):
            for name, p, group in candidates:
                node = param_inputs[name]
                grad = grads[node.id]
                if grad is None:  # the loss does not depend on it: PyTorch leaves it alone too
                    continue
                tracer.provenance = (name, type(optimizer).__name__, "")  # `# fc1.weight (SGD)`
                state = {s: tracer.symbolic_input(f"{name}:{s}", "state", node.shape, node.dtype, key=(name, s))
                         for s in optimizer.group_state_names(group)}
                names = optimizer.step_hyper(group, {"step": 1, "fresh": frozenset()})
                hyper = {h: tracer.symbolic_input(f"{name}:{h}", "hyper", (), node.dtype, key=(name, h))
                         for h in names}
                new_p, new_state = optimizer.update(value[node.id], grad, state, hyper, group)
                updates.append((tracer.value_of(new_p), node.id))
                updates += [(tracer.value_of(new_state[s]), state[s]._node) for s in new_state]
                trained.append(Trained(name, p, group, tuple(names)))
        tracer.provenance = None
        return tracer.builder.finish([loss_id], ["loss"], updates), trained


def compile_train_step(model: Any, loss_fn: Any, optimizer: Optimizer,
                       max_specializations: int = DEFAULT_LIMIT) -> TrainStep:
    """One native call per step: forward, loss, backward and the optimizer's update; at most
    `max_specializations` compiled steps stay live (least recently used dropped)."""
    return TrainStep(model, loss_fn, optimizer, max_specializations)
