"""A disk-cache hit skips Python lowering (issue 6, item 8): found from the graph the driver is
given (its artifact recorded beside the object code), it skips the kernel passes too."""
import json
import os

import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.stages as stages
from graphc.ir import GraphBuilder
from graphc.ir.digest import graph_digest
from runtime import cache
from runtime.abi import Artifact, BufferSpec, CheckSpec, artifact_from_record, artifact_record


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    monkeypatch.delenv("GRAPHC_DEBUG", raising=False)
    return tmp_path / "cache"


def _model():
    graphc.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()


def _compile_and_run(model, x):  # one call site: nodes record the user's source line
    with graphc.no_grad():
        return graphc.compile(model)(x).numpy()


def test_a_second_compile_of_the_same_graph_loads_without_lowering(cache_dir, monkeypatch):
    model, x = _model(), graphc.randn(4, 6)
    expected = _compile_and_run(model, x)

    def no_lowering(*args, **kwargs):
        raise AssertionError("lowered although the cache holds this graph")
    monkeypatch.setattr(stages, "lower", no_lowering)
    np.testing.assert_array_equal(_compile_and_run(model, x), expected)
    with pytest.raises(AssertionError, match="lowered although"):  # another shape is another graph
        _compile_and_run(model, graphc.randn(5, 6))


def test_new_weights_in_a_constant_change_the_digest():
    def graph(values):
        b = GraphBuilder()
        x = b.input("x", "user", (8,), "float32")
        c = b.constant(np.asarray(values, np.float32))
        return b.finish([b.add("add", [x, c], {}, (8,), "float32")])
    ones, other = graph(np.ones(8)), graph(np.r_[np.ones(7), 2.0])
    assert str(ones) == str(other)  # printed graphs abbreviate large constants ...
    assert graph_digest(ones) != graph_digest(other)  # ... the digest does not
    assert graph_digest(ones, "forward", 1) != graph_digest(ones, "forward", 2)


def test_dumps_and_debug_levels_that_show_the_ir_still_lower(cache_dir, monkeypatch, capsys):
    model, x = _model(), graphc.randn(4, 6)
    with graphc.no_grad():
        graphc.compile(model)(x)
        monkeypatch.setenv("GRAPHC_DEBUG", "4")
        graphc.compile(model)(x)
    assert "define" in capsys.readouterr().err  # the LLVM IR was made and shown


