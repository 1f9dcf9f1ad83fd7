"""The shipped example and benchmark run as documented."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_mlp_example_reaches_95_percent_on_digits():
    pytest.importorskip("sklearn")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import mlp
        assert mlp.main() >= 0.95
    finally:
        sys.path.pop(0)


def test_cnn_example_reaches_97_percent_and_writes_its_checkpoint_and_plot(tmp_path):
    """examples/cnn.py: conv, BatchNorm, pooling, dropout, a DataLoader, a scheduler, the compiled
    train step; the checkpoint it saves is reloaded for testing."""
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import cnn
        assert cnn.main(out=tmp_path, progress=False) >= 0.97
    finally:
        sys.path.pop(0)
    import graphc
    state = graphc.load(tmp_path / "cnn.safetensors")
    assert state["epoch"] == 15 and "bn1.running_mean" in state["model"] and state["optimizer"]["state"]
    assert (tmp_path / "cnn_training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmarks_quick_run_writes_the_cpu_and_its_cases(tmp_path):
    """`python -m benchmarks --quick --only W3` runs and writes its JSON; no timing is checked."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "latest.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (ROOT, os.environ.get("PYTHONPATH")))))
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "W3", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    machine = results["machine"]
    assert machine["cpu"] and machine["llvm_host_cpu"] and isinstance(machine["avx512"], bool)
    assert machine["usable_cpus"] >= 1 and machine["date"] and machine["versions"]["torch"]
    assert set(results["cases"]) == {"W3_train"}
    assert {"graphc", "torch", "numpy"} <= set(results["cases"]["W3_train"]["median_us"])
    assert "| W3 tutorial net train step" in done.stdout
