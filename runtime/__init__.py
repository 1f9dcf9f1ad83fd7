"""Native runtime: JIT compilation and execution of compiled graphs."""
from . import pool  # noqa: F401  (every load adopts the pool: its import belongs here, not in the first compiled call)
