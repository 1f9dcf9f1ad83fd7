"""graphc.compile: trace, differentiate, optimise, lower and run a model like torch.compile.

Each distinct (input shapes and dtypes, values of non-tensor arguments, positional or keyword,
train/eval mode, grad mode, which parameters train, forward hooks) gets its own specialisation,
compiled on first use. The helpers here also serve compile_train_step (train_step.py).
"""
from __future__ import annotations

import operator
from typing import Any, Sequence

from . import autograd
from .autodiff import BackwardGraph
from .ir import Graph
from .runners import BackwardFeeds, DifferentiableRunner, InferenceRunner
from .nn.module import HooksSignature, hooks_version
from .specializations import DEFAULT_LIMIT, Specializations, signature
from .stages import Built, Driver
from .tensor import Tensor, modes, rebinds
from .trace import Program, _input_names, flatten_call, trace


def build_inference(program: Program, driver: Driver, context: str) -> InferenceRunner:
    """traced -> optimized -> prepared -> kernels -> planned -> llvm -> native, for a forward
    without grad; the prepare graph (what depends on parameters only) is compiled on its own."""
    def make() -> Built:
        forward = driver.optimize(program.graph, "forward")
        hoisted = driver.hoist(forward, "forward")
        if hoisted.prepare is None:
            return Built({"forward": driver.compile(forward, "forward", "forward", context)}, {"prepare_inputs": []})
        position = {n.role: j for j, n in enumerate(program.graph.inputs)}
        return Built({"forward": driver.compile(hoisted.main, "forward", "forward", context),
                      "prepare": driver.compile(hoisted.prepare, "prepare", "prepare", context)},
                     {"prepare_inputs": [position[n.role] for n in hoisted.prepare.inputs]})

    def bind(bindings: dict) -> tuple[int, ...]:
        return _positions(bindings["prepare_inputs"], len(program.graph.inputs))

    built = driver.build(program.graph, ("inference",), context, make, bind)
    return InferenceRunner(program, built.compiled["forward"], built.compiled.get("prepare"), built.bound)


def build_differentiable(program: Program, wrt: Sequence[int], driver: Driver, context: str) -> DifferentiableRunner:
    """The forward, differentiated w.r.t. the graph inputs at positions `wrt`; both graphs native."""
    def make() -> Built:
        forward = driver.optimize(program.graph, "forward")
        forward_train, backward = driver.differentiate(forward, [forward.inputs[j].id for j in wrt])
        feeds = backward_feeds(forward_train, backward)
        return Built({"forward": driver.compile(forward_train, "forward_train", "forward", context),
                      "backward": driver.compile(backward.graph, "backward", "backward", context)},
                     {"sources": feeds.sources, "grad_of": feeds.grad_of, "outputs": len(forward.outputs)})

    def bind(bindings: dict) -> tuple[BackwardFeeds, int]:
        sources = tuple((kind, j) for kind, j in bindings["sources"])
        if any(kind not in ("seed", "input", "output") or type(j) is not int for kind, j in sources):
            raise ValueError("a backward input comes from a seed, a forward input or a forward output")
        outputs = bindings["outputs"]
        if not isinstance(outputs, int) or outputs < 0:
            raise ValueError("a forward has a count of outputs")
        return BackwardFeeds(sources, _positions(bindings["grad_of"], len(program.graph.inputs))), outputs

    built = driver.build(program.graph, ("differentiable", tuple(wrt)), context, make, bind)
    feeds, outputs = built.bound
    return DifferentiableRunner(program, built.compiled["forward"], built.compiled["backward"], feeds, outputs)


def _positions(values: Any, count: int) -> tuple[int, ...]:
    """`values` as positions among `count` inputs; ValueError for anything else (a record's
    bindings are checked before they bind anything)."""
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < count
                                               for v in values):
        raise ValueError(f"expected positions among {count} inputs, got {values!r}")
    return tuple(values)


def trainable_inputs(program: Program, params: Sequence[str], user: Sequence[Tensor] = ()) -> list[int]:
    """Positions of the graph inputs that take gradients: the `user` tensors that require grad
    and the trainable parameters named in `params`."""
    trained, wanted = set(params), {k for k, t in enumerate(user) if t.requires_grad}
    return [j for j, n in enumerate(program.graph.inputs)
            if (n.role.kind == "user" and n.role.key in wanted) or (n.role.kind == "param" and n.role.key in trained)]


