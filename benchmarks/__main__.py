"""python -m benchmarks [--quick] [--only W1,W2,W3,W4,W5,compile] [--out PATH] [--torch-compile]

Times graphc and its peers on every case in one process (numpy and the compile times in
subprocesses), checks each peer computed what graphc did, prints markdown tables of medians,
ratios and the issue's targets, and writes everything as JSON."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys

from . import compile_times, machine, peer_jax, peer_numpy, peer_onnxruntime, peer_torch, report, targets
from .case import Case, Peer, all_cases, relative_error
from .timing import FULL, QUICK, Budget

GROUPS = ("W1", "W2", "W3", "W4", "W5", "compile")
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "latest.json")


def run_case(case: Case, peers: list[Peer], budget: Budget) -> dict:
    """graphc's model first (its initial weights are everyone's), each peer's result checked
    against graphc's, then rounds in which every peer is timed in turn."""
    from .peer_graphc import build_model, prepare_graphc
    model = build_model(case)
    params = {name: value.numpy().copy() for name, value in model.state_dict().items()}
    with contextlib.ExitStack() as stack:
        timed = {"graphc": stack.enter_context(prepare_graphc(case, model))}
        errors = {}
        for peer in peers:
            if (ready := stack.enter_context(peer.prepare(case, params))) is None:
                continue
            errors[peer.key] = relative_error(ready.value, timed["graphc"].value)
            if errors[peer.key] > case.tolerance:
                raise RuntimeError(f"{case.title}: {peer.title}'s result differs from graphc's by "
                                   f"{errors[peer.key]:.3g} (relative, tolerance {case.tolerance:g}); "
                                   f"their times would not compare")
            timed[peer.key] = ready
        rounds: dict[str, list[list[float]]] = {key: [] for key in timed}
        for _ in range(budget.rounds):
            for key, ready in timed.items():
                rounds[key].append(ready.sample(budget))
    # other jobs only ever add time: each peer's figure is the median of its least disturbed round
    best = {key: min(runs, key=statistics.median) for key, runs in rounds.items()}
    median = {key: statistics.median(samples) for key, samples in best.items()}
    for key in timed:
        print(f"  {key} {report.duration(median[key])}", file=sys.stderr)
    return {"title": case.title, "median_us": median,
            "ratio": {key: median[key] / median["graphc"] for key in median if key != "graphc"},
            "quartiles_us": {key: statistics.quantiles(samples, n=4)[::2] for key, samples in best.items()},
            "round_medians_us": {key: [statistics.median(one) for one in runs] for key, runs in rounds.items()},
            "samples": {key: [len(one) for one in runs] for key, runs in rounds.items()}, "relative_error": errors}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="short measurements (a smoke test, not figures)")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups of {', '.join(GROUPS)}")
    parser.add_argument("--out", default=DEFAULT_OUT, help="the JSON file to write (default: %(default)s)")
    parser.add_argument("--torch-compile", action="store_true", help="also time torch.compile (slow to compile)")
    args = parser.parse_args(argv)
    groups = [group.strip() for group in args.only.split(",") if group.strip()]
    if unknown := set(groups) - set(GROUPS):
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}; choose from {', '.join(GROUPS)}")
    budget = QUICK if args.quick else FULL
    os.environ.setdefault("GRAPHC_NUM_THREADS", str(peer_torch.THREADS))  # every peer gets 2 threads

    candidates = [peer_torch.EAGER, *([peer_torch.COMPILED] if args.torch_compile else []), peer_onnxruntime.PEER,
                  peer_numpy.PEER, peer_jax.PEER]
    results: dict = {"machine": machine.describe(),
                     "settings": {"budget": budget.name, "groups": groups, "threads": peer_torch.THREADS,
                                  "GRAPHC_NUM_THREADS": os.environ["GRAPHC_NUM_THREADS"]},
                     "peers": {p.key: {"title": p.title, "unavailable": p.unavailable()} for p in candidates},
                     "cases": {}, "compile": {}}
    peers = [peer for peer in candidates if not results["peers"][peer.key]["unavailable"]]
    if "compile" in groups:  # first: the peers' thread pools, once running in this process, took cores from them
        print("compile times, in fresh processes", file=sys.stderr)
        results["compile"] = compile_times.measure_compile_times(budget)
    if any(group != "compile" for group in groups):
        results["numpy_blas"] = peer_numpy.describe()
    for case in all_cases():
        if case.workload in groups:
            print(case.title, file=sys.stderr)
            results["cases"][case.key] = run_case(case, peers, budget)
    results["targets"] = targets.evaluate(results)
    results["machine"]["load_average_at_end"] = list(os.getloadavg())

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(report.markdown(results))
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
