"""Medians of wall time, each measurement after a settling sleep."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Budget:
    """How long to measure: samples for about `seconds` (at least `min_repeat`, at most
    `max_repeat`), and how many fresh processes time each compile."""

    name: str
    settle_seconds: float
    seconds: float
    min_repeat: int
    max_repeat: int
    compile_repeat: int


FULL = Budget("full", settle_seconds=0.5, seconds=1.0, min_repeat=10, max_repeat=5000, compile_repeat=3)
QUICK = Budget("quick", settle_seconds=0.1, seconds=0.05, min_repeat=3, max_repeat=200, compile_repeat=1)
BUDGETS = {budget.name: budget for budget in (FULL, QUICK)}


@dataclass(frozen=True)
class Measurement:
    median_us: float
    repeat: int
    value: np.ndarray  # the second call's result (a train step's loss after one update), checked against graphc's


def median_us(call: Callable[[], Any], budget: Budget) -> tuple[float, int]:
    """Median wall time of `call` in µs, and the number of samples. It first sleeps: OpenBLAS and
    OpenMP worker threads keep spinning for a while after their last call, and would steal the
    other core from the next framework measured (with two cores that halved graphc's threaded
    kernels). Warm-up calls (a tenth of the budget, at least 3) size the repeat count."""
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
    return statistics.median(samples), repeat


def measure(call: Callable[[], Any], budget: Budget, result: Callable[[Any], Any] = np.asarray) -> Measurement:
    """The first call (graphc compiles there), the second's value through `result`, then the median."""
    call()
    value = np.asarray(result(call()))
    median, repeat = median_us(call, budget)
    return Measurement(median, repeat, value)
