"""graphc.save / graphc.load: exact round trips, atomic replacement, and files that must be refused."""
import io
import json
import math
import os
import pathlib
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
from collections import OrderedDict

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from graphc import serialization

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _assert_same(a, b, path="obj"):
    """Equal values of exactly the same types, all the way down (tensors: dtype, shape, bytes)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, graphc.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert a.numpy().tobytes() == b.numpy().tobytes(), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for (ka, va), kb in zip(a.items(), b):
            assert type(ka) is type(kb), f"{path}: key {ka!r}"
            _assert_same(va, b[kb], f"{path}[{ka!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


def _round_trip(obj, tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    graphc.save(obj, path)
    return graphc.load(path)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.register_buffer("steps", graphc.tensor(0))
        self.fc2 = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc2(graphc.relu(self.fc1(x)))


def _adam_like_state(torch):
    """An optimizer state_dict shaped exactly as torch's Adam makes it, with graphc tensors."""
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()

    def convert(value):
        if isinstance(value, torch.Tensor):
            return graphc.tensor(value.detach().numpy())
        if isinstance(value, dict):
            return type(value)((k, convert(v)) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return type(value)(convert(v) for v in value)
        return value
    return convert(opt.state_dict())


def test_state_dict_round_trip_loads_into_a_model(tmp_path):
    graphc.manual_seed(0)
    source, target = Net(), Net()
    source.steps.fill_(7)
    loaded = _round_trip(source.state_dict(), tmp_path)
    _assert_same(source.state_dict(), loaded)
    assert repr(target.load_state_dict(loaded)) == "<All keys matched successfully>"
    x = graphc.randn(5, 4)
    assert np.array_equal(target(x).detach().numpy(), source(x).detach().numpy())
    assert target.steps.item() == 7 and target.steps.dtype == graphc.int64


def test_state_dict_keys_are_the_safetensors_keys(tmp_path, torch):
    """A graphc state_dict file is a plain safetensors file PyTorch loads with its own tools."""
    from safetensors.torch import load_file
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    graphc.save(model.state_dict(), tmp_path / "m.safetensors")
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    theirs.load_state_dict(load_file(str(tmp_path / "m.safetensors")))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(theirs(torch.from_numpy(x)).detach().numpy(), model(graphc.tensor(x)).detach().numpy(),
                               rtol=1e-6, atol=1e-6)


def test_plain_safetensors_file_loads_as_a_state_dict(tmp_path, torch):
    from safetensors.torch import save_file
    theirs = torch.nn.Linear(4, 3)
    save_file(theirs.state_dict(), str(tmp_path / "t.safetensors"))
    loaded = graphc.load(tmp_path / "t.safetensors")
    assert type(loaded) is OrderedDict and set(loaded) == {"weight", "bias"}
    ours = nn.Linear(4, 3)
    ours.load_state_dict(loaded)
    assert np.array_equal(ours.weight.numpy(), theirs.weight.detach().numpy())


def test_optimizer_state_dict_round_trip(tmp_path, torch):
    state = _adam_like_state(torch)
    assert isinstance(state["state"][0]["step"], graphc.Tensor) and state["state"][0]["step"].ndim == 0
    loaded = _round_trip(state, tmp_path)
    _assert_same(state, loaded)
    assert list(loaded["state"]) == [0, 1] and loaded["param_groups"][0]["betas"] == (0.9, 0.999)


@pytest.mark.parametrize("make", [lambda ps: graphc.optim.Adam(ps), lambda ps: graphc.optim.SGD(ps, lr=0.1, momentum=0.9)])
def test_graphc_optimizer_state_dict_round_trip(tmp_path, make):
    model = Net()
    optimizer = make(model.parameters())
    model(graphc.randn(3, 4)).sum().backward()
    optimizer.step()
    _assert_same(optimizer.state_dict(), _round_trip(optimizer.state_dict(), tmp_path))


def test_nested_checkpoint_keeps_every_type(tmp_path):
    graphc.manual_seed(0)
    model = Net()
    shared = graphc.randn(2)
    checkpoint = {
        "epoch": 3, "model": model.state_dict(), "lr": 0.1, "best": float("inf"), "worst": -math.inf,
        "missing": float("nan"), "done": False, "note": "ünïcode / with slashes", "nothing": None,
        "keys": {1: "int", "1": "str", 2.5: "float", True: "bool", None: "none", (1, "a"): "tuple"},
        "shapes": [(1, 2), [1, 2], ()], "three": 3.0, "big": 2 ** 80, "small": -(2 ** 63),
        "tensors": OrderedDict(f32=graphc.randn(2, 3), f64=graphc.randn(3, dtype=graphc.float64),
                               i64=graphc.tensor([1, -2 ** 62]), b=graphc.tensor([True, False]),
                               scalar=graphc.tensor(2.5), empty=graphc.zeros(0, 3), int0=graphc.tensor(7)),
        "same": [shared, shared], "a/b": graphc.ones(1), "a": {"b": graphc.zeros(1)}, "__metadata__": graphc.ones(2),
    }
    loaded = _round_trip(checkpoint, tmp_path)
    _assert_same(checkpoint, loaded)
    assert loaded["same"][0] is loaded["same"][1]
    assert loaded["tensors"]["scalar"].shape == () and loaded["tensors"]["empty"].shape == (0, 3)


def test_loaded_tensors_are_writable_and_independent(tmp_path):
    t = graphc.zeros(3)
    loaded = _round_trip({"t": t}, tmp_path)["t"]
    loaded.fill_(1.0)
    assert t.numpy().tolist() == [0, 0, 0] and loaded.numpy().tolist() == [1, 1, 1]


def test_numpy_scalars_store_as_numbers(tmp_path):
    loaded = _round_trip({"a": np.float64(0.5), "b": np.int64(3), "c": np.bool_(True)}, tmp_path)
    _assert_same(loaded, {"a": 0.5, "b": 3, "c": True})


def test_file_objects_and_path_kinds(tmp_path):
    sd = Net().state_dict()
    buffer = io.BytesIO()
    graphc.save(sd, buffer)
    buffer.seek(0)
    _assert_same(sd, graphc.load(buffer))
    with open(tmp_path / "f.ckpt", "wb") as f:
        graphc.save(sd, f)
    with open(tmp_path / "f.ckpt", "rb") as f:
        _assert_same(sd, graphc.load(f))
    graphc.save(sd, str(tmp_path / "s.ckpt"))
    _assert_same(sd, graphc.load(pathlib.Path(tmp_path / "s.ckpt"), map_location="cpu", weights_only=False))


def test_map_location_other_than_cpu_is_refused(tmp_path):
    graphc.save({"a": 1}, tmp_path / "a")
    with pytest.raises(ValueError, match="cpu only"):
        graphc.load(tmp_path / "a", map_location="cuda:0")


@pytest.mark.parametrize("obj, message", [
    ({"a": object()}, "cannot store a object \\(at a\\)"),
    ({"m": {"w": np.zeros(2)}}, "cannot store a ndarray \\(at m/w\\)"),
    ({"s": {1, 2}}, "cannot store a set"),
    ({frozenset(): 1}, "cannot store a frozenset"),
])
def test_unsupported_values_are_refused_before_anything_is_written(tmp_path, obj, message):
    with pytest.raises(TypeError, match=message):
        graphc.save(obj, tmp_path / "x")
    assert os.listdir(tmp_path) == []


def test_a_structure_containing_itself_is_refused(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        graphc.save(loop, tmp_path / "x")


# --- atomic replacement -----------------------------------------------------------------------
def _half_then_raise(fd, data):
    os.write(fd, data[:len(data) // 2])
    raise OSError("disk on fire")


@pytest.mark.parametrize("unnamed_files", [True, False])
def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, unnamed_files):
    path = tmp_path / "model.ckpt"
    graphc.save({"epoch": 1, "w": graphc.ones(1000)}, path)
    monkeypatch.setattr(serialization, "_write_all", _half_then_raise)
    if not unnamed_files:  # a platform or file system without O_TMPFILE: a named temporary file
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    with pytest.raises(OSError, match="disk on fire"):
        graphc.save({"epoch": 2, "w": graphc.zeros(1000)}, path)
    assert os.listdir(tmp_path) == ["model.ckpt"]
    assert graphc.load(path)["epoch"] == 1


def test_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """KeyboardInterrupt (a BaseException) mid-write cleans up as well."""
    path = tmp_path / "model.ckpt"
    graphc.save({"epoch": 1}, path)

    def interrupt(fd, data):
        os.write(fd, data[:10])
        raise KeyboardInterrupt
    monkeypatch.setattr(serialization, "_write_all", interrupt)
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    with pytest.raises(KeyboardInterrupt):
        graphc.save({"epoch": 2}, path)
    assert os.listdir(tmp_path) == ["model.ckpt"] and graphc.load(path)["epoch"] == 1


def test_process_killed_mid_write_leaves_the_previous_checkpoint_and_no_temporary(tmp_path):
    path = tmp_path / "model.ckpt"
    graphc.save({"epoch": 1, "w": graphc.ones(10)}, path)
    child = textwrap.dedent(f"""
        import os, sys, time
        import graphc
        from graphc import serialization
        def stall(fd, data):
            os.write(fd, data[:len(data) // 2])
            print("writing", flush=True)
            time.sleep(60)
        serialization._write_all = stall
        graphc.save({{"epoch": 2, "w": graphc.zeros(100000)}}, {str(path)!r})
    """)
    env = {**os.environ, "PYTHONPATH": ROOT}
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, env=env)
    try:
        assert process.stdout.readline() == b"writing\n"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
    assert os.listdir(tmp_path) == ["model.ckpt"]
    assert graphc.load(path)["epoch"] == 1


def test_save_onto_a_folder_fails_and_leaves_no_temporary(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        graphc.save({"epoch": 1}, tmp_path / "d")
    assert os.listdir(tmp_path) == ["d"]


def test_save_replaces_and_keeps_the_usual_permissions(tmp_path):
    path = tmp_path / "m.ckpt"
    graphc.save({"epoch": 1}, path)
    graphc.save({"epoch": 2}, path)
    assert graphc.load(path) == {"epoch": 2}
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


# --- files that must be refused -------------------------------------------------------------
def _file(header, payload=b"", length=None):
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + payload


def _graphc_file(structure, tensors=None, payload=b"", version="1"):
    text = structure if isinstance(structure, str) else json.dumps(structure)
    header = {"__metadata__": {"format": "graphc.checkpoint", "version": version, "structure": text}}
    header.update(tensors or {})
    return _file(header, payload)


GOOD_TENSOR = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}

HOSTILE = {
    "empty": (b"", "too few"),
    "seven bytes": (b"\x01" * 7, "too few"),
    "huge header length": (struct.pack("<Q", 2 ** 63) + b"{}", "header claims"),
    "header longer than the file": (_file({}, length=1000), "truncated"),
    "header not JSON": (struct.pack("<Q", 5) + b"{{{{{", "not JSON"),
    "header a list": (_file([]), "not a JSON object"),
    "header nested deeply": (struct.pack("<Q", 200000) + b"[" * 100000 + b"]" * 100000, "not JSON"),
    "metadata not strings": (_file({"__metadata__": {"format": 3}}), "not a map of strings"),
    "offsets out of range": (_file(GOOD_TENSOR, b"\x00" * 4), "cannot load"),
    "offsets past the payload": (_file({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8000]}},
                                       b"\x00" * 8), "cannot load"),
    "size not matching the shape": (_file({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
                                          b"\x00" * 8), "cannot load"),
    "unknown dtype": (_file({"w": {"dtype": "X99", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 8),
                      "cannot load"),
    "dtype graphc cannot hold": (_file({"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}},
                                       b"\x00" * 4), "dtype float16"),
    "another format": (_file({"__metadata__": {"format": "evil", "structure": "{}"}}), "names format 'evil'"),
    "a newer version": (_graphc_file({"type": "none"}, version="2"), "version '2'"),
    "structure not JSON": (_file({"__metadata__": {"format": "graphc.checkpoint", "version": "1",
                                                   "structure": "{"}}), "schema"),
    "structure missing": (_file({"__metadata__": {"format": "graphc.checkpoint", "version": "1"}}), "schema"),
    "unknown node type": (_graphc_file({"type": "pickle", "value": "cos\nsystem"}), "schema"),
    "extra fields": (_graphc_file({"type": "int", "value": 1, "eval": "1+1"}), "schema"),
    "int holding a string": (_graphc_file({"type": "int", "value": "1"}), "schema"),
    "bool holding an int": (_graphc_file({"type": "bool", "value": 1}), "schema"),
    "float holding a word": (_graphc_file({"type": "float", "value": "__import__"}), "schema"),
    "items not pairs": (_graphc_file({"type": "dict", "items": [[{"type": "int", "value": 1}]]}), "schema"),
    "list key": (_graphc_file({"type": "dict", "items": [[{"type": "list", "items": []}, {"type": "none"}]]}),
                 "schema"),
    "tensor key": (_graphc_file({"type": "dict", "items": [[{"type": "tensor", "key": "w"}, {"type": "none"}]]},
                                GOOD_TENSOR, b"\x00" * 8), "schema"),
    "tensor not in the file": (_graphc_file({"type": "tensor", "key": "nope"}), "schema"),
    "tensor outside the structure": (_graphc_file({"type": "none"}, GOOD_TENSOR, b"\x00" * 8),
                                     "not part of its structure"),
    "structure nested deeply": (_graphc_file(json.loads("[" * 900 + "]" * 900)), "schema"),
    "pickle": (pickle.dumps({"a": 1}), "cannot load"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_malformed_files_raise_a_checkpoint_error_naming_the_file(tmp_path, name):
    data, message = HOSTILE[name]
    path = tmp_path / "bad.ckpt"
    path.write_bytes(data)
    with pytest.raises(graphc.CheckpointError, match=message) as info:
        graphc.load(path)
    assert str(path) in str(info.value) and "cannot load checkpoint" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_deep_structure_in_a_graphc_file_is_refused(tmp_path):
    """Deep enough to exhaust Python's recursion while decoding, still valid JSON for the parser."""
    depth = 5000
    node = '{"type":"list","items":[' * depth + '{"type":"none"}' + "]}" * depth
    (tmp_path / "deep").write_bytes(_graphc_file(node))
    with pytest.raises(graphc.CheckpointError, match="schema"):
        graphc.load(tmp_path / "deep")


class _Exploit:
    def __reduce__(self):
        return (open, ("/tmp/graphc-pwned-by-pickle", "w"))


def test_a_hostile_pickle_runs_nothing(tmp_path):
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"model": _Exploit()}))
    with pytest.raises(graphc.CheckpointError):
        graphc.load(tmp_path / "evil.pt")
    assert not os.path.exists("/tmp/graphc-pwned-by-pickle")


def test_a_torch_checkpoint_is_refused(tmp_path, torch):
    torch.save({"w": torch.zeros(2)}, str(tmp_path / "t.pt"))
    with pytest.raises(graphc.CheckpointError, match="t.pt"):
        graphc.load(tmp_path / "t.pt")


def test_directory_and_fifo_are_refused(tmp_path):
    with pytest.raises(graphc.CheckpointError, match="not a regular file"):
        graphc.load(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(graphc.CheckpointError, match="not a regular file"):
        graphc.load(tmp_path / "fifo")  # refused without blocking on the pipe


def test_text_mode_file_object_is_refused(tmp_path):
    graphc.save({"a": 1}, tmp_path / "a")
    with open(tmp_path / "a", encoding="latin-1") as f, pytest.raises(graphc.CheckpointError, match="binary"):
        graphc.load(f)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        graphc.load(tmp_path / "nothing-here")
