"""trace(model, *inputs): run forward on symbolic tensors and record the DAG.

The module tree stays a separate object (`Program.tree`); each node points into it by its
module path. Parameters and buffers are graph inputs named by their qualified names, created on
first use, so a parameter shared by two modules is one input.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .errors import TraceError
from .ir import Graph, GraphBuilder, Role, interpret
from .ir.node import provenance
from .ops import functions as fn
from .ops.dispatch import recording
from .ops.registry import ShapeError, TensorType
from .random import draw_keys
from .tensor import Tensor, as_tensor, rebinds
from .tree import ModuleTree

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_source(skip: Sequence[str] = (_PACKAGE_DIR,)) -> str:
    """file:line of the innermost frame outside graphc: the user's line that made a node."""
    frame, prefixes = sys._getframe(1), tuple(skip)
    while frame is not None and frame.f_code.co_filename.startswith(prefixes):
        frame = frame.f_back
    if frame is None:
        return ""
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


class Tracer:
    """The Recorder that `apply` talks to while a forward runs on symbolic tensors."""

    def __init__(self, root: Any = None, builder: GraphBuilder | None = None):
        self.builder = builder or GraphBuilder()
        self.bindings: dict[int, int] = {}
        self.lazy: dict[int, tuple[str, str, Tensor]] = {}
        self.used: dict[str, Tensor] = {}
        self.writes: dict[int, int] = {}  # input id of a buffer -> the value forward wrote into it last
        self.written: dict[int, int] = {}  # id of a written buffer -> its input id
        self.module_names: dict[int, str] = {}
        self.scope: list[tuple[str, str]] = [("", type(root).__name__ if root is not None else "")]
        self.provenance: tuple[str, str, str] | None = None  # forced (path, type, source) for autodiff
        self.random_keys = 0  # rng inputs made so far: key k is the k-th key drawn per call
        if root is not None:
            self.module_names = {id(m): name for name, m in root.named_modules(remove_duplicate=False)}
            for kind, items in (("param", root.named_parameters()), ("buffer", root.named_buffers())):
                for name, t in items:
                    self.lazy.setdefault(id(t), (name, kind, t))

    # --- the Recorder protocol -------------------------------------------------------------
    def value_of(self, t: Tensor) -> int:
        if t._node is not None:
            if t._recorder is not self:
                raise self.fail(TraceError("a symbolic tensor from another trace was used here"))
            return t._node
        key = id(t)
        if key not in self.bindings:
            if key in self.lazy:
                name, kind, tensor = self.lazy[key]
                self.bindings[key] = self.builder.input(name, kind, tuple(t.shape), t.dtype, key=name)
                self.used[name] = tensor
            else:  # a tensor made inside forward: its value is baked in
                self.bindings[key] = self.builder.constant(t._data, **self._where())
                self.lazy[key] = ("", "constant", t)  # keeps it alive so its id stays unique
        return self.bindings[key]

    def record(self, op: str, inputs: tuple[int, ...], attrs: dict, result: TensorType) -> Tensor:
        node = self.builder.add(op, inputs, attrs, result.shape, result.dtype, **self._where())
        return Tensor._symbolic(self, node, result.shape, result.dtype)

    def tracks(self, t: Tensor) -> bool:
        """Whether an in-place write into `t` belongs in the graph: `t` is symbolic, or a
        parameter or buffer of the traced module (other concrete tensors are written eagerly)."""
        return t._node is not None or self.lazy.get(id(t), ("", "constant"))[1] in ("param", "buffer")

    def write(self, target: Tensor, value: Any) -> None:
        """`target.copy_(value)` while tracing: a buffer written in forward (running statistics)
        becomes a graph update, and later reads of `target` in this trace see the new value."""
        kind = self.lazy.get(id(target), ("", "", None))[1]
        if target._node is not None or kind != "buffer":
            what = "a parameter" if kind == "param" else "an intermediate value" if target._node is not None else \
                "a tensor that is not a buffer of the traced module"
            raise self.fail(TraceError(
                f"in-place updates in a traced forward must write a module buffer (register_buffer), "
                f"not {what}; return the new value from forward instead"))
        new = fn.cast(value if isinstance(value, Tensor) else as_tensor(np.asarray(value, target._dtype)),
                      target._dtype)
        if tuple(new.shape) != tuple(target.shape):
            try:
                new = fn.expand(new, tuple(target.shape))
            except ShapeError as error:
                raise self.fail(TraceError(f"copy_: cannot broadcast a value of shape {list(new.shape)} "
                                           f"to the buffer's shape {list(target.shape)}")) from error
        if id(target) not in self.written:
            self.written[id(target)] = self.value_of(target)
        self.writes[self.written[id(target)]] = self.bindings[id(target)] = self.value_of(new)

    def fail(self, error: Exception) -> Exception:
        where = self._where()
        return type(error)(f"{provenance(where['module_path'], where['module_type'], where['source'])}: {error}")

    # --- context ----------------------------------------------------------------------------
    def _where(self) -> dict[str, str]:
        if self.provenance is not None:
            path, type_name, source = self.provenance
        else:
            (path, type_name), source = self.scope[-1], user_source()
        return {"module_path": path, "module_type": type_name, "source": source}

    @contextlib.contextmanager
    def module_scope(self, module: Any) -> Iterator[None]:
        """Entered by Module.__call__ so nodes know the innermost module that made them."""
        parent = self.scope[-1][0]
        name = self.module_names.get(id(module), f"{parent}.<{type(module).__name__}>".lstrip("."))
        self.scope.append((name, type(module).__name__))
        try:
            yield
        finally:
            self.scope.pop()

    def random_key(self) -> Tensor:
        """A fresh random key (an int64 scalar input of role rng k): drawn from graphc's generator
        by the runner on every call, in the order forward asked for them, as eager code draws them."""
        key = self.symbolic_input(f"rng{self.random_keys}", "rng", (), "int64", key=self.random_keys)
        self.random_keys += 1
        return key

    def symbolic_input(self, name: str, kind: str, shape: tuple[int, ...], dtype: str, key: Any = None) -> Tensor:
        """A new graph input of role (kind, key); `name` only labels it."""
        node = self.builder.input(name, kind, shape, dtype, key)
        return Tensor._symbolic(self, node, tuple(shape), dtype)


