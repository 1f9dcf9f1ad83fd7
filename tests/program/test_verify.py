"""verify_program catches what a broken pass would do."""
import dataclasses

import pytest

from graphc.ir import GraphBuilder
from graphc.program import ProgramError, group_kernels, kernel_program, planned, verify_program
from graphc.program.records import Location


def chain():
    g = GraphBuilder()
    x = g.input("x", "data", (4,), "float32")
    a = g.add("exp", (x,), {}, (4,), "float32")
    b = g.add("neg", (a,), {}, (4,), "float32")
    total = g.add("sum", (b,), {"dims": (0,), "keepdim": False}, (), "float32")
    return g.finish([total])


def test_a_sound_program_passes():
    program = planned(group_kernels(kernel_program(chain())))
    assert verify_program(program) is program


def test_a_schedule_that_reads_before_it_computes_fails():
    program = kernel_program(chain())
    with pytest.raises(ProgramError, match="before it is computed"):
        verify_program(dataclasses.replace(program, kernels=program.kernels[::-1]))


def test_a_node_in_two_kernels_or_in_none_fails():
    program = kernel_program(chain())
    with pytest.raises(ProgramError, match="computed by kernels"):
        verify_program(dataclasses.replace(program, kernels=(program.kernels[0], *program.kernels)))
    with pytest.raises(ProgramError, match="no kernel computes"):
        verify_program(dataclasses.replace(program, kernels=program.kernels[:-1]))


def test_a_value_kept_in_registers_that_another_kernel_reads_fails():
    program = group_kernels(kernel_program(chain()))
    group = program.kernels[0]
    assert group.nodes == (1, 2) and group.outputs == (2,)  # exp stays in registers
    leaky = dataclasses.replace(program.kernels[1], inputs=(1, 2))
    with pytest.raises(ProgramError, match="keeps in registers"):
        verify_program(dataclasses.replace(program, kernels=(group, leaky)))


def test_two_live_values_in_the_same_workspace_bytes_fail():
    g = GraphBuilder()
    x = g.input("x", "data", (4,), "float32")
    a = g.add("sum", (x,), {"dims": (0,), "keepdim": True}, (1,), "float32")
    b = g.add("sum", (x,), {"dims": (0,), "keepdim": True}, (1,), "float32")
    out = g.add("add", (a, b), {}, (1,), "float32")
    program = planned(kernel_program(g.finish([out])))
    buffers = tuple(dataclasses.replace(buf, location=Location("workspace", 0)) if buf.value in (a, b) else buf
                    for buf in program.buffers)
    with pytest.raises(ProgramError, match="live at once"):
        verify_program(dataclasses.replace(program, buffers=buffers))
