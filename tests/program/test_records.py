"""Kernel names, the program's text and its kernels' provenance."""
import graphc
import graphc.nn as nn
from graphc.compiled import build_differentiable, trainable_inputs
from graphc.stages import Driver


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())


def programs_of(model, x):
    seen = []
    program = graphc.trace(model, x)
    params = [n for n, p in program.params.items() if p.requires_grad]
    build_differentiable(program, trainable_inputs(program, params), Driver(seen.append), "test")
    return {s.label: s.value for s in seen if s.name == "kernels"}


def test_forward_and_backward_kernels_are_named_after_their_modules():
    programs = programs_of(Net(), graphc.randn(4, 6))
    backward = [k for label, p in programs.items() if "backward" in label for k in p.kernels]
    names = [k.name for k in backward]
    assert any(n.startswith("k") and "_matmul_grad_fc1" in n for n in names), names
    assert any("_matmul_grad_fc2" in n for n in names), names
    forward = [k.name for label, p in programs.items() if "backward" not in label for k in p.kernels]
    assert any("matmul_epilogue_fc1" in n and "grad" not in n for n in forward), forward
    for kernel in backward:
        assert kernel.module_paths and set(kernel.module_paths) <= {"fc1", "fc2", ""}, kernel


def test_the_program_prints_its_graph_then_its_kernels_in_schedule_order():
    program = next(iter(programs_of(Net(), graphc.randn(4, 6)).values()))
    text = str(program)
    graph_text, kernels_text = text.split("\nkernels: ")
    assert graph_text == str(program.graph)
    lines = kernels_text.splitlines()
    assert lines[0] == f"{len(program.kernels)}, in schedule order"
    assert [line.split()[1] for line in lines[1:]] == [k.name for k in program.kernels]
