"""The kernel level, between the graph and LLVM: a Program holds explicit kernels (loop-nest
templates, several outputs allowed, the nodes and module paths each came from), buffers (slot,
offset, lifetime, in place) and the schedule. Passes over it are Program -> Program, verified
after each:

records.py   Kernel, Buffer, Location, Program (frozen, printable)
build.py     kernel_program: one kernel per computed node of the kernel graph
fuse_reductions.py  a reduction and the elementwise kernel of its operand in one pass
group.py     group_kernels: multi-output map kernels (an optimizer update in one pass)
schedule.py  schedule_kernels: checks first, else the dependence order
plan.py      plan_program: buffer planning (lifetimes, reuse, in-place updates)
verify.py    verify_program
"""
from __future__ import annotations

from typing import Callable

from ..ir import Graph
from ..pass_runner import run_passes
from .build import kernel_program
from .fuse_reductions import fuse_reductions
from .group import group_kernels
from .plan import format_plan, plan_program, workspace_bytes
from .records import ALIASES, Buffer, Kernel, Location, Program, kernel_name
from .schedule import schedule_kernels
from .verify import ProgramError, verify_program

PROGRAM_PASSES: tuple[Callable[[Program], Program], ...] = (fuse_reductions, group_kernels, schedule_kernels)


def build_program(graph: Graph, after_each: Callable[[str, Program, float], None] | None = None) -> Program:
    """The kernel graph's program after PROGRAM_PASSES (not yet planned), verified after each."""
    return run_passes(verify_program(kernel_program(graph)), PROGRAM_PASSES, verify_program, after_each)


def planned(program: Program, in_place: bool = True) -> Program:
    """`program` with its buffer plan, verified."""
    return verify_program(plan_program(program, in_place))


__all__ = ["ALIASES", "Buffer", "Kernel", "Location", "Program", "ProgramError", "PROGRAM_PASSES", "build_program",
           "format_plan", "fuse_reductions", "group_kernels", "kernel_name", "kernel_program", "plan_program", "planned",
           "schedule_kernels", "verify_program", "workspace_bytes"]
