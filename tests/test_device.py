"""graphc.device against torch.device; Tensor.to and Module.to with devices and dtypes."""
import pickle

import pytest

import graphc
import graphc.nn as nn


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_device_prints_and_compares_like_torch(torch):
    for args in (("cpu",), ("cpu:0",), ("cpu", 1)):
        g, t = graphc.device(*args), torch.device(*args)
        assert repr(g) == repr(t) and str(g) == str(t)
        assert (g.type, g.index) == (t.type, t.index)
    assert graphc.device("cpu") == graphc.device(graphc.device("cpu")) == graphc.device(torch.device("cpu"))
    assert graphc.device("cpu") != graphc.device("cpu:0") and graphc.device("cpu") != "cpu"
    assert len({graphc.device("cpu"), graphc.device("cpu")}) == 1
    assert pickle.loads(pickle.dumps(graphc.device("cpu:0"))) == graphc.device("cpu:0")


def test_unknown_and_unavailable_devices_raise(torch):
    with pytest.raises(RuntimeError) as te:
        torch.device("tpu")
    with pytest.raises(RuntimeError) as ge:
        graphc.device("tpu")
    assert str(ge.value) == str(te.value)
    for name in ("cuda", "cuda:0", "mps"):
        with pytest.raises(RuntimeError, match="CPU only: device '(cuda|mps)' is not available"):
            graphc.device(name)
    with pytest.raises(RuntimeError, match="not available"):
        graphc.ones(2).to("cuda")
    with pytest.raises(RuntimeError, match="not available"):
        nn.Linear(2, 2).to(device="cuda")
    with pytest.raises(RuntimeError, match="no CUDA"):
        nn.Linear(2, 2).cuda()


def test_tensor_device_and_to():
    t = graphc.ones(2, 3)
    assert t.device == graphc.device("cpu") and str(t.device) == "cpu"
    assert t.to("cpu") is t and t.to(graphc.device("cpu")) is t and t.cpu() is t
    assert t.to("cpu", graphc.float64).dtype == "float64"
    assert t.to(device="cpu", dtype=graphc.int64).dtype == "int64"
    assert t.to(graphc.float32) is t
    assert t.to(graphc.ones(1, dtype=graphc.float64)).dtype == "float64"
    copied = t.to("cpu", copy=True)
    assert copied is not t and (copied.numpy() == t.numpy()).all()


def test_module_to_device_and_dtype(torch):
    m = nn.Linear(3, 2)
    weight = m.weight
    assert m.to(graphc.device("cpu")) is m and m.to("cpu") is m and m.cpu() is m
    assert m.to(graphc.device("cpu"), graphc.float64).weight.dtype == "float64" and m.weight is weight
    assert m.to(torch.device("cpu"), dtype=torch.float32).weight.dtype == "float32"
    assert m.to(graphc.ones(1, dtype=graphc.float64)).bias.dtype == "float64"
    with pytest.raises(TypeError, match="only accepts floating point"):
        m.to(graphc.int64)
    m.register_buffer("count", graphc.tensor([1]))
    assert m.type(graphc.float32).count.dtype == "float32"  # type() casts integer buffers too
