"""The live specialisations of one compiled model: built on first use, least recently used
dropped past a limit (their native code is released with them), and recompiles logged.

A key is a flat tuple: per call argument its signature (`signature`: a tensor's shape, dtype and
requires_grad, or a static value), then the model's own parts (training mode, grad mode, ...);
`part_names(key)` names each element, so a recompile is logged with what changed, e.g.
`recompiling Net.forward: argument 'act' changed from 'relu' to 'tanh'`. The messages go to the
`graphc.recompiles` logger (under `graphc`); GRAPHC_LOG=recompiles prints them on stderr.

Each specialisation costs about 1-2 MB of native code, so a model called with ever new batch
sizes would grow without bound. Like torch._dynamo's cache size limit, reaching the limit logs
a warning on the `graphc` logger naming the part of the key that keeps changing.
"""
from __future__ import annotations

import logging
import sys
import threading
from collections import Counter, OrderedDict
from typing import Any, Callable, Sequence

import numpy as np

from . import config
from .tensor import Tensor

logger = logging.getLogger("graphc")
recompiles = logging.getLogger("graphc.recompiles")

DEFAULT_LIMIT = 8


def signature(inputs: Sequence[Any]) -> tuple:
    """What a specialisation depends on per argument: shape, dtype and requires_grad of tensors
    (and arrays), the type and value of everything else (a static argument)."""
    return tuple([(x._shape, x._dtype, x.requires_grad) if isinstance(x, Tensor) else
                  (x.shape, x.dtype.name, False) if isinstance(x, np.ndarray) else
                  ("static", type(x).__name__, _hashable(x))
                  for x in inputs])


def _hashable(value: Any) -> Any:
    """A static argument as a cache key: itself when hashable, else its repr (a list of sizes, say)."""
    try:
        hash(value)
        return value
    except TypeError:
        return _Text(repr(value))


class _Text(str):
    """The repr of an unhashable static value, printed as the value was."""

    def __repr__(self) -> str:
        return str(self)


def _is_static(part: Any) -> bool:
    return isinstance(part, tuple) and len(part) == 3 and part[0] == "static"


def _is_tensor(part: Any) -> bool:
    return isinstance(part, tuple) and len(part) == 3 and isinstance(part[0], tuple) and isinstance(part[1], str)


def _shown(part: Any) -> str:
    if _is_static(part):
        return repr(part[2])
    if _is_tensor(part):
        return f"a {part[1]} tensor of shape {list(part[0])}"
    return repr(part)


def describe_change(name: str, old: Any, new: Any) -> str:
    """One changed part of a key in words: `argument 'x' shape [2, 3] -> [4, 3]`, `argument
    'act' changed from 'relu' to 'tanh'`."""
    if _is_tensor(old) and _is_tensor(new):
        changes = [f"{what} {a} -> {b}" for what, a, b in
                   (("shape", list(old[0]), list(new[0])), ("dtype", old[1], new[1]),
                    ("requires_grad", old[2], new[2])) if a != b]
        return f"{name} " + ", ".join(changes)
    if name == "training mode" and isinstance(old, tuple) and isinstance(new, tuple):
        # one flag per module (model first): the whole model switched, or some of its modules
        if len(set(old)) == len(set(new)) == 1:
            return f"{name} changed from {old[0]} to {new[0]}"
        switched = sum(a != b for a, b in zip(old, new))
        return f"{name} of {switched} of its {len(new)} modules changed"
    return f"{name} changed from {_shown(old)} to {_shown(new)}"


def _show_on_stderr() -> None:
    """GRAPHC_LOG=recompiles: recompile messages reach stderr without any logging set up."""
    if "recompiles" in config.log_topics() and not any(getattr(h, "_graphc", False) for h in recompiles.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[graphc] %(message)s"))
        handler._graphc = True
        recompiles.addHandler(handler)
        recompiles.setLevel(logging.INFO)


class Specializations:
    """A bounded LRU map from specialisation keys to runners. `part_names(key)` names each
    element of a key (keys are flat tuples) for the messages; None marks a part that only
    tells how to read the others (the keyword names of a call)."""

    def __init__(self, owner: str, limit: int, part_names: Callable[[tuple], Sequence[str]]):
        if limit < 1:
            raise ValueError(f"max_specializations must be at least 1, got {limit}")
        self.owner, self.limit, self._part_names = owner, limit, part_names
        self._runners: OrderedDict[tuple, Any] = OrderedDict()
        self._changes: Counter[str] = Counter()
        self._last_key: tuple | None = None
        self._last: tuple[tuple, Any] | None = None  # (key, runner) of the latest call: the most recently used
        self.builds = 0
        self._warned = False
        self._lock = threading.RLock()  # threads asking for one specialisation build it once

    def get(self, key: tuple, build: Callable[[], Any]) -> Any:
        last = self._last
        if last is not None and last[0] == key:  # the same specialisation as the call before: most calls
            return last[1]
        runner = self._runners.get(key)
        if runner is not None:
            try:
                self._runners.move_to_end(key)
            except KeyError:  # dropped by another thread meanwhile: it stays usable by this call
                pass
            self._last = (key, runner)
            return runner
        with self._lock:
            runner = self._runners.get(key)
            if runner is None:
                _show_on_stderr()
                reason = self._reason(key)
                recompiles.info("%s %s: %s", "compiling" if self._last_key is None else "recompiling",
                                self.owner, reason)
                runner = build()
                self.builds += 1
                self._runners[key] = runner
                self._evict()
            self._last_key = key
            self._last = (key, runner)
            return runner

    def _reason(self, key: tuple) -> str:
        """Which parts differ from the previous specialisation's key, compared by name (so a
        keyword argument given or left out is named), counted across recompiles."""
        if self._last_key is None:
            return "first call"
        old = {n: v for n, v in zip(self._part_names(self._last_key), self._last_key) if n is not None}
        new = {n: v for n, v in zip(self._part_names(key), key) if n is not None}
        changed = [n for n in new if n in old and old[n] != new[n]]
        self._changes.update(changed + [n for n in new.keys() ^ old.keys()])
        parts = [describe_change(n, old[n], new[n]) for n in changed]
        parts += [f"{n} given as {_shown(new[n])}" for n in new if n not in old]
        parts += [f"{n} no longer given (was {_shown(old[n])})" for n in old if n not in new]
        return "; ".join(parts) or "a new key"

    def _evict(self) -> None:
        while len(self._runners) > self.limit:
            self._runners.popitem(last=False)
            if not self._warned:
                self._warned = True
                part = self._changes.most_common(1)[0][0] if self._changes else "the arguments"
                logger.warning("%s: compiled %d specialisations, more than max_specializations=%d; dropping the "
                               "least recently used. What keeps changing: %s. Pass inputs of fewer distinct "
                               "shapes, or raise max_specializations.", self.owner, self.builds, self.limit, part)

    def __len__(self) -> int:
        return len(self._runners)

    def values(self) -> list[Any]:
        return list(self._runners.values())
