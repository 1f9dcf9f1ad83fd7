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


def test_benchmark_runs_and_writes_json(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "mlp.json"
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_mlp.py"), "--repeat", "3",
                           "--json", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert set(results["cases"]) == {"inference_b1", "inference_b128", "train_step_b128"}
    assert all(case["graphc_us"] > 0 and case["torch_eager_us"] > 0 for case in results["cases"].values())
