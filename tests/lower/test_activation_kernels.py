"""Activations compiled with graphc.compile, alone (an elementwise kernel) and after a Linear (in
its matmul epilogue): the float32 math of fastmath.py runs on vectors, no libm call is left, and
forward and backward agree with PyTorch."""
import re
import struct

import numpy as np
import pytest

import graphc
import graphc.nn as nn
import llvmlite.ir as ir
from graphc.lower import fastmath
from graphc.lower.kernel import vector_unit
from runtime.jit import optimized_ir
from test_matmul_epilogue import compiled_eval, kernel_names

rng = np.random.default_rng(11)
LIBM = re.compile(r"@(llvm\.(exp|exp2|log|log2|log10)\.\w+|(exp|log|tanh|erf|erfc|log1p|expm1)f?)\(")

# activation -> (the leading polynomial coefficient of each fastmath function it goes through)
MARKS = {"Tanh": (fastmath.TANH_POLY,), "Sigmoid": (fastmath.EXP_POLY,), "GELU": (fastmath.ERF_POLY, fastmath.ERFC_POLY),
         "GELU(tanh)": (fastmath.TANH_POLY,), "SiLU": (fastmath.EXP_POLY,),
         "Softplus": (fastmath.EXP_POLY, fastmath.LOG_POLY), "ELU": (fastmath.EXP_POLY,),
         "Mish": (fastmath.EXP_POLY, fastmath.LOG_POLY, fastmath.TANH_POLY)}


def activation(library, name: str):
    return library.GELU(approximate="tanh") if name == "GELU(tanh)" else getattr(library, name)()


def hex_float(value: float) -> str:
    """A float32 constant as LLVM prints it: the hex of the double it widens to."""
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", float(np.float32(value))))[0]


def vector_widths(text: str, coefficient: float) -> set[int]:
    """The lane counts of the float vector instructions that use `coefficient` (or minus it: LLVM
    turns c * t + d with c < 0 into d - |c| * t)."""
    constants = (hex_float(coefficient), hex_float(-coefficient))
    return {int(n) for line in text.splitlines() if any(c in line for c in constants)
            for n in re.findall(r"<(\d+) x float>", line)}


def assert_vectorised_without_libm(text: str, name: str) -> None:
    assert not LIBM.search(text), f"{name}: {LIBM.search(text).group(0)} in the optimised IR"
    lanes = vector_unit().lanes(ir.FloatType())
    for polynomial in MARKS[name]:
        widths = vector_widths(text, polynomial[0])
        # AVX-512 hosts: the loop vectoriser may still pick 8 lanes (256-bit) over 16
        assert widths and max(widths) >= 8 and max(widths) <= lanes, (name, polynomial[0], widths)


@pytest.mark.parametrize("name", sorted(MARKS))
def test_elementwise_activation_is_vectorised(monkeypatch, name):
    x = rng.standard_normal((128, 512)).astype(np.float32)
    _, ir_text = compiled_eval(nn.Sequential(activation(nn, name)), x, monkeypatch)
    assert_vectorised_without_libm(optimized_ir(ir_text), name)


@pytest.mark.parametrize("batch", [6, 128])  # dot-product tiles, packed panels
@pytest.mark.parametrize("name", sorted(MARKS))
def test_linear_activation_epilogue_is_vectorised(monkeypatch, name, batch):
    """W1's shape: Linear(512, 512) at batch 128, the activation in its epilogue."""
    graphc.manual_seed(0)
    x = rng.standard_normal((batch, 512)).astype(np.float32)
    _, ir_text = compiled_eval(nn.Sequential(nn.Linear(512, 512), activation(nn, name)), x, monkeypatch)
    names = kernel_names(ir_text)
    assert len(names) == 1 and "_matmul_epilogue_" in names[0], names
    assert_vectorised_without_libm(optimized_ir(ir_text), name)


@pytest.mark.parametrize("batch", [1, 6, 128])  # one row, dot-product tiles, packed panels
@pytest.mark.parametrize("name", sorted(MARKS))
def test_linear_activation_matches_pytorch(batch, name):
    torch = pytest.importorskip("torch")
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 48), activation(nn, name))
    reference = torch.nn.Sequential(torch.nn.Linear(32, 48), activation(torch.nn, name))
    reference.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()})
    x = (rng.standard_normal((batch, 32)) * 3).astype(np.float32)
    grad = rng.standard_normal((batch, 48)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    expected = reference(tx)
    expected.backward(torch.tensor(grad))
    compiled = graphc.compile(model)
    with graphc.no_grad():
        np.testing.assert_allclose(compiled(graphc.tensor(x)).numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    gx = graphc.tensor(x, requires_grad=True)
    out = compiled(gx)
    out.backward(graphc.tensor(grad))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (key, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=key)
