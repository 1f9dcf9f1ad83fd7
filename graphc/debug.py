"""GRAPHC_DEBUG, the one debug knob: 1 timings, 2 traced graph, 3 graph after each pass,
4 LLVM IR, 5 assembly. `graphc dump` prints the same stages with the same printers."""
from __future__ import annotations

from .config import env_int


def debug_level() -> int:
    """GRAPHC_DEBUG, 0 (off) when unset; a value that is not a level warns and counts as 0."""
    return env_int("GRAPHC_DEBUG", 0, minimum=0)


def log(level: int, text: str) -> None:
    """Print `text` when GRAPHC_DEBUG is at least `level`."""
    if debug_level() >= level:
        print(f"[graphc] {text}", flush=True)
