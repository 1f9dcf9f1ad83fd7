"""PyTorch's `torch.accelerator` as graphc sees it: there is none; code that asks
(`if torch.accelerator.is_available(): ...`) takes its CPU branch."""
from __future__ import annotations

from typing import Any


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def current_accelerator(check_available: bool = False) -> Any:
    if check_available:
        raise RuntimeError("graphc runs on the CPU only: there is no accelerator")
    return None
