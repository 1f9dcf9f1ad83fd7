"""graphc's benchmarks: `python -m benchmarks` (see README, "Benchmarks").

Laid out as the run flows:

    case.py          a Case: one model written once for graphc and PyTorch, its inputs, a numpy reference
    w1_mlp.py        W1 MLP 784-512-512-10: inference batch 1 and 128, SGD train step batch 128
    w2_lenet.py      W2 LeNet on 1x28x28: inference and SGD train step at batch 64
    w3_tutorial.py   W3 y = sqrt(x**2 + b) @ W: Adam train step
    w4_convbn.py     W4 conv-BatchNorm(eval)-ReLU x2, global pool, linear: inference 16x16x32x32
    w5_sgemm.py      W5 sgemm 1024x1024x1024
    conv_reference.py  convolution and pooling with their gradients in array code (numpy or jax.numpy)
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
