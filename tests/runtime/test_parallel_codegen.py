"""Codegen partitions (runtime/parallel_codegen.py): a module split by function, compiled in
forked processes, loaded into one engine, computes what the whole module computes."""
import ctypes
import os
import re
import time

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from runtime import parallel_codegen
from runtime.jit import load_objects, object_code

MODULE = '''
@"const1" = private constant [4 x i8] c"\\00\\00\\80?", align 64

define internal i64 @"square"(i64 %".1") noinline nounwind
{
entry:
  %".3" = mul i64 %".1", %".1"
  ret i64 %".3"
}

define internal i64 @"apply"(ptr %".1", i64 %".2") noinline nounwind
{
entry:
  %".4" = call i64 %".1"(i64 %".2")
  ret i64 %".4"
}

define i64 @"entry"(i64 %".1")
{
entry:
  %".3" = call i64 @"apply"(ptr @"square", i64 %".1")
  %".4" = call i64 @"square"(i64 %".3")
  ret i64 %".4"
}
'''


def _call(objects, x):
    native = load_objects(objects)
    return ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(native.address("entry"))(x)


def _defined(modules):
    return sorted(name for text in modules for name in re.findall(r'^define [^@]*@"([^"]+)"', text, re.M))


def test_every_function_is_defined_once_and_crossing_calls_are_declared():
    modules = parallel_codegen.split_module(MODULE, 3, "entry")
    assert len(modules) == 3
    names = _defined(modules)
    assert len(names) == 3 and "entry" in names  # the entry point keeps its name
    for text in modules:
        for used in set(re.findall(r'@"([^"]+)"', text)) - {"const1"}:
            assert re.search(rf'^(define|declare) [^@]*@"{re.escape(used)}"', text, re.M), (used, text)
    assert _call([object_code(m) for m in modules], 3) == 81


def test_the_parts_compiled_in_children_compute_what_the_whole_module_does():
    modules = parallel_codegen.split_module(MODULE, 2, "entry")
    objects = parallel_codegen.compile_parallel(modules, object_code)
    assert len(objects) == 2 and _call(objects, 5) == _call([object_code(MODULE)], 5) == 625


def test_a_failed_child_costs_time_not_the_object():
    parent = os.getpid()

    def flaky(text):
        if os.getpid() != parent:
            raise RuntimeError("a child that fails")
        return object_code(text)
    objects = parallel_codegen.compile_parallel(parallel_codegen.split_module(MODULE, 2, "entry"), flaky)
    assert _call(objects, 2) == 16


def test_a_child_that_does_not_answer_is_killed_and_its_part_compiled_here(monkeypatch):
    monkeypatch.setattr(parallel_codegen, "MIN_PATIENCE_S", 0.2)
    parent = os.getpid()

    def stuck(text):
        if os.getpid() != parent:
            time.sleep(60)
        return object_code(text)
    start = time.perf_counter()
    objects = parallel_codegen.compile_parallel(parallel_codegen.split_module(MODULE, 2, "entry"), stuck)
    assert time.perf_counter() - start < 20 and _call(objects, 2) == 16


def test_a_module_with_a_mutable_global_stays_whole():
    text = '@"counter" = internal global i64 0\n' + MODULE
    assert parallel_codegen.split_module(text, 2, "entry") == [text]


def test_small_modules_and_one_thread_compile_whole(monkeypatch):
    calls = []
    monkeypatch.setattr(parallel_codegen, "split_module", lambda *a: calls.append(a) or [MODULE])
    parallel_codegen.compile_objects(MODULE, 3, "entry", 2)  # below MIN_SPLIT_CHARS
    monkeypatch.setattr(parallel_codegen, "MIN_SPLIT_CHARS", 0)
    parallel_codegen.compile_objects(MODULE, 3, "entry", 1)
    assert not calls


def _steps(monkeypatch, split: bool):
    monkeypatch.setattr(parallel_codegen, "MIN_SPLIT_CHARS", 0 if split else 1 << 40)
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 10))
    step = graphc.compile_train_step(model, nn.CrossEntropyLoss(), graphc.optim.Adam(model.parameters(), lr=0.01))
    x, y = graphc.randn(32, 64), graphc.tensor(np.arange(32) % 10)
    return [step(x, y).item() for _ in range(3)], [p.detach().numpy().copy() for p in model.parameters()]


def test_a_train_step_compiled_in_partitions_trains_as_one_compiled_whole(monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "2")
    splits = []
    split_module = parallel_codegen.split_module
    monkeypatch.setattr(parallel_codegen, "split_module", lambda *a: splits.append(1) or split_module(*a))
    whole_losses, whole_params = _steps(monkeypatch, split=False)
    assert not splits
    losses, params = _steps(monkeypatch, split=True)
    assert splits
    np.testing.assert_allclose(losses, whole_losses, rtol=1e-6)
    for got, want in zip(params, whole_params):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