def _flatten(value: Any, out: list) -> Any:
    """Flatten nested outputs into `out`; return a spec that rebuilds the structure."""
    if isinstance(value, Tensor):
        out.append(value)
        return len(out) - 1
    if isinstance(value, (tuple, list)):
        return type(value), [_flatten(v, out) for v in value]
    if isinstance(value, dict):
        return dict, {k: _flatten(v, out) for k, v in value.items()}
    raise TraceError(f"forward returned a {type(value).__name__}; traced outputs must be tensors "
                     "(or tuples, lists and dicts of tensors)")


def unflatten(spec: Any, values: Sequence[Any]) -> Any:
    if isinstance(spec, int):
        return values[spec]
    kind, items = spec
    if kind is dict:
        return {k: unflatten(v, values) for k, v in items.items()}
    if hasattr(kind, "_fields"):  # a named tuple, such as max's (values, indices)
        return kind(*(unflatten(v, values) for v in items))
    return kind(unflatten(v, values) for v in items)


def _input_names(model: Any, count: int) -> list[str]:
    forward = getattr(model, "forward", model)
    try:
        params = [p.name for p in inspect.signature(forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = params[:count] + [f"input{i}" for i in range(len(params), count)]
    return names


@dataclass(frozen=True)
class RandomKey:
    """A graph input bound to the k-th random key drawn per call (role rng k)."""

    k: int


def fill_keys(arrays: list, slots: Sequence[tuple[int, int]], count: int) -> None:
    """Draw `count` fresh keys from graphc's generator (as many as eager forward draws, in its
    order) and put key k at position j for each (j, k) of `slots`."""
    keys = draw_keys(count)
    for j, k in slots:
        arrays[j] = keys[k]


@dataclass
class Program:
    """What trace returns: the module tree, the graph, and the live tensors behind its inputs."""

    tree: ModuleTree | None
    graph: Graph
    params: dict[str, Tensor]
    input_names: tuple[str, ...]
    output_spec: Any = field(default=0, repr=False)
    static_args: tuple = field(default=(), repr=False)
    root: Any = field(default=None, repr=False)  # the module whose parameters and buffers are inputs
    random_keys: int = 0  # keys drawn per call (rng inputs 0..random_keys-1; passes may drop some)

    def user_tensors(self, *inputs: Any) -> list[Tensor]:
        """The call's tensor arguments (static ones dropped), one per name in `input_names`;
        `inputs` is the call flattened as by `flatten_call`."""
        user = [x if isinstance(x, Tensor) else as_tensor(x) for x in inputs if isinstance(x, _TENSOR_LIKE)]
        if len(user) != len(self.input_names):
            raise TypeError(f"expected {len(self.input_names)} tensor inputs, got {len(user)}")
        return user

    def tensor_for(self, role: Role, user: Sequence[Tensor]) -> Tensor:
        """The tensor behind a graph input of `role`: the call's k-th tensor, a parameter or
        buffer by its qualified name, or (rng) a fresh random key."""
        if role.kind == "rng":
            return Tensor._wrap(draw_keys(1)[0])
        if role.kind == "user":
            return user[role.key]
        if role.kind in ("param", "buffer"):
            return self.params[role.key]
        raise KeyError(f"a traced program has no tensor for a {role} input")

    def input_tensors(self, *inputs: Any) -> list[Tensor]:
        """Tensors in `graph.inputs` order, each bound by its input's role."""
        user, bound = self.user_tensors(*inputs), self._binding()
        keys = [Tensor._wrap(k) for k in draw_keys(self.random_keys)]
        return [user[s] if s.__class__ is int else keys[s.k] if s.__class__ is RandomKey else s for s in bound]

    def input_arrays(self, *inputs: Any) -> list[np.ndarray]:
        """Arrays in `graph.inputs` order (see input_tensors)."""
        return [t._data for t in self.input_tensors(*inputs)]

    def _binding(self) -> list[int | Tensor | RandomKey]:
        """Per graph input, by its role: the position of a user tensor, the live parameter or
        buffer, or the random key drawn k-th per call. Worked out again only when a parameter,
        buffer or tensor array was replaced somewhere (tensor.rebinds()), so a compiled call only
        indexes it."""
        if self.__dict__.get("_bound_at") != rebinds():
            self._bound_at = rebinds()
            if self.root is not None:  # a parameter replaced by another object is bound anew
                live = dict(self.root.named_parameters()) | dict(self.root.named_buffers())
                self.params = {name: live.get(name, t) for name, t in self.params.items()}
            self._bound = [n.role.key if n.role.kind == "user" else RandomKey(n.role.key) if n.role.kind == "rng"
                           else self.tensor_for(n.role, ()) for n in self.graph.inputs]
            self._fixed = [s._data if isinstance(s, Tensor) else None for s in self._bound]
            self._user_slots = [(j, s) for j, s in enumerate(self._bound) if s.__class__ is int]
            self._key_slots = [(j, s.k) for j, s in enumerate(self._bound) if s.__class__ is RandomKey]
        return self._bound

    def call_arrays(self, user: Sequence[Tensor]) -> list[np.ndarray]:
        """The arrays of one call: parameter and buffer arrays gathered once per rebind, the
        user's tensors filled in; the cost does not grow with the number of parameters."""
        self._binding()
        arrays = list(self._fixed)
        for j, k in self._user_slots:
            arrays[j] = user[k]._data
        if self.random_keys:
            fill_keys(arrays, self._key_slots, self.random_keys)
        return arrays

    def __call__(self, *inputs: Any) -> Any:
        outputs = interpret(self.graph, self.input_arrays(*inputs))
        return unflatten(self.output_spec, [Tensor._wrap(o) for o in outputs])


@dataclass(frozen=True)
class InputSpec:
    """A tensor input known by shape and dtype only: `trace` needs no values, so a graph for a
    100000x100000 input is traced without allocating it (`graphc dump` traces this way)."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    requires_grad: bool = False


_TENSOR_LIKE = (Tensor, np.ndarray, InputSpec)  # call arguments that are inputs; all others are static


def _is_static(x: Any) -> bool:
    return not isinstance(x, _TENSOR_LIKE)


def _misplaced_argument(error: Exception, names: Sequence[str], inputs: Sequence[Any]) -> TypeError | None:
    """A TypeError naming the argument when forward failed on a non-tensor argument used as a
    tensor (a list, a number, None), which was taken as a static value; else None."""
    for position, (name, x) in enumerate(zip(names, inputs)):
        kind = type(x).__name__
        if _is_static(x) and f"'{kind}' object" in str(error):
            return TypeError(f"forward argument '{name}' (position {position}) must be a Tensor, not {kind}: "
                             "a traced or compiled model computes with tensors (or numpy arrays) only; "
                             "other arguments are fixed when it compiles (graphc.tensor(...) makes a tensor)")
    return None


def flatten_call(args: Sequence[Any], kwargs: Mapping[str, Any] | None) -> tuple[tuple, tuple[str, ...]]:
    """A call's arguments as one tuple, positional ones then keyword ones sorted by name (so the
    order keywords are written in does not matter), and those names."""
    names = tuple(sorted(kwargs)) if kwargs else ()
    return (*args, *(kwargs[k] for k in names)), names


def trace(model: Any, *example_inputs: Any, root: Any = None, kwargs: Mapping[str, Any] | None = None) -> Program:
    """Run `model(*example_inputs, **kwargs)` on symbolic tensors and return the Program it made.

    Tensor arguments (positional or keyword) become graph inputs; every other argument (strings,
    numbers, None, tuples of ints) is a static value the graph is specialised on. Python control
    flow on shapes and static values is specialised; control flow on tensor values raises a
    TraceError naming the module path and source line. `root` names the module whose parameters
    become graph inputs when `model` is a plain function.
    """
    root = root if root is not None else model
    is_module = hasattr(root, "named_parameters")
    tracer = Tracer(root if is_module else None)
    flat, keywords = flatten_call(example_inputs, kwargs)
    names = _input_names(model, len(example_inputs)) + list(keywords)
    args, tensor_names = [], []
    for name, x in zip(names, flat):
        if _is_static(x):
            args.append(x)
            continue
        shape, dtype = (x.shape, x.dtype) if isinstance(x, InputSpec) else (as_tensor(x).shape, as_tensor(x).dtype)
        args.append(tracer.symbolic_input(name, "user", tuple(shape), str(dtype), key=len(tensor_names)))
        tensor_names.append(name)
    positional = len(example_inputs)
    with recording(tracer):
        try:
            result = model(*args[:positional], **dict(zip(keywords, args[positional:])))
        except (AttributeError, TypeError) as error:
            misplaced = _misplaced_argument(error, names, flat)
            if misplaced is None:
                raise
            raise misplaced from error
    outputs_flat: list[Tensor] = []
    spec = _flatten(result, outputs_flat)
    outputs = [tracer.value_of(t) for t in outputs_flat]
    updates = [(value, target) for target, value in tracer.writes.items()]
    graph = tracer.builder.finish(outputs, [f"out{i}" if len(outputs_flat) > 1 else "out"
                                            for i in range(len(outputs_flat))], updates)
    tree = ModuleTree.of(root) if is_module else None
    static = tuple(x for x in flat if _is_static(x))
    return Program(tree, graph, dict(tracer.used), tuple(tensor_names), spec, static, root if is_module else None,
                   tracer.random_keys)
