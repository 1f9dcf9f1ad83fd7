"""ONNX Runtime on 2 threads, inference only: the PyTorch model (graphc's weights) exported with
the TorchScript exporter, `torch.onnx.export(..., dynamo=False)`."""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from .case import Case, Peer, missing
from .peer_torch import THREADS, torch_model
from .timing import Timed, timed


@contextlib.contextmanager
def prepare_onnxruntime(case: Case, params: dict) -> Iterator[Timed | None]:
    if case.is_train_step:
        yield None
        return
    import onnxruntime
    import torch
    model = torch_model(case, params).eval()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"{case.key}.onnx")
        torch.onnx.export(model, tuple(torch.from_numpy(x) for x in case.inputs), path, dynamo=False)
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = {given.name: x for given, x in zip(session.get_inputs(), case.inputs)}
    yield timed(lambda: session.run(None, feeds)[0])


PEER = Peer("onnxruntime", "ONNX Runtime", prepare_onnxruntime, lambda: missing("onnxruntime", "onnx", "torch"))
