"""Compile times of W1, each timed in a fresh process from the compile call to its first result:
cold with GRAPHC_CACHE_DIR a new empty folder, warm the next process on the same folder (the
object code then comes from graphc's disk cache). Imports happen before the clock starts.

Run by the benchmark as `python -m benchmarks.compile_times CASE`; it prints {"seconds": ...}."""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

from .case import find_case
from .fresh_process import run_module
from .timing import Budget

CASES = ("W1_inference_b1", "W1_train_b128")


def _first_result_seconds(key: str, cache_folder: str) -> float:
    env = dict(os.environ, GRAPHC_CACHE_DIR=cache_folder)
    env.pop("GRAPHC_CACHE", None)  # on, whatever the caller's shell says
    return run_module("compile_times", key, env=env)["seconds"]


def measure_compile_times(budget: Budget) -> dict[str, dict]:
    """Per case the median cold and warm seconds over `budget.compile_repeat` fresh cache folders."""
    results = {}
    for key in CASES:
        cold, warm = [], []
        for _ in range(budget.compile_repeat):
            with tempfile.TemporaryDirectory(prefix="graphc-bench-cache-") as folder:
                cold.append(_first_result_seconds(key, folder))
                warm.append(_first_result_seconds(key, folder))
        results[key] = {"title": find_case(key).title, "cold_s": statistics.median(cold),
                        "warm_s": statistics.median(warm), "cold_samples_s": cold, "warm_samples_s": warm}
    return results


def main(key: str) -> None:
    from .peer_graphc import build_model, compiled_call
    case = find_case(key)
    with compiled_call(case, build_model(case)) as call:
        start = time.perf_counter()
        call()
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main(*sys.argv[1:])