def backward_feeds(forward: Graph, backward: BackwardGraph) -> BackwardFeeds:
    """Where each backward input comes from, by position: bound by role, never by name."""
    input_position = {n.id: j for j, n in enumerate(forward.inputs)}
    output_position: dict[int, int] = {}
    for j, node_id in enumerate(forward.outputs):
        output_position.setdefault(node_id, j)
    sources = []
    for node in backward.graph.inputs:
        kind, key = node.role.kind, node.role.key
        if kind == "seed":
            sources.append(("seed", key))
        elif forward.nodes[key].op == "input":
            sources.append(("input", input_position[key]))
        else:
            sources.append(("output", output_position[key]))
    return BackwardFeeds(tuple(sources), tuple(input_position[w] for w in backward.wrt))


_REQUIRES_GRAD = operator.attrgetter("requires_grad")
_TRAINING = operator.attrgetter("training")


def training_modes(modules: Sequence[Any]) -> tuple[bool, ...]:
    """The train/eval mode of every module: a layer switched alone (`model.bn.eval()`, say) picks
    another program too, since BatchNorm and Dropout trace differently in each mode."""
    return tuple(map(_TRAINING, modules))


class ModelParts:
    """A model's parameters and modules, and the two parts of a specialisation key they decide:
    every module's train/eval mode and every parameter's requires_grad. They are walked again
    only after a parameter or child was replaced (rebinds()) or a mode changed (modes()), so a
    compiled call costs the same however many layers the model has."""

    __slots__ = ("model", "params", "modules", "modes", "trainable", "trains", "_at")

    def __init__(self, model: Any):
        self.model, self._at = model, (-1, -1)

    def current(self) -> "ModelParts":
        at = (rebinds(), modes())
        if at != self._at:
            if at[0] != self._at[0]:
                self.params = list(self.model.named_parameters())
                self.modules = list(self.model.modules())
            self.modes = training_modes(self.modules)
            self.trainable = tuple(map(_REQUIRES_GRAD, [p for _, p in self.params]))
            self.trains = any(self.trainable)
            self._at = at
        return self


class CompiledModule:
    """What graphc.compile returns: call it like the model; attributes reach the model."""

    def __init__(self, model: Any, max_specializations: int = DEFAULT_LIMIT):
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_hooks_at", -1)
        object.__setattr__(self, "_parts", ModelParts(model))
        object.__setattr__(self, "_cache", Specializations(
            f"{type(model).__name__}.forward", max_specializations, self._part_names))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        model, parts = self._model, self._parts.current()
        inputs, keywords = flatten_call(args, kwargs) if kwargs else (args, ())
        grad_mode = autograd.is_grad_enabled()
        trainable = parts.trainable if grad_mode else ()
        needs_grad = grad_mode and (parts.trains or any(getattr(x, "requires_grad", False) for x in inputs))
        if self._hooks_at != hooks_version():
            object.__setattr__(self, "_hooks", HooksSignature.of(model))
            object.__setattr__(self, "_hooks_at", hooks_version())
        key = (keywords, *signature(inputs), parts.modes, needs_grad, trainable if needs_grad else (), self._hooks)
        return self._cache.get(key, lambda: self._build(args, kwargs, needs_grad))(inputs)

    def _part_names(self, key: tuple) -> list[str | None]:
        keywords = key[0]
        positional = len(key) - 5 - len(keywords)
        names = [f"argument '{n}'" for n in (*_input_names(self._model, positional), *keywords)]
        return [None, *names, "training mode", "grad mode", "requires_grad of the parameters",
                "forward hooks"]

    def _build(self, args: tuple, kwargs: dict, needs_grad: bool) -> Any:
        model = self._model
        params = tuple(n for n, p in self._parts.current().params if p.requires_grad)
        program, context = trace(model, *args, kwargs=kwargs), type(model).__name__
        if not needs_grad:
            return build_inference(program, Driver(), context)
        wrt = trainable_inputs(program, params, program.user_tensors(*flatten_call(args, kwargs)[0]))
        return build_differentiable(program, wrt, Driver(), context)

    def specializations(self) -> int:
        return len(self._cache)

    def train(self, mode: bool = True) -> "CompiledModule":
        self._model.train(mode)
        return self

    def eval(self) -> "CompiledModule":
        return self.train(False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._model, name, value)

    def __repr__(self) -> str:
        return f"CompiledModule({self._model!r})"


def compile(model: Any, max_specializations: int = DEFAULT_LIMIT) -> CompiledModule:  # noqa: A001
    """Wrap `model` so each call runs native code compiled for the input shapes it sees; at most
    `max_specializations` stay live (least recently used dropped)."""
    return CompiledModule(model, max_specializations)
