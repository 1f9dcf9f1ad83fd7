"""GRAPHC_DEBUG, the one debug knob: 1 timings, 2 traced and optimized graphs, 3 the graph after
each pass, kernels and the buffer plan, 4 LLVM IR, 5 assembly. Messages go through the
`graphc.debug` logger to stderr, never stdout; `graphc dump` prints the same stages with the same printers."""
from __future__ import annotations

import logging
import sys

from .config import env_int

logger = logging.getLogger("graphc.debug")  # its own level and handler: the `graphc` logger stays the user's
logger.propagate = False
logger.setLevel(logging.DEBUG)


class _Stderr(logging.Handler):
    """Writes to whatever sys.stderr is at the time (test capture and redirection included)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # a logging failure must not break a compile
            self.handleError(record)


_handler = _Stderr()
_handler.setFormatter(logging.Formatter("[graphc] %(message)s"))


def debug_level() -> int:
    """GRAPHC_DEBUG, 0 (off) when unset; a value that is not a level warns and counts as 0."""
    return env_int("GRAPHC_DEBUG", 0, minimum=0)


def log(level: int, text: str) -> None:
    """Log `text` on the `graphc` logger when GRAPHC_DEBUG is at least `level`."""
    if debug_level() >= level:
        if _handler not in logger.handlers:
            logger.addHandler(_handler)
        logger.debug(text)