def _no_kernel_passes(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ran the kernel passes although the cache holds this graph")
    monkeypatch.setattr(stages.Driver, "_kernels", refuse)


def test_a_hit_on_the_graph_skips_the_kernel_passes(cache_dir, monkeypatch):
    model, x = _model(), graphc.randn(4, 6)
    expected = _compile_and_run(model, x)
    _no_kernel_passes(monkeypatch)
    np.testing.assert_array_equal(_compile_and_run(model, x), expected)
    with pytest.raises(AssertionError, match="kernel passes"):  # another shape is another graph
        _compile_and_run(model, graphc.randn(5, 6))


def test_a_train_step_hit_skips_the_kernel_passes(cache_dir, monkeypatch):
    x, y = graphc.randn(4, 6), graphc.randn(4, 3)

    def steps():
        model = _model().train()
        step = graphc.compile_train_step(model, nn.MSELoss(), graphc.optim.Adam(model.parameters(), lr=0.1))
        return [step(x, y).item() for _ in range(3)]
    expected = steps()
    _no_kernel_passes(monkeypatch)
    assert steps() == expected


def test_the_thread_count_and_debug_level_3_ask_after_the_kernel_passes(cache_dir, monkeypatch):
    model, x = _model(), graphc.randn(4, 6)
    _compile_and_run(model, x)
    calls = []
    kernels = stages.Driver._kernels
    monkeypatch.setattr(stages.Driver, "_kernels", lambda self, *a: calls.append(1) or kernels(self, *a))
    monkeypatch.setattr(stages, "num_threads", lambda: 7)  # code made for another thread count
    _compile_and_run(model, x)
    monkeypatch.undo()
    monkeypatch.setattr(stages.Driver, "_kernels", lambda self, *a: calls.append(1) or kernels(self, *a))
    monkeypatch.setenv("GRAPHC_DEBUG", "3")  # shows the kernel graph and its plan
    _compile_and_run(model, x)
    assert len(calls) == 2


def _records(folder):
    return [p for p in folder.iterdir() if f'"signature": "{cache.ARTIFACT_SIGNATURE}"'.encode() in p.read_bytes()[:4096]]


def _rewrite_record(path, change):
    """Change the record's fields and give it a matching digest: only the checks of its
    fields (or of the object entry it names) stand between it and native code."""
    header, _, record = path.read_bytes().partition(b"\nsha256 ")
    record = record.partition(b"\n")[2]
    key = json.loads(header.split(b"\n")[1])["key"]
    fields = json.loads(record)
    change(fields)
    path.write_bytes(cache.encode_entry(key, cache.ARTIFACT_SIGNATURE, json.dumps(fields).encode()))


@pytest.mark.parametrize("change", [
    lambda r: r.update(workspace_bytes=r["workspace_bytes"] + 64),  # names no object entry
    lambda r: r["inputs"][0][1].append(2),
    lambda r: r.update(workspace_bytes=-1),
    lambda r: r.update(updated=[99]),
    lambda r: r.update(checks=[["SystemExit", "m", "w"]]),
    lambda r: r.update(inputs="x"),
    lambda r: r.pop("source"),
], ids=["workspace", "shape", "negative", "updated", "error", "inputs", "source"])
def test_a_record_that_does_not_fit_is_a_miss(cache_dir, monkeypatch, change):
    model, x = _model(), graphc.randn(4, 6)
    expected = _compile_and_run(model, x)
    for record in _records(cache_dir):
        _rewrite_record(record, change)
    np.testing.assert_array_equal(_compile_and_run(model, x), expected)


def test_a_damaged_record_is_a_miss(cache_dir):
    model, x = _model(), graphc.randn(4, 6)
    expected = _compile_and_run(model, x)
    for record in _records(cache_dir):
        data = bytearray(record.read_bytes())
        data[-3] ^= 0x20
        record.write_bytes(bytes(data))
    np.testing.assert_array_equal(_compile_and_run(model, x), expected)


def test_an_artifact_record_round_trips_without_its_ir():
    artifact = Artifact("forward", "define void @f() {}", "forward", 256,
                        (BufferSpec("x", (4, 6), np.dtype("float32")), BufferSpec("i", (4,), np.dtype("int64"))),
                        (BufferSpec("out", (), np.dtype("float64")),), frozenset({1}),
                        (CheckSpec("IndexError", "Target {value} is out of bounds.", "in module 'fc' (Linear)"),),
                        "graph=sha256:00")
    loaded = artifact_from_record(artifact_record(artifact))
    assert loaded == Artifact(**{**artifact.__dict__, "ir_text": ""})
    assert loaded.signature() == artifact.signature()


@pytest.mark.parametrize("change, loads", [
    (lambda r: None, True),
    (lambda r: r.update(workspace_bytes=-1), False),
    (lambda r: r.update(workspace_bytes=True), False),
    (lambda r: r.update(updated=[99]), False),
    (lambda r: r.update(checks=[["SystemExit", "m", "w"]]), False),
    (lambda r: r["outputs"][0].__setitem__(2, "not a dtype"), False),
    (lambda r: r.update(inputs="x"), False),
    (lambda r: r.pop("source"), False),
], ids=["unchanged", "negative", "bool", "updated", "error", "dtype", "inputs", "source"])
def test_load_artifact_checks_every_field(cache_dir, change, loads):
    model, x = _model(), graphc.randn(4, 6)
    _compile_and_run(model, x)
    (record,) = _records(cache_dir)
    key = json.loads(record.read_bytes().split(b"\n")[1])["key"]
    source = key.rpartition("\n")[2]
    assert cache.load_artifact(source) is not None
    _rewrite_record(record, change)
    assert (cache.load_artifact(source) is not None) == loads


def test_a_record_is_used_as_recently_as_its_object_entry(cache_dir):
    """Eviction goes by last use: a hit touches the record too, so it does not go first."""
    model, x = _model(), graphc.randn(4, 6)
    _compile_and_run(model, x)
    (record,) = _records(cache_dir)
    os.utime(record, (1000, 1000))
    _compile_and_run(model, x)
    assert record.stat().st_mtime > 1000
