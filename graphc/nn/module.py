"""Module: PyTorch's module tree (registration by attribute assignment, traversal, hooks, repr).

Parameters, buffers and children live in three ordered dicts, as in PyTorch, so traversal order,
state_dict keys and reprs match it; `graphc.tree.ModuleTree` reads the same dicts.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
from typing import Any, Callable, Iterator

from .. import dtypes
from ..autograd import no_grad
from ..device import split_to_arguments
from ..ir.node import provenance
from ..ops import dispatch
from ..tensor import Tensor, _Modes, _Rebinds
from .parameter import Parameter
from . import state_dict as _state


class _HookChanges:
    """Counts hook registrations and removals anywhere, so compiled models read their own hooks
    again (`HooksSignature.of`) only after one happened."""

    count = 0


def hooks_version() -> int:
    return _HookChanges.count


class HooksSignature(tuple):
    """Which forward hooks and pre-hooks are registered on which modules: (qualified name, pre-hook
    ids, hook ids) per module that has any. Part of a compiled model's specialisation key, since
    hooks run while tracing and are compiled in."""

    @classmethod
    def of(cls, *roots: "Module") -> "HooksSignature":
        return cls((f"{k}:{name}", tuple(m._forward_pre_hooks), tuple(m._forward_hooks))
                   for k, root in enumerate(roots) if isinstance(root, Module)
                   for name, m in root.named_modules() if m._forward_pre_hooks or m._forward_hooks)

    def __repr__(self) -> str:
        if not self:
            return "no hooks"
        return ", ".join(f"{len(pre) + len(post)} on '{name.partition(':')[2] or '<root>'}'"
                         for name, pre, post in self)


class RemovableHandle:
    """Returned by hook registration; `remove()` unregisters the hook (also a context manager)."""

    _ids = itertools.count()

    def __init__(self, hooks: dict[int, Callable], extra: dict[int, bool] | None = None) -> None:
        self.hooks_dict, self.extra_dict, self.id = hooks, extra, next(RemovableHandle._ids)

    def remove(self) -> None:
        if self.hooks_dict.pop(self.id, None) is not None:
            _HookChanges.count += 1
        if self.extra_dict is not None:
            self.extra_dict.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _add_hook(hooks: dict[int, Callable], hook: Callable, prepend: bool,
              with_kwargs: dict[int, bool] | None = None) -> RemovableHandle:
    """Register `hook`; its id also goes into `with_kwargs` when given (it wants the kwargs)."""
    handle = RemovableHandle(hooks, with_kwargs)
    hooks[handle.id] = hook
    _HookChanges.count += 1
    if with_kwargs is not None:
        with_kwargs[handle.id] = True
    if prepend:
        for key in [k for k in hooks if k != handle.id]:
            hooks[key] = hooks.pop(key)  # re-insert the others after the new hook
    return handle


def indent_tail(text: str, spaces: int) -> str:
    """Indent every line but the first: how a child's repr nests inside its parent's."""
    first, *rest = text.split("\n")
    return "\n".join([first] + [" " * spaces + line for line in rest])


_eager = threading.local()  # the modules being called eagerly in this thread, outermost first
_DISPATCH_FILE = dispatch.__file__
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
# what the op table raises (shape rules, numpy references, checks): eager calls name the module
_OP_ERRORS = (ValueError, RuntimeError, IndexError)


def _eager_path(stack: list["Module"]) -> str:
    """The innermost module's qualified name under the outermost one, as trace names it (a
    module the outermost does not own is `<Type>` under its caller)."""
    names = {id(m): name for name, m in stack[0].named_modules(remove_duplicate=False)}
    path = ""
    for module in stack[1:]:
        path = names.get(id(module), f"{path}.<{type(module).__name__}>".lstrip("."))
    return path


def _tracebacks(error: BaseException) -> Iterator[Any]:
    tb = error.__traceback__
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _user_line(error: BaseException) -> str:
    """file:line of the user's code that made the failing op, as trace's user_source() gives it:
    the innermost frame outside graphc in the traceback, else the first such caller."""
    outside = [t for t in _tracebacks(error) if not t.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR)]
    if outside:
        frame, line = outside[-1].tb_frame, outside[-1].tb_lineno
    else:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            frame = frame.f_back
        if frame is None:
            return ""
        line = frame.f_lineno
    return f"{os.path.basename(frame.f_code.co_filename)}:{line}"


def _from_op_table(error: BaseException) -> bool:
    return any(t.tb_frame.f_code.co_filename == _DISPATCH_FILE for t in _tracebacks(error))


class Module:
    """Base class of layers and models; subclasses set children and parameters in `__init__`."""

    training: bool

    def __init__(self) -> None:
        for name, value in (("training", True), ("_parameters", {}), ("_buffers", {}),
                            ("_non_persistent_buffers_set", set()), ("_modules", {}),
                            ("_forward_hooks", {}), ("_forward_pre_hooks", {}),
                            ("_forward_hooks_with_kwargs", {}), ("_forward_pre_hooks_with_kwargs", {})):
            object.__setattr__(self, name, value)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        recorder = dispatch.active_recorder()
        if recorder is not None:  # tracing: the tracer names the module of each node
            scope = getattr(recorder, "module_scope", None)
            with (scope(self) if scope is not None else contextlib.nullcontext()):
                return self._call_with_hooks(args, kwargs)
        stack = _eager.__dict__.setdefault("stack", [])
        stack.append(self)
        try:
            return self._call_with_hooks(args, kwargs)
        except _OP_ERRORS as error:
            if getattr(error, "_graphc_module", False) or not _from_op_table(error):
                raise
            # name the innermost module as a traced error does, keeping the exception's type
            where = provenance(_eager_path(stack), type(self).__name__, _user_line(error))
            error.args = (f"{where}: {error.args[0] if error.args else ''}", *error.args[1:])
            error._graphc_module = True
            raise
        finally:
            stack.pop()

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        """Forward pre-hooks, forward, forward hooks: PyTorch's order and replacement rules."""
        with_kwargs = self._forward_pre_hooks_with_kwargs
        for hook_id, hook in list(self._forward_pre_hooks.items()):
            if hook_id in with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError("forward pre-hook must return None or a tuple of (new_args, "
                                           f"new_kwargs), but got {result}.")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        with_kwargs = self._forward_hooks_with_kwargs
        for hook_id, hook in list(self._forward_hooks.items()):
            result = hook(self, args, kwargs, output) if hook_id in with_kwargs else hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """`hook(module, args)` runs before forward; a non-None result replaces args. With
        `with_kwargs`, `hook(module, args, kwargs)` returns None or `(args, kwargs)`."""
        return _add_hook(self._forward_pre_hooks, hook, prepend,
                         self._forward_pre_hooks_with_kwargs if with_kwargs else None)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """`hook(module, args, output)` runs after forward; a non-None result replaces the output.
        With `with_kwargs`, `hook(module, args, kwargs, output)`."""
        return _add_hook(self._forward_hooks, hook, prepend, self._forward_hooks_with_kwargs if with_kwargs else None)

    # --- registration ---------------------------------------------------------------------
    def _check_name(self, kind: str, name: Any, table: dict) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if hasattr(self, name) and name not in table:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_name("parameter", name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            "(graphc.nn.Parameter or None required)")
        self._parameters[name] = param
        _Rebinds.bump()

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is state but not trained (saved in state_dict unless not persistent)."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_name("buffer", name, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(graphc Tensor or None required)")
        self._buffers[name] = tensor
        _Rebinds.bump()
        (self._non_persistent_buffers_set.discard if persistent else self._non_persistent_buffers_set.add)(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name("module", name, self._modules)
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params, buffers, modules = d.get("_parameters"), d.get("_buffers"), d.get("_modules")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, keep=params)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(graphc.nn.Parameter or None expected)")
            params[name] = None
            _Rebinds.bump()
        elif isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, keep=modules)
            modules[name] = value
            _Rebinds.bump()
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(graphc.nn.Module or None expected)")
            modules[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(graphc Tensor or None expected)")
            if getattr(value, "_node", None) is not None and buffers[name] is not None:
                buffers[name].copy_(value)  # a traced forward's new value: the buffer's graph update
                return
            buffers[name] = value
            _Rebinds.bump()
        else:
            if name == "training":
                _Modes.bump()
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: dict) -> None:
        """Drop `name` from the other tables; in `keep` a re-assigned name keeps its place."""
        self.__dict__.pop(name, None)
        for table in (self._parameters, self._buffers, self._modules):
            if table is not keep:
                table.pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        keys = itertools.chain(dir(type(self)), self.__dict__, self._parameters, self._modules, self._buffers)
        return sorted({k for k in keys if not k[0].isdigit()})

    # --- traversal --------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """This module then its descendants, depth first, with qualified names."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def _named_members(self, table: str, prefix: str, recurse: bool,
                       remove_duplicate: bool) -> Iterator[tuple[str, Tensor]]:
        owners = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        seen: set[int] = set()
        for owner_name, owner in owners:
            for name, value in getattr(owner, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{owner_name}.{name}" if owner_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """A parameter shared by several modules is listed once, under its first name."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        module = self
        for item in target.split(".") if target else []:
            if not hasattr(module, item):
                raise AttributeError(f"{module._get_name()} has no attribute `{item}`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return module

    def _get_member(self, target: str, kind: type, what: str) -> Any:
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(f"{module._get_name()} has no attribute `{name}`")
        value = getattr(module, name)
        if not isinstance(value, kind) or (kind is Tensor and name not in module._buffers):
            raise AttributeError(f"`{name}` is not {what}")
        return value

    def get_parameter(self, target: str) -> Parameter:
        return self._get_member(target, Parameter, "an nn.Parameter")

    def get_buffer(self, target: str) -> Tensor:
        return self._get_member(target, Tensor, "a buffer")

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        """Call `fn` on every descendant (children first) and then on self, as for custom init."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # --- modes and gradients -----------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.zero_()

    # --- state --------------------------------------------------------------------------------
    def state_dict(self, *, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
        """Parameters then persistent buffers of each module, depth first, keyed as PyTorch keys them."""
        return _state.save(self, destination, prefix, keep_vars)

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> _state.IncompatibleKeys:
        """Copy values in place (tensors stay the same objects); strict mode demands exact keys."""
        return _state.load(self, state_dict, strict)

    # --- dtype and device ---------------------------------------------------------------------
    def _cast_floating(self, dtype: str) -> "Module":
        return self._cast(dtype, floating_only=True)

    def _cast(self, dtype: str, floating_only: bool) -> "Module":
        """Replace the arrays of parameters and buffers in place (the tensors stay the same objects)."""
        with no_grad():
            for module in self.modules():
                for t in itertools.chain(module._parameters.values(), module._buffers.values()):
                    if t is not None and (t.dtype.is_floating_point or not floating_only) and t.dtype != dtype:
                        t.data = t.detach().to(dtype)
                        if t.grad is not None:
                            t.grad = t.grad.to(dtype)
        return self

    def float(self) -> "Module":
        return self._cast_floating(dtypes.float32)

    def double(self) -> "Module":
        return self._cast_floating(dtypes.float64)

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """PyTorch's spellings (to(dtype), to(device), to(device, dtype), to(tensor)); only the
        CPU exists, so a device is checked and a floating dtype, if given, is applied in place."""
        _device, target, like = split_to_arguments(args, kwargs)
        target = like.dtype if like is not None and target is None else target
        if target is None:
            return self
        target = dtypes.canonical(target)
        if not target.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, but got desired "
                            f"dtype={target!r}")
        return self._cast_floating(target)

    def cpu(self) -> "Module":
        return self

    def cuda(self, device: Any = None) -> "Module":
        raise RuntimeError("graphc runs on the CPU only: there is no CUDA device")

    def type(self, dst_type: Any) -> "Module":
        """Cast every parameter and buffer, integer ones included, to `dst_type` (PyTorch's)."""
        return self._cast(dtypes.canonical(dst_type), floating_only=False)

    # --- printing -----------------------------------------------------------------------------
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The text inside this module's parentheses; layers override it with their settings."""
        return ""

    def __repr__(self) -> str:
        extra_text = self.extra_repr()
        extra = extra_text.split("\n") if extra_text else []
        children = [f"({name}): {indent_tail(repr(m), 2)}" for name, m in self._modules.items()]
        if len(extra) == 1 and not children:
            return f"{self._get_name()}({extra[0]})"
        lines = extra + children
        body = "\n  " + "\n  ".join(lines) + "\n" if lines else ""
        return f"{self._get_name()}({body})"

