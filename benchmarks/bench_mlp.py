"""MLP 784-512-512-10: graphc against PyTorch eager (2 threads) and numpy, in one process.

Measures inference at batch 1 and 128 and a train step (cross-entropy, SGD) at batch 128;
prints medians and ratios and writes them as JSON. Run: python benchmarks/bench_mlp.py
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Callable

import numpy as np

import graphc
import graphc.nn as gnn


def median_us(fn: Callable[[], object], repeat: int, warmup: int = 10) -> float:
    """Median wall time of `fn` in µs. It first sleeps: OpenBLAS and OpenMP worker threads keep
    spinning for a while after their last call, and would steal the other core from the next
    framework measured (with two cores that halved graphc's threaded kernels)."""
    time.sleep(0.5)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e3)
    return statistics.median(samples)


def graphc_mlp() -> gnn.Module:
    return gnn.Sequential(gnn.Linear(784, 512), gnn.ReLU(), gnn.Linear(512, 512), gnn.ReLU(), gnn.Linear(512, 10))


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--torch-compile", action="store_true", help="also time torch.compile (slow to compile)")
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results", "mlp.json"))
    args = parser.parse_args()

    import torch
    torch.set_num_threads(2)
    graphc.manual_seed(0)
    model = graphc_mlp()
    reference = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                    torch.nn.ReLU(), torch.nn.Linear(512, 10))
    reference.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    weights = [v.numpy() for v in model.state_dict().values()]

    def numpy_forward(x):
        h = np.maximum(x @ weights[0].T + weights[1], 0)
        h = np.maximum(h @ weights[2].T + weights[3], 0)
        return h @ weights[4].T + weights[5]

    results: dict = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                     "torch_threads": torch.get_num_threads(), "cases": {}}
    model.eval()
    reference.eval()
    compiled = graphc.compile(model)
    for batch in (1, 128):
        x = np.random.default_rng(1).standard_normal((batch, 784)).astype(np.float32)
        gx, tx = graphc.tensor(x), torch.from_numpy(x)
        with graphc.no_grad():
            start = time.perf_counter()
            out = compiled(gx)
            compile_ms = (time.perf_counter() - start) * 1e3
            np.testing.assert_allclose(out.numpy(), reference(tx).detach().numpy(), rtol=1e-4, atol=1e-4)
            case = {"graphc_us": median_us(lambda: compiled(gx), args.repeat), "compile_ms": compile_ms}
        with torch.no_grad():
            case["torch_eager_us"] = median_us(lambda: reference(tx), args.repeat)
            if args.torch_compile:
                fast = torch.compile(reference)
                fast(tx)
                case["torch_compile_us"] = median_us(lambda: fast(tx), args.repeat)
        case["numpy_us"] = median_us(lambda: numpy_forward(x), args.repeat)
        results["cases"][f"inference_b{batch}"] = case

    model.train()
    reference.train()
    x = np.random.default_rng(2).standard_normal((128, 784)).astype(np.float32)
    y = np.random.default_rng(3).integers(0, 10, 128)
    step = graphc.compile_train_step(model, gnn.CrossEntropyLoss(), graphc.optim.SGD(model.parameters(), lr=0.01))
    gx, gy = graphc.tensor(x), graphc.tensor(y)
    start = time.perf_counter()
    step(gx, gy)
    compile_ms = (time.perf_counter() - start) * 1e3
    case = {"graphc_us": median_us(lambda: step(gx, gy), args.repeat // 2), "compile_ms": compile_ms}
    opt = torch.optim.SGD(reference.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step():
        opt.zero_grad()
        loss = loss_fn(reference(tx), ty)
        loss.backward()
        opt.step()
    case["torch_eager_us"] = median_us(torch_step, args.repeat // 2)
    results["cases"]["train_step_b128"] = case

    print(f"{'case':<18}{'graphc µs':>12}{'torch µs':>12}{'compile µs':>12}{'numpy µs':>12}{'torch/graphc':>14}")
    for name, c in results["cases"].items():
        c["speedup_vs_torch_eager"] = c["torch_eager_us"] / c["graphc_us"]
        if "torch_compile_us" in c:
            c["speedup_vs_torch_compile"] = c["torch_compile_us"] / c["graphc_us"]
        optional = [f"{c[k]:.1f}" if k in c else "-" for k in ("torch_compile_us", "numpy_us")]
        print(f"{name:<18}{c['graphc_us']:>12.1f}{c['torch_eager_us']:>12.1f}{optional[0]:>12}{optional[1]:>12}"
              f"{c['speedup_vs_torch_eager']:>13.2f}x")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
