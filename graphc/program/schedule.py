"""schedule_kernels, a Program -> Program pass: the order the entry point runs the kernels in.

Checks run as early as their inputs allow, so a bad input is reported before any work is done
and the in-place updates (which must follow every check) are possible in more programs; the
other kernels keep the order they have, as far as the dependences allow (a topological order,
ties broken by the current position)."""
from __future__ import annotations

import networkx as nx

from .records import Program
from .verify import kernel_dag


def schedule_kernels(program: Program) -> Program:
    dag = kernel_dag(program)
    kernels = program.kernels

    def priority(k: int) -> tuple[int, int]:
        return (0 if kernels[k].template == "check" else 1, k)

    order = list(nx.lexicographical_topological_sort(dag, key=priority))
    if order == list(range(len(kernels))):
        return program
    return Program(program.graph, tuple(kernels[k] for k in order))
