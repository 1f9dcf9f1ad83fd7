"""The lowering table covers the op table, and hot loops come out vectorised."""
import re

from graphc.lower import EMITTERS
from graphc.ops import OPS
from harness import op_graph
from graphc.lower import lower
from runtime.jit import optimized_ir

import numpy as np

VECTOR = re.compile(r"<(8|16) x float>")


def test_every_op_has_an_emitter():
    missing = sorted(set(OPS) - set(EMITTERS))
    assert not missing, f"ops without an LLVM emitter in graphc.lower.EMITTERS: {missing}"
    assert not set(EMITTERS) - set(OPS), "emitters for ops that do not exist"


def test_float32_add_vectorises():
    a = np.zeros((64, 1024), np.float32)
    assert VECTOR.search(optimized_ir(lower(op_graph("add", [a, a[0]])).ir_text))


def test_transpose_b_matmul_vectorises():
    x, w = np.zeros((1, 784), np.float32), np.zeros((512, 784), np.float32)
    text = optimized_ir(lower(op_graph("matmul", [x, w], transpose_a=False, transpose_b=True)).ir_text)
    assert VECTOR.search(text)
