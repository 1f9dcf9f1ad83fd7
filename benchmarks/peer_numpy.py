"""numpy: each workload's hand-written reference (forward, train step by hand, `a @ b`), timed in a
subprocess whose environment lacks OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, so OpenBLAS picks its
own kernel for this CPU. The subprocess reads graphc's weights from an .npz file, answers with
JSON on stdout and leaves its checked value in an .npy file.

Run by the benchmark as `python -m benchmarks.peer_numpy CASE FOLDER BUDGET|value`, or
`python -m benchmarks.peer_numpy --describe` for the BLAS it would use (via threadpoolctl)."""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
from typing import Iterator

import numpy as np

from .case import Case, Peer, find_case, stepping
from .fresh_process import run_module
from .timing import BUDGETS, Timed, samples_us, timed

UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # they pin OpenBLAS to a kernel or a cache size


def _run(*args: str) -> dict:
    return run_module("peer_numpy", *args, env={name: value for name, value in os.environ.items() if name not in UNSET})


@contextlib.contextmanager
def prepare_numpy(case: Case, params: dict) -> Iterator[Timed]:
    """Every round is a fresh subprocess; the first one only leaves the value to check."""
    with tempfile.TemporaryDirectory() as folder:
        np.savez(os.path.join(folder, "params.npz"), **params)
        _run(case.key, folder, "value")
        value = np.load(os.path.join(folder, "value.npy"))
        yield Timed(value, lambda budget: _run(case.key, folder, budget.name)["samples_us"])


def describe() -> dict:
    """The subprocess's numpy and BLAS libraries (threadpoolctl's report, when it is installed)."""
    return _run("--describe")


def _blas() -> list[dict] | str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{key: library.get(key) for key in keys} for library in threadpool_info()]


def main(argv: list[str]) -> None:
    if argv == ["--describe"]:
        print(json.dumps({"numpy": np.__version__, "blas": _blas()}))
        return
    key, folder, budget = argv
    case = find_case(key)
    with np.load(os.path.join(folder, "params.npz")) as saved:
        state = case.reference_state({name: saved[name] for name in saved.files})
    reference = functools.partial(case.reference, np)
    call = stepping(reference, state, case.inputs) if case.is_train_step else lambda: reference(state, *case.inputs)
    if budget == "value":
        np.save(os.path.join(folder, "value.npy"), timed(call).value)
        print("{}")
    else:
        print(json.dumps({"samples_us": samples_us(call, BUDGETS[budget])}))


PEER = Peer("numpy", "numpy", prepare_numpy, lambda: None)

if __name__ == "__main__":
    main(sys.argv[1:])
