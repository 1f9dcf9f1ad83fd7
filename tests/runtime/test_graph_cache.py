"""A disk-cache hit skips Python lowering (issue 6, item 8): a whole build is recorded under its
traced graph beside the object code, so a hit skips the graph passes, autodiff, the kernel
passes and lowering; below that, object code is found from the kernel graph."""
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
from runtime.abi import Artifact, BufferSpec, CheckSpec, artifact_from_record, artifact_record, build_from_record, build_record


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


def _no_graph_passes(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ran the graph passes although the cache holds this build")
    monkeypatch.setattr(stages.Driver, "optimize", refuse)
    monkeypatch.setattr(stages.Driver, "differentiated", refuse)


def test_a_hit_on_the_traced_graph_skips_every_pass(cache_dir, monkeypatch):
    model, x = _model(), graphc.randn(4, 6)
    expected = _compile_and_run(model, x)
    _no_graph_passes(monkeypatch)
    _no_kernel_passes(monkeypatch)
    np.testing.assert_array_equal(_compile_and_run(model, x), expected)
    with pytest.raises(AssertionError, match="graph passes"):  # another shape is another graph
        _compile_and_run(model, graphc.randn(5, 6))


def test_a_prepared_build_records_both_graphs(cache_dir, monkeypatch):
    """An inference graph with a prepare graph (packed weights, say) loads both."""
    graphc.manual_seed(0)
    model, x = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 32)).eval(), graphc.randn(64, 64)
    expected = _compile_and_run(model, x)
    (record,) = _records(cache_dir)
    assert set(json.loads(_record_text(record))["compiled"]) == {"forward", "prepare"}
    _no_graph_passes(monkeypatch)
    from runtime import pool
    pool.ensure_started()  # else the pool's object joins the first engine (runtime/pool.py)
    engines = []
    load_objects = cache.load_objects
    monkeypatch.setattr(cache, "load_objects", lambda objects, *a: engines.append(len(objects)) or load_objects(objects, *a))
    np.testing.assert_array_equal(_compile_and_run(model, x), expected)
    assert len(engines) == 1 and engines[0] >= 2  # both graphs' code (each one or more partitions) in one engine
    with graphc.no_grad():  # weights changed after the build are still used: prepare runs again
        model[0].weight.mul_(2.0)
    np.testing.assert_allclose(_compile_and_run(model, x), model(x).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_a_train_step_hit_skips_every_pass(cache_dir, monkeypatch):
    x, y = graphc.randn(4, 6), graphc.randn(4, 3)

    def steps(optimizer=graphc.optim.Adam):
        model = _model().train()
        step = graphc.compile_train_step(model, nn.MSELoss(), optimizer(model.parameters(), lr=0.1))
        return [step(x, y).item() for _ in range(3)]
    expected = steps()
    _no_graph_passes(monkeypatch)
    _no_kernel_passes(monkeypatch)
    assert steps() == expected
    with pytest.raises(AssertionError, match="graph passes"):  # another optimizer is another build
        steps(graphc.optim.SGD)


def test_a_differentiable_hit_gives_the_same_gradients(cache_dir, monkeypatch):
    x = graphc.randn(4, 6)

    def grads():
        model = _model().train()
        graphc.compile(model)(x).sum().backward()
        return [p.grad.numpy() for p in model.parameters()]
    expected = grads()
    _no_graph_passes(monkeypatch)
    for got, want in zip(grads(), expected):
        np.testing.assert_array_equal(got, want)


def test_an_optimizer_defined_outside_graphc_is_known_by_its_source(tmp_path, monkeypatch):
    """A user's optimizer subclass with an edited update rule must not meet the old build."""
    from graphc.train_step import _code_identity
    source = tmp_path / "my_optim.py"
    source.write_text("import graphc\nclass MySGD(graphc.optim.SGD):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_optim
    before = _code_identity(my_optim.MySGD)
    assert _code_identity(my_optim.MySGD) == before
    assert _code_identity(graphc.optim.SGD) != before
    source.write_text("import graphc\nclass MySGD(graphc.optim.SGD):\n    pass  # edited\n")
    assert _code_identity(my_optim.MySGD) != before
    typed_in = type("TypedIn", (graphc.optim.SGD,), {"__module__": "__main__"})  # no source file to name
    monkeypatch.delattr(__import__("__main__"), "__file__", raising=False)
    assert _code_identity(typed_in) is None


def test_a_train_step_whose_optimizer_has_no_source_file_builds_without_a_record(cache_dir, monkeypatch):
    import graphc.train_step as train_step
    monkeypatch.setattr(train_step, "_code_identity", lambda cls: None)
    x, y = graphc.randn(4, 6), graphc.randn(4, 3)
    model = _model().train()
    step = graphc.compile_train_step(model, nn.MSELoss(), graphc.optim.SGD(model.parameters(), lr=0.1))
    step(x, y)
    assert not _records(cache_dir)


def test_the_thread_count_and_debug_level_2_build_afresh(cache_dir, monkeypatch):
    model, x = _model(), graphc.randn(4, 6)
    _compile_and_run(model, x)
    calls = []
    optimize = stages.Driver.optimize
    monkeypatch.setattr(stages.Driver, "optimize", lambda self, *a: calls.append(1) or optimize(self, *a))
    monkeypatch.setattr(stages, "num_threads", lambda: 7)  # code made for another thread count
    _compile_and_run(model, x)
    monkeypatch.setattr(stages, "num_threads", lambda: 1)
    monkeypatch.setenv("GRAPHC_DEBUG", "2")  # shows the graphs after each pass
    _compile_and_run(model, x)
    assert len(calls) == 2


def test_at_debug_level_3_the_kernel_graph_is_made_then_the_object_found(cache_dir, monkeypatch):
    model, x = _model(), graphc.randn(4, 6)
    _compile_and_run(model, x)
    monkeypatch.setenv("GRAPHC_DEBUG", "3")
    monkeypatch.setattr(stages, "lower", lambda *a, **k: (_ for _ in ()).throw(AssertionError("lowered")))
    _compile_and_run(model, x)


def _records(folder):
    return [p for p in folder.iterdir() if b'"signature": "build record"' in p.read_bytes()[:4096]]


def _record_text(path):
    return path.read_bytes().partition(b"\nsha256 ")[2].partition(b"\n")[2].decode()


def _rewrite_record(path, change, artifacts=True):
    """Change the record's fields (each artifact's, or the whole record's) and give it a matching
    digest: only the checks of its fields (or of the object entries it names) stand between it
    and native code."""
    header = path.read_bytes().partition(b"\nsha256 ")[0]
    key = json.loads(header.split(b"\n")[1])["key"]
    fields = json.loads(_record_text(path))
    for target in (fields["compiled"].values() if artifacts else [fields]):
        change(target)
    path.write_bytes(cache.encode_entry(key, "build record", json.dumps(fields).encode()))


@pytest.mark.parametrize("change", [
    lambda r: r.update(workspace_bytes=r["workspace_bytes"] + 64),  # names no object entry
    lambda r: r["inputs"][0][1].append(2),
    lambda r: r.update(workspace_bytes=-1),
    lambda r: r.update(updated=[99]),
    lambda r: r.update(checks=[["SystemExit", "m", "w"]]),
    lambda r: r.update(inputs="x"),
    lambda r: r.pop("source"),
], ids=["workspace", "shape", "negative", "updated", "error", "inputs", "source"])
def test_a_record_that_does_not_fit_is_a_miss(cache_dir, change):
    model, x = _model(), graphc.randn(4, 6)
    expected = _compile_and_run(model, x)
    for record in _records(cache_dir):
        _rewrite_record(record, change)
    np.testing.assert_array_equal(_compile_and_run(model, x), expected)


@pytest.mark.parametrize("change", [
    lambda r: r["bindings"].update(prepare_inputs=[99]),
    lambda r: r["bindings"].update(prepare_inputs="x"),
    lambda r: r["bindings"].pop("prepare_inputs"),
    lambda r: r.update(compiled={}),
    lambda r: r.update(bindings=[]),
], ids=["out of range", "not a list", "missing", "no graphs", "bindings"])
def test_bindings_that_do_not_fit_the_program_are_a_miss(cache_dir, monkeypatch, change):
    model, x = _model(), graphc.randn(4, 6)
    expected = _compile_and_run(model, x)
    for record in _records(cache_dir):
        _rewrite_record(record, change, artifacts=False)
    calls = []
    optimize = stages.Driver.optimize
    monkeypatch.setattr(stages.Driver, "optimize", lambda self, *a: calls.append(1) or optimize(self, *a))
    np.testing.assert_array_equal(_compile_and_run(model, x), expected)
    assert calls  # built afresh


def test_a_train_step_record_naming_another_group_is_a_miss(cache_dir):
    x, y = graphc.randn(4, 6), graphc.randn(4, 3)

    def steps():
        model = _model().train()
        step = graphc.compile_train_step(model, nn.MSELoss(), graphc.optim.SGD(model.parameters(), lr=0.1))
        return [step(x, y).item() for _ in range(3)]
    expected = steps()
    for record in _records(cache_dir):
        _rewrite_record(record, lambda r: r["bindings"]["trained"][0].__setitem__(1, 5), artifacts=False)
    assert steps() == expected


def test_a_damaged_record_is_a_miss(cache_dir):
    model, x = _model(), graphc.randn(4, 6)
    expected = _compile_and_run(model, x)
    for record in _records(cache_dir):
        data = bytearray(record.read_bytes())
        data[-3] ^= 0x20
        record.write_bytes(bytes(data))
    np.testing.assert_array_equal(_compile_and_run(model, x), expected)


def test_a_record_whose_object_entry_is_gone_is_a_miss(cache_dir):
    model, x = _model(), graphc.randn(4, 6)
    expected = _compile_and_run(model, x)
    for path in cache_dir.iterdir():
        if path not in _records(cache_dir):
            path.unlink()
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
    (label, again), = build_from_record(build_record({"forward": artifact}, {"k": [1]}))[0].items()
    assert (label, again) == ("forward", loaded)


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
def test_a_build_record_checks_every_artifact_field(cache_dir, change, loads):
    model, x = _model(), graphc.randn(4, 6)
    _compile_and_run(model, x)
    (record,) = _records(cache_dir)
    key = json.loads(record.read_bytes().split(b"\n")[1])["key"]
    source = key.rpartition("\n")[2]

    def sound():
        try:
            build_from_record(cache.load_record(source, "build"))
            return True
        except (ValueError, TypeError, KeyError):
            return False
    assert sound()
    _rewrite_record(record, change)
    assert sound() == loads


def test_a_record_is_used_as_recently_as_its_object_entry(cache_dir):
    """Eviction goes by last use: a hit touches the record too, so it does not go first."""
    model, x = _model(), graphc.randn(4, 6)
    _compile_and_run(model, x)
    (record,) = _records(cache_dir)
    os.utime(record, (1000, 1000))
    _compile_and_run(model, x)
    assert record.stat().st_mtime > 1000
