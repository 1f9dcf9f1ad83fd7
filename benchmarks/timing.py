"""Wall-time samples, each batch after a settling sleep, taken in rounds across the peers."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Budget:
    """How long to measure. Each case is timed in `rounds`, every peer once a round, so a load
    that comes and goes (other jobs on the machine) meets every peer, and each peer's least
    disturbed round can be told apart; a round samples a peer for about `seconds` (at least
    `min_repeat` calls, at most `max_repeat`). Each compile time is the median of
    `compile_repeat` fresh processes."""

    name: str
    rounds: int
    settle_seconds: float
    seconds: float
    min_repeat: int
    max_repeat: int
    compile_repeat: int


FULL = Budget("full", rounds=5, settle_seconds=0.5, seconds=0.3, min_repeat=5, max_repeat=2000, compile_repeat=3)
QUICK = Budget("quick", rounds=1, settle_seconds=0.1, seconds=0.05, min_repeat=3, max_repeat=200, compile_repeat=1)
BUDGETS = {budget.name: budget for budget in (FULL, QUICK)}


@dataclass(frozen=True)
class Timed:
    """A peer ready to run a case: `value` is its result at the second call (for a train step the
    loss after one update), checked against graphc's; `sample(budget)` times one round in µs."""

    value: np.ndarray
    sample: Callable[[Budget], list[float]]


def samples_us(call: Callable[[], Any], budget: Budget) -> list[float]:
    """Wall times of `call` in µs. It first sleeps: OpenBLAS and OpenMP worker threads (and
    graphc's pool) keep spinning for a while after their last call, and would steal the other core
    from the next framework measured (with two cores that halved graphc's threaded kernels).
    Warm-up calls (a tenth of the budget, at least 3) size the repeat count."""
    time.sleep(budget.settle_seconds)
    start, warmup = time.perf_counter(), 0
    while warmup < 3 or time.perf_counter() - start < budget.seconds / 10:
        call()
        warmup += 1
    per_call = (time.perf_counter() - start) / warmup
    repeat = int(min(max(budget.seconds / per_call, budget.min_repeat), budget.max_repeat))
    samples = []
    for _ in range(repeat):
        begin = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - begin) / 1e3)
    return samples


def timed(call: Callable[[], Any], result: Callable[[Any], Any] = np.asarray) -> Timed:
    """The first call (graphc compiles there), then the second's value through `result`."""
    call()
    return Timed(np.asarray(result(call())), lambda budget: samples_us(call, budget))
