"""JAX, when it is importable: the workload's hand-written numpy reference with jax.numpy as `xp`,
under jax.jit (results waited for with block_until_ready)."""
from __future__ import annotations

import functools
from typing import Any

from .case import Case, Peer, missing, stepping
from .timing import Budget, Measurement, measure


def measure_jax(case: Case, params: dict, budget: Budget) -> Measurement:
    import jax
    import jax.numpy as jnp
    jitted = jax.jit(functools.partial(case.reference, jnp))

    def run(*args: Any) -> Any:
        return jax.block_until_ready(jitted(*args))
    state = jax.tree_util.tree_map(jnp.asarray, case.reference_state(params))
    inputs = tuple(jnp.asarray(x) for x in case.inputs)
    return measure(stepping(run, state, inputs) if case.is_train_step else lambda: run(state, *inputs), budget)


PEER = Peer("jax", "JAX (jit)", measure_jax, lambda: missing("jax"))
