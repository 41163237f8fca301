"""Other CPU runtimes for the fused network: onnxruntime and OpenVINO, running our ONNX export.

A backend replaces only the forward of a tile batch: tiling, assembly and image IO stay the Upscaler's, so
tiled results stay exact. Both compute in fp32 here (OpenVINO would pick bf16 on CPUs with bf16 units).
Which is faster where: docs/backends.md (benchmarks/backends.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..formats.exports import write_onnx
from ..model import DeployNet

Forward = Callable[[torch.Tensor], torch.Tensor]


def _onnx_file(net: DeployNet, folder: str) -> Path:
    path = Path(folder) / "model.onnx"
    write_onnx(net, path)
    return path


def onnxruntime_forward(net: DeployNet, threads: int) -> Forward:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("--backend onnxruntime needs onnxruntime: pip install onnxruntime") from None
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(str(_onnx_file(net, tmp)), opts, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(["output"], {"input": _array(x)})[0])


def openvino_forward(net: DeployNet, threads: int) -> Forward:
    try:
        import openvino as ov
    except ImportError:
        raise UserError("--backend openvino needs openvino: pip install openvino") from None
    with tempfile.TemporaryDirectory() as tmp:
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
        compiled = ov.Core().compile_model(str(_onnx_file(net, tmp)), "CPU", config)
    return lambda x: torch.from_numpy(np.asarray(compiled(_array(x))[0]))


def _array(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.float().numpy())


def backend_forward(name: str, net: DeployNet, threads: int) -> Forward:
    """The forward of `net` in the runtime `name` (one of schema.BACKENDS but torch, which needs none)."""
    return {"onnxruntime": onnxruntime_forward, "openvino": openvino_forward}[name](net, threads)
