"""JAX, when it is importable: the workload's hand-written numpy reference with jax.numpy as `xp`,
under jax.jit (results waited for with block_until_ready)."""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator

from .case import Case, Peer, missing, stepping
from .timing import Timed, timed


@contextlib.contextmanager
def prepare_jax(case: Case, params: dict) -> Iterator[Timed]:
    import jax
    import jax.numpy as jnp
    jitted = jax.jit(functools.partial(case.reference, jnp))

    def run(*args: Any) -> Any:
        return jax.block_until_ready(jitted(*args))
    state = jax.tree_util.tree_map(jnp.asarray, case.reference_state(params))
    inputs = tuple(jnp.asarray(x) for x in case.inputs)
    yield timed(stepping(run, state, inputs) if case.is_train_step else lambda: run(state, *inputs))


PEER = Peer("jax", "JAX (jit)", prepare_jax, lambda: missing("jax"))
