"""graphc's benchmarks: `python -m benchmarks` (see README, "Benchmarks").

Laid out as the run flows:

    case.py          a Case: one model written once for graphc and PyTorch, its inputs, a numpy reference
    w1_mlp.py        W1 MLP 784-512-512-10: inference batch 1 and 128, SGD train step batch 128
    w3_tutorial.py   W3 y = sqrt(x**2 + b) @ W: Adam train step
    w5_sgemm.py      W5 sgemm 1024x1024x1024
    timing.py        medians after a settling sleep
    peer_*.py        one module per peer (graphc, PyTorch, ONNX Runtime, numpy in a subprocess, JAX)
    compile_times.py cold and warm compiles, each in a fresh process
    fresh_process.py running a module of this package in a fresh process, answering JSON
    targets.py       the issue's targets, met or missed
    machine.py       the CPU and versions the run had
    report.py        the markdown tables
    __main__.py      the command line

The workload modules import numpy only: a model is written against an `nn` namespace passed in,
so the numpy subprocess can import them without graphc or torch.
"""
