"""runtime.link: compiled objects linked into shared libraries and loaded from memory, and the
MCJIT path that serves where no linker is (GRAPHC_LINKER=none)."""
import ctypes
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from runtime import jit, link

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
needs_linker = pytest.mark.skipif(link.linker() is None, reason="no linker: compiled code loads through MCJIT")

# value() returns a constant through a private helper, so the library needs its own relocations
RETURNS = """
define internal i32 @helper() {{
  ret i32 {value}
}}
define i32 @value() {{
  %v = call i32 @helper()
  ret i32 %v
}}
"""


def _value(native: jit.NativeModule) -> int:
    return ctypes.CFUNCTYPE(ctypes.c_int32)(native.address("value"))()


@needs_linker
def test_objects_link_into_one_library_that_loads_and_runs():
    library = link.link_shared([jit.object_code(RETURNS.format(value=7))])
    assert link.is_shared_library(library) and not link.is_shared_library(jit.object_code(RETURNS.format(value=7)))
    assert _value(jit.load_objects([library], start_pool=False)) == 7


@needs_linker
def test_two_libraries_with_the_same_symbols_stay_apart():
    """glibc's dlopen hands back a loaded library of the same path: each memory file keeps its
    own path while its library is loaded."""
    first = jit.load_objects([jit.object_code(RETURNS.format(value=1))], start_pool=False)
    second = jit.load_objects([jit.object_code(RETURNS.format(value=2))], start_pool=False)
    assert (_value(first), _value(second)) == (1, 2)
    del first
    third = jit.load_objects([jit.object_code(RETURNS.format(value=3))], start_pool=False)
    assert (_value(second), _value(third)) == (2, 3)


@needs_linker
def test_a_dropped_library_closes_its_memory_file():
    native = jit.load_objects([jit.object_code(RETURNS.format(value=5))], start_pool=False)
    (library,) = native.libraries
    fd = library._release.peek()[2][1]  # (handle, fd, keep)
    os.fstat(fd)
    del native, library
    with pytest.raises(OSError):
        os.fstat(fd)


@needs_linker
def test_a_failed_link_raises_what_the_linker_said():
    with pytest.raises(link.LinkError, match="failed"):
        link.link_shared([b"\x7fELF not an object"])


def test_a_missing_or_refused_linker_means_mcjit(monkeypatch):
    for value in ("none", "NONE", "/no/such/linker"):
        monkeypatch.setenv("GRAPHC_LINKER", value)
        link.linker.cache_clear()
        try:
            assert link.linker() is None
        finally:
            monkeypatch.undo()
            link.linker.cache_clear()


# a compiled MLP's forward, backward and train step, printed to compare the two loaders
MODEL_RUN = """
import json, numpy as np, graphc, graphc.nn as nn
from runtime import jit
graphc.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 10))
x, y = graphc.randn(32, 64), graphc.tensor(np.arange(32) % 10)
with graphc.no_grad():
    out = graphc.compile(model.eval())(x).numpy()
step = graphc.compile_train_step(model.train(), nn.CrossEntropyLoss(), graphc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
losses = [float(step(x, y)) for _ in range(3)]
print(json.dumps({"kind": jit.machine_description().split("|")[-1], "out": float(np.abs(out).sum()),
                  "losses": losses, "weight": float(model[0].weight.sum())}))
"""


@needs_linker
def test_mcjit_and_shared_libraries_give_the_same_results(tmp_path):
    printed = []
    for linker in ("ld", "none"):
        env = dict(os.environ, PYTHONPATH=ROOT, GRAPHC_LINKER=linker, GRAPHC_CACHE_DIR=str(tmp_path / linker))
        for _ in range(2):  # compiled, then from the cache
            done = subprocess.run([sys.executable, "-c", MODEL_RUN], capture_output=True, text=True, env=env, timeout=300)
            assert done.returncode == 0, done.stderr
            printed.append(json.loads(done.stdout))
    kinds = [run.pop("kind") for run in printed]
    assert "shared library" in kinds[0] and "mcjit" in kinds[2] and kinds[0] == kinds[1] and kinds[2] == kinds[3]
    for run in printed[1:]:
        for name, value in run.items():
            np.testing.assert_allclose(value, printed[0][name], rtol=1e-5, err_msg=name)
