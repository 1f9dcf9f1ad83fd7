"""Compile times of W1, each timed in a fresh process from the compile call to its first result:
cold with GRAPHC_CACHE_DIR a new empty folder, warm the next process on the same folder (the
whole build then comes from graphc's disk cache). Imports happen before the clock starts.

The first result includes one run of the compiled call, which for the W1 train step alone takes
4-5 ms; the compile time proper (what the issue's targets bound) is the first call's time less
the median of the calls after it, which is reported beside it.

Run by the benchmark as `python -m benchmarks.compile_times CASE`; it prints
{"seconds": <first call>, "steady_seconds": <median of the next calls>}."""
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
STEADY_CALLS = 5


def _first_result(key: str, cache_folder: str) -> dict:
    env = dict(os.environ, GRAPHC_CACHE_DIR=cache_folder)
    env.pop("GRAPHC_CACHE", None)  # on, whatever the caller's shell says
    return run_module("compile_times", key, env=env)


def measure_compile_times(budget: Budget) -> dict[str, dict]:
    """Per case the median cold and warm seconds over `budget.compile_repeat` fresh cache folders:
    to the first result (`cold_s`, `warm_s`) and of compiling alone (`cold_compile_s`,
    `warm_compile_s`: the first call less a steady call)."""
    results = {}
    for key in CASES:
        runs: dict[str, list[dict]] = {"cold": [], "warm": []}
        for _ in range(budget.compile_repeat):
            with tempfile.TemporaryDirectory(prefix="graphc-bench-cache-") as folder:
                runs["cold"].append(_first_result(key, folder))
                runs["warm"].append(_first_result(key, folder))
        results[key] = {"title": find_case(key).title}
        for kind, samples in runs.items():
            first = [r["seconds"] for r in samples]
            results[key].update({f"{kind}_s": statistics.median(first), f"{kind}_samples_s": first,
                                 f"{kind}_compile_s": statistics.median(r["seconds"] - r["steady_seconds"]
                                                                        for r in samples)})
    return results


def main(key: str) -> None:
    from .peer_graphc import build_model, compiled_call
    case = find_case(key)
    with compiled_call(case, build_model(case)) as call:
        start = time.perf_counter()
        call()
        seconds = time.perf_counter() - start
        steady = []
        for _ in range(STEADY_CALLS):
            start = time.perf_counter()
            call()
            steady.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "steady_seconds": statistics.median(steady)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
