"""run_passes: the loop every pass pipeline runs (graph passes, kernel-program passes), outside
both packages so that either can import it."""
from __future__ import annotations

import time
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def run_passes(value: T, passes: Sequence[Callable[[T], T]], check: Callable[[T], T],
               after_each: Callable[[str, T, float], None] | None = None) -> T:
    """Each pass in order, `check` (a verifier returning what it was given) after each one, and
    `after_each(name, result, seconds)` told: for graph passes and kernel-program passes alike."""
    for p in passes:
        start = time.perf_counter()
        value = check(p(value))
        if after_each is not None:
            after_each(p.__name__, value, time.perf_counter() - start)
    return value
