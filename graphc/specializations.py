"""The live specialisations of one compiled model: built on first use, least recently used
dropped past a limit (their native code is released with them), and recompiles logged.

Each specialisation costs about 1-2 MB of native code, so a model called with ever new batch
sizes would grow without bound. Like torch._dynamo's cache size limit, reaching the limit logs
a warning on the `graphc` logger naming the part of the key that keeps changing.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from typing import Any, Callable, Sequence

logger = logging.getLogger("graphc")

DEFAULT_LIMIT = 8


class Specializations:
    """A bounded LRU map from specialisation keys to runners. `part_names(key)` names each
    element of a key (keys are flat tuples) for the messages."""

    def __init__(self, owner: str, limit: int, part_names: Callable[[tuple], Sequence[str]]):
        if limit < 1:
            raise ValueError(f"max_specializations must be at least 1, got {limit}")
        self.owner, self.limit, self._part_names = owner, limit, part_names
        self._runners: OrderedDict[tuple, Any] = OrderedDict()
        self._changes: Counter[str] = Counter()
        self._last_key: tuple | None = None
        self.builds = 0
        self._warned = False
        self._lock = threading.RLock()  # threads asking for one specialisation build it once

    def get(self, key: tuple, build: Callable[[], Any]) -> Any:
        runner = self._runners.get(key)
        if runner is not None:
            self._touch(key)
            return runner
        with self._lock:
            runner = self._runners.get(key)
            if runner is None:
                reason = self._reason(key)
                runner = build()
                self.builds += 1
                self._runners[key] = runner
                logger.info("%s: compiled a new specialisation (%s)", self.owner, reason)
                self._evict()
            self._last_key = key
            return runner

    def _touch(self, key: tuple) -> None:
        try:
            self._runners.move_to_end(key)
        except KeyError:  # dropped by another thread meanwhile: it stays usable by this call
            pass

    def _reason(self, key: tuple) -> str:
        """Which parts differ from the previous specialisation, counted across recompiles."""
        if self._last_key is None:
            return "first call"
        old = self._last_key
        names = self._part_names(key)
        changed = [n for n, a, b in zip(names, old, key) if a != b] if len(old) == len(key) else ["arguments"]
        self._changes.update(changed)
        parts = [f"{n}: {a!r} -> {b!r}" for n, a, b in zip(names, old, key) if a != b] or ["arguments"]
        return "; ".join(parts)

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
