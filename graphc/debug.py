"""GRAPHC_DEBUG, the one debug knob: 1 timings, 2 traced graph, 3 graph after each pass,
4 LLVM IR, 5 assembly. `graphc dump` prints the same stages with the same printers."""
from __future__ import annotations

import os


def debug_level() -> int:
    try:
        return int(os.environ.get("GRAPHC_DEBUG", "0"))
    except ValueError:
        return 0


def log(level: int, text: str) -> None:
    """Print `text` when GRAPHC_DEBUG is at least `level`."""
    if debug_level() >= level:
        print(f"[graphc] {text}", flush=True)
