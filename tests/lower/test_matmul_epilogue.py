"""matmul_epilogue: the matmul kernel with its body applied before each store, against numpy,
and compiled models whose Linear layers become one kernel each."""
import re

import numpy as np
import pytest

import graphc
import graphc.compiled
import graphc.nn as nn
from graphc.lower import lower
from graphc.ops.fused import Body
from graphc.stages import Driver
from harness import op_graph, run_op, tolerance
from test_linalg import operands

rng = np.random.default_rng(6)


def body(dtype, *steps):
    return Body(tuple((op, args, (), dtype) for op, args in steps))


# name -> (extra operand shapes given out [M, N], body)
BODIES = {
    "bias": (lambda m, n: [(n,)], [("add", ("in0", "in1"))]),
    "bias+relu": (lambda m, n: [(n,)], [("add", ("in0", "in1")), ("relu", ("s0",))]),
    "bias+tanh": (lambda m, n: [(n,)], [("add", ("in1", "in0")), ("tanh", ("s0",))]),
    "residual": (lambda m, n: [(m, n)], [("add", ("in0", "in1"))]),
    "scale, column and residual": (lambda m, n: [(), (m, 1), (m, n)],
                                   [("mul", ("in0", "in1")), ("sub", ("s0", "in2")), ("maximum", ("s1", "in3"))]),
}


SHAPES = [(1, 9, 13), (1, 64, 37), (6, 7, 9), (13, 19, 43), (17, 33, 64),  # M = 1; N not a whole vector
          (10, 3, 5), (40, 70, 26)]  # shallower than dot tiles; masked columns under row tiles
TRANSPOSES = [(False, False), (False, True), (True, False), (True, True)]
# every shape in every transpose; bodies and dtypes cycle so each body runs in both dtypes
CASES = [(shape, t, sorted(BODIES)[i % len(BODIES)], ("float32", "float64")[i % 2])
         for i, (shape, t) in enumerate((shape, t) for shape in SHAPES for t in TRANSPOSES)]


@pytest.mark.parametrize("shape, transposes, name, dtype", CASES)
def test_epilogue_matches_numpy(shape, transposes, name, dtype):
    (m, k, n), (ta, tb) = shape, transposes
    shapes, steps = BODIES[name]
    a, b = operands((m, k), (k, n), ta, tb, dtype)
    extra = [rng.uniform(-1, 1, s).astype(dtype) for s in shapes(m, n)]
    steps = body(dtype, *steps)
    native, expected = run_op("matmul_epilogue", [a, b, *extra], transpose_a=ta, transpose_b=tb, body=steps)
    np.testing.assert_allclose(native, expected, **tolerance(dtype))


@pytest.mark.parametrize("a_shape, b_shape, tb", [((2, 3, 5, 7), (7, 6), False), ((3, 5, 7), (3, 7, 4), False),
                                                  ((3, 5, 7), (3, 7, 20), True), ((4, 9, 16), (16, 33), False)])
def test_batched_epilogue_reads_operands_by_flat_rows(a_shape, b_shape, tb):
    a, b = operands(a_shape, b_shape, False, tb, "float32")
    out_shape = np.matmul(a, np.swapaxes(b, -1, -2) if tb else b).shape
    bias, residual = rng.uniform(-1, 1, out_shape[-1:]), rng.uniform(-1, 1, out_shape)
    steps = body("float32", ("add", ("in0", "in1")), ("sigmoid", ("s0",)), ("mul", ("s1", "in2")))
    native, expected = run_op("matmul_epilogue", [a, b, bias.astype("float32"), residual.astype("float32")],
                              transpose_a=False, transpose_b=tb, body=steps)
    np.testing.assert_allclose(native, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ta, tb", [(False, False), (False, True), (True, True)])
@pytest.mark.parametrize("m", [1, 67])
def test_threaded_epilogue_matches_numpy(monkeypatch, m, ta, tb):
    import graphc.config
    monkeypatch.setattr(graphc.config, "usable_cpus", lambda: 4)
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "3")
    k, n = 2048, 512
    a, b = operands((m, k), (k, n), ta, tb, "float32")
    bias, residual = rng.uniform(-1, 1, (n,)).astype("float32"), rng.uniform(-1, 1, (m, n)).astype("float32")
    steps = body("float32", ("add", ("in0", "in1")), ("tanh", ("s0",)), ("add", ("s1", "in2")))
    inputs, attrs = [a, b, bias, residual], {"transpose_a": ta, "transpose_b": tb, "body": steps}
    assert "_parts" in lower(op_graph("matmul_epilogue", inputs, **attrs)).ir_text  # the split happens
    native, expected = run_op("matmul_epilogue", inputs, **attrs)
    np.testing.assert_allclose(native, expected, rtol=1e-4, atol=1e-4)


def compiled_eval(model, x, monkeypatch):
    """The model compiled for eval without grad: its output on x and the LLVM IR of its forward."""
    stages = []
    monkeypatch.setattr(graphc.compiled, "Driver", lambda: Driver(observe=stages.append))
    with graphc.no_grad():
        out = graphc.compile(model.eval())(graphc.tensor(x)).numpy()
    (ir_text,) = [s.value for s in stages if s.name == "llvm" and s.label == "forward"]  # not the prepare graph's
    return out, ir_text


def kernel_names(ir_text):
    """The kernel functions of a lowered module (a threaded kernel's parts are not kernels)."""
    names = re.findall(r"^define internal \S+ @\"?([\w.]+)\"?\(", ir_text, re.M)
    return [name for name in names if not name.endswith("_parts")]


class Residual(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return nn.functional.relu(self.fc(x)) + x


@pytest.mark.parametrize("make, width", [
    (lambda: nn.Sequential(nn.Linear(7, 19), nn.ReLU()), 7),
    (lambda: nn.Sequential(nn.Linear(33, 5), nn.Tanh(), nn.Linear(5, 3)), 33),
    (lambda: Residual(21), 21),
])
@pytest.mark.parametrize("batch", [1, 6])
def test_compiled_linear_layers_are_one_kernel_each(monkeypatch, make, width, batch):
    graphc.manual_seed(0)
    model = make()
    x = rng.standard_normal((batch, width)).astype(np.float32)
    with graphc.no_grad():
        expected = model.eval()(graphc.tensor(x)).numpy()
    out, ir_text = compiled_eval(model, x, monkeypatch)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    linears = sum(isinstance(m, nn.Linear) for m in model.modules())
    assert [re.sub(r"^k\d+_", "", n).startswith("matmul_epilogue") for n in kernel_names(ir_text)] == [True] * linears


@pytest.mark.parametrize("batch", [1, 128])
def test_w1_eval_forward_is_three_kernels(monkeypatch, batch):
    """MLP 784-512-512-10 with ReLU: one kernel per Linear, bias and ReLU in the epilogues."""
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    out, ir_text = compiled_eval(model, x, monkeypatch)
    names = kernel_names(ir_text)
    assert len(names) == 3 and all("_matmul_epilogue_" in name for name in names), names
    w = [p.numpy() for p in model.parameters()]
    h = np.maximum(x @ w[0].T + w[1], 0)
    h = np.maximum(h @ w[2].T + w[3], 0)
    np.testing.assert_allclose(out, h @ w[4].T + w[5], rtol=1e-4, atol=1e-4)
