"""The markdown tables printed at the end of a run."""
from __future__ import annotations

import math


def duration(us: float) -> str:
    """Three significant digits: 45.6 µs, 1.45 ms, 150 ms, 3.11 s."""
    value, unit = (us / 1e6, "s") if us >= 1e6 else (us / 1e3, "ms") if us >= 1e3 else (us, "µs")
    decimals = max(0, 2 - math.floor(math.log10(value))) if value > 0 else 0
    return f"{value:.{decimals}f} {unit}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _status(row: dict) -> str:
    if row["met"]:
        return f"met ({row['margin']:.2f}x the target)"
    return f"missed: graphc needs {1 / row['margin']:.2f}x less time"


def markdown(results: dict) -> str:
    machine, peers, cases = results["machine"], results["peers"], results["cases"]
    lines = [f"{machine['cpu']} (LLVM: {machine['llvm_host_cpu']}, AVX-512 {'yes' if machine['avx512'] else 'no'}, "
             f"{machine['usable_cpus']} CPUs), {machine['date']}, {results['settings']['budget']} budget; load average "
             f"{machine['load_average_at_start'][0]:.2f} at the start, "
             f"{machine['load_average_at_end'][0]:.2f} at the end",
             ""]
    shown = [key for key in peers if any(key in case["median_us"] for case in cases.values())]
    if cases:
        rows = [[case["title"], duration(case["median_us"]["graphc"]),
                 *(f"{duration(case['median_us'][key])} ({case['ratio'][key]:.2f}x)" if key in case["median_us"]
                   else "-" for key in shown)] for case in cases.values()]
        lines += _table(["median time (peer / graphc)", "graphc", *(peers[key]["title"] for key in shown)], rows)
        lines += ["", "A ratio above 1x means graphc takes less time than that peer.", ""]
    if results["compile"]:
        rows = [[c["title"], *(f"{duration(c[f'{kind}_compile_s'] * 1e6)} ({duration(c[f'{kind}_s'] * 1e6)})"
                                for kind in ("cold", "warm"))] for c in results["compile"].values()]
        lines += _table(["graphc compile (call to first result)", "cold (empty cache)", "warm (disk cache)"], rows)
        lines.append("")
    if results["targets"]:
        rows = []
        for row in results["targets"]:
            title = (cases.get(row["case"]) or results["compile"][row["case"]])["title"]
            if "peer" in row:
                rows.append([f"{title}: {peers[row['peer']]['title']} / graphc >= {row['at_least']:g}x",
                             f"{row['measured']:.2f}x", _status(row)])
            else:
                rows.append([f"{title}, {row['compile']} compile <= {duration(row['at_most_s'] * 1e6)}",
                             duration(row["measured"] * 1e6), _status(row)])
        lines += _table(["target (issues 6 and 7)", "measured", "status"], rows)
        lines.append("")
    blas = results.get("numpy_blas")
    if blas and isinstance(blas["blas"], list):
        libraries = "; ".join(f"{b['internal_api']} {b['version']}, {b['architecture']} kernel, {b['num_threads']} "
                              f"threads" for b in blas["blas"])
        lines.append(f"numpy {blas['numpy']} (in its subprocess): {libraries}")
    lines += [f"{peer['title']}: skipped, {peer['unavailable']}" for peer in peers.values() if peer["unavailable"]]
    return "\n".join(lines)
