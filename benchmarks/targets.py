"""The targets of issues 6 and 7 ("Speed"), checked against a run's results. A margin of 1 or more means
met: the ratio over its target, or the time limit over the time taken."""
from __future__ import annotations

# (case, peer, the least `peer time / graphc time` asked for)
SPEED = (
    ("W1_inference_b1", "torch", 4.0),
    ("W1_inference_b1", "onnxruntime", 1.3),
    ("W1_inference_b128", "onnxruntime", 1.0),
    ("W1_train_b128", "torch", 2.0),
    ("W3_train", "torch", 20.0),
    ("W5_sgemm", "numpy", 0.9),  # numpy time / graphc time: at least 90 % of numpy's speed
    # issue 7
    ("W2_inference_b64", "torch", 3.0),
    ("W2_inference_b64", "onnxruntime", 1.0),
    ("W2_train_b64", "torch", 2.0),
    ("W2_train_b64", "jax", 1.0),
    ("W2_train_b64", "torch_compile", 1.0),
    ("W4_inference_b16", "torch", 1.5),
    ("W4_inference_b16", "onnxruntime", 0.9),
)
# (compile case, "cold" or "warm", the most seconds of compiling: the first call less a steady one)
COMPILE = (
    ("W1_inference_b1", "cold", 0.15),
    ("W1_train_b128", "cold", 0.4),
    ("W1_inference_b1", "warm", 0.005),
    ("W1_train_b128", "warm", 0.005),
)


def evaluate(results: dict) -> list[dict]:
    """One row per target this run measured."""
    rows = []
    for case, peer, least in SPEED:
        ratio = results["cases"].get(case, {}).get("ratio", {}).get(peer)
        if ratio is not None:
            rows.append({"case": case, "peer": peer, "at_least": least, "measured": ratio, "margin": ratio / least})
    for case, kind, most in COMPILE:
        seconds = results["compile"].get(case, {}).get(f"{kind}_compile_s")
        if seconds is not None:
            rows.append({"case": case, "compile": kind, "at_most_s": most, "measured": seconds,
                         "margin": most / seconds})
    for row in rows:
        row["met"] = row["margin"] >= 1
    return rows
