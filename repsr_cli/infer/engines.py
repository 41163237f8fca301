"""Which engine runs a deploy network's forward pass on the CPU: PyTorch, ncnn or OpenVINO, each in fp32 or,
where the CPU has bf16 units, bf16.

No one engine is fastest everywhere: issue 45 reported ncnn's Winograd convolutions 1.7x faster than our PyTorch
path on Real-ESRGAN's 16x64 network on an AVX2-only CPU, while on the AVX512-BF16 CPU of docs/performance.md
("Against other engines", benchmarks/peers.py) PyTorch's and OpenVINO's bf16 beat ncnn at every size, and
which of those two wins changes with the network and the tile. So
`auto` measures: the first time a network layout runs on a CPU at a tile size, each candidate upscales one
tile, and the fastest is kept in the user cache (`engine_choices`), so later runs start at once and pick the
same (a choice made while the machine was busy is measured again once it is quieter). The engines take the
Upscaler's tiles alike, so tiling, alpha, 16-bit and the out-of-memory fallback stay one mechanism; ncnn gets
the network written as ncnn files with float32 weights, OpenVINO as a graph built with its operator API, both
in memory.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import platformdirs
import torch

from ..errors import UserError
from ..formats.exports import deploy_layers, ncnn_files
from ..formats.files import atomic_write
from ..model import DeployNet
from ..runtime import ENGINES, native_bf16
from ..schema import choices

CPU_ENGINES = {"ncnn": "pip install ncnn", "openvino": "pip install 'repsr[openvino]'"}  # engine -> how to get it
CPU_PRECISIONS = ("auto", "fp32", "bf16")  # what the CPU engines run
NCNN_OUT_OF_MEMORY = -100  # ncnn's return code when an allocation fails

Forward = Callable[[torch.Tensor], torch.Tensor]


@functools.cache
def engine_version(engine: str) -> str | None:
    """The installed version of a package (a CPU engine, or repsr), None where it is absent: from its metadata, not
    imported: OpenVINO's import would be paid by every run, most of which do not use it."""
    try:
        return importlib.metadata.version(engine)
    except importlib.metadata.PackageNotFoundError:
        return None


def available(engine: str) -> bool:
    return engine_version(engine) is not None


def resolve_engine(engine: str, device: torch.device, precision: str, compile_model: bool = False) -> str:
    """The engine asked for, checked: `auto` stays `auto` where `candidates` can choose, else it is PyTorch."""
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r} (use {choices(ENGINES)})")
    if engine == "auto":
        return "auto" if len(candidates(device, precision, compile_model)) > 1 else "torch"
    if engine in CPU_ENGINES:
        if not available(engine):
            raise UserError(f"--engine {engine} needs its package: {CPU_ENGINES[engine]}")
        if device.type != "cpu":
            raise UserError(f"--engine {engine} runs on the CPU only, not on {device.type}")
        if compile_model:
            raise UserError(f"--compile is PyTorch's; it does not apply to --engine {engine}")
        if precision not in CPU_PRECISIONS:
            raise UserError(f"--engine {engine} runs {choices(CPU_PRECISIONS)}, not {precision}")
    return engine


def cpu_precision(engine: str, precision: str) -> str:
    """fp32 or bf16 for a CPU engine asked `precision`: `auto` is bf16 where the CPU has bf16 units, except in
    ncnn, whose bf16 is storage only (slower than PyTorch's bf16 at every size in docs/performance.md)."""
    if precision != "auto":
        return precision
    return "bf16" if engine != "ncnn" and native_bf16(torch.device("cpu")) else "fp32"


def candidates(device: torch.device, precision: str, compile_model: bool = False) -> list[tuple[str, str]]:
    """The (engine, precision) pairs `auto` chooses between: on the CPU, PyTorch and OpenVINO at each precision
    the request allows (`auto`: fp32, and bf16 where the CPU has bf16 units) and ncnn at fp32; elsewhere
    PyTorch alone."""
    if device.type != "cpu" or compile_model or precision not in CPU_PRECISIONS:
        return [("torch", precision)]
    allowed = {"auto": ["fp32", "bf16"] if native_bf16(device) else ["fp32"], "fp32": ["fp32"], "bf16": ["bf16"]}
    pairs = [("torch", p) for p in allowed[precision]]
    if available("ncnn") and precision != "bf16":
        pairs.append(("ncnn", "fp32"))
    if available("openvino"):
        pairs += [("openvino", p) for p in allowed[precision]]
    return pairs


def engine_choices() -> Path:
    """Where `fastest` keeps what it measured: per CPU, repsr and engine versions, network layout and tile size."""
    return Path(platformdirs.user_cache_dir("repsr")) / "engine-choices.json"


# A choice measured while other work kept at least this share of the cores busy (the load average over them)
# is measured again the next time the machine is quieter: a busy spell can favour one engine over another.
BUSY = 0.5


def busy_share() -> float:
    """The one-minute load average per core; 0 where the OS does not keep one."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (OSError, AttributeError):
        return 0.0


def fastest(
    pairs: list[tuple[str, str]], layout: str, tile: int, make: Callable[[str, str], Callable[[], object]]
) -> tuple[str, str]:
    """The pair whose call (`make(engine, precision)`: one tile upscaled) is fastest: measured once, then read
    back. The calls take turns, a warm-up each and then the best of two rounds, so a busy spell on the
    machine falls on every candidate alike."""
    from ..measure.speed import (  # here: speed.py imports the Upscaler, which imports this
        machine_name,
        timed_rounds,
    )

    cpu = torch.device("cpu")
    # repsr's own version too: a release changes what surrounds each engine's forward, and so which is fastest
    versions = [f"{package} {engine_version(package)}" for package in ("repsr", *CPU_ENGINES)]
    key = "|".join([machine_name(cpu), *versions, layout, f"tile {tile}", repr(pairs)])
    path = engine_choices()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    load = busy_share()
    entry = known.get(key, {})
    measured_busy = entry.get("busy", 0.0) >= BUSY
    if tuple(entry.get("choice", ())) in pairs and not (measured_busy and load < BUSY):
        engine, precision = entry["choice"]
        return engine, precision
    rounds = timed_rounds({pair: make(*pair) for pair in pairs}, cpu, rounds=2, min_time=0.0)
    seconds = {pair: min(times) for pair, times in rounds.items()}
    choice = min(pairs, key=seconds.__getitem__)
    known[key] = {
        "choice": choice,
        "seconds": {" ".join(p): round(t, 4) for p, t in seconds.items()},
        "busy": round(load, 2),
    }
    with contextlib.suppress(OSError):  # an unwritable cache only costs the measurement again next time
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(known, indent=1)))
    return choice


class NcnnForward:
    """The network in ncnn: an N x 3 x H x W float tensor in, N x 3 x sH x sW out, as the PyTorch net."""

    def __init__(self, net: DeployNet, threads: int, bf16: bool = False, winograd: bool = True) -> None:
        import ncnn

        param, self._weights = ncnn_files(net, half=False)  # kept: ncnn may read float32 weights in place
        self._net = ncnn.Net()
        opt = self._net.opt
        opt.num_threads = threads
        opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = False
        opt.use_bf16_storage = opt.use_bf16_packed = bf16
        opt.use_winograd_convolution = winograd  # off only to measure what it brings (benchmarks/peers.py)
        self._net.load_param_mem(param)
        self._net.load_model_mem(self._weights)
        self._mat = ncnn.Mat

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._one(np.ascontiguousarray(x.float().numpy())) for x in batch])

    def _one(self, x: np.ndarray) -> torch.Tensor:
        extractor = self._net.create_extractor()
        extractor.input("data", self._mat(x))  # x stays referenced until extract: ncnn reads it in place
        code, out = extractor.extract("output")
        if code == NCNN_OUT_OF_MEMORY:
            raise RuntimeError("ncnn: out of memory")
        if code != 0:
            raise RuntimeError(f"ncnn failed with code {code}")
        return torch.from_numpy(np.array(out))


class OpenVinoForward:
    """The network in OpenVINO: an N x 3 x H x W float tensor in, N x 3 x sH x sW out, as the PyTorch net.
    OpenVINO folds each PReLU into the convolution before it, which PyTorch does not (issue 45)."""

    def __init__(
        self, net: DeployNet, threads: int, bf16: bool = False, int8: list[tuple[float, float]] | None = None
    ) -> None:
        import openvino as ov

        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32"}
        self._compiled = ov.Core().compile_model(openvino_model(net, int8), "CPU", config)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        # the graph takes and gives channels-last memory: the Upscaler's tiles are that already (media.tensors)
        # and to_array reads it without a transpose, so neither side pays for one
        nhwc = np.ascontiguousarray(batch.float().permute(0, 2, 3, 1).numpy())
        try:
            out = self._compiled(nhwc)[0]
        except RuntimeError as exc:
            if "bad_alloc" in str(exc) or "allocate" in str(exc).lower():
                raise RuntimeError(f"openvino: out of memory ({exc})") from exc
            raise
        # a copy: the request's output buffer is reused by the next call; N x 3 x sH x sW in channels-last memory
        return torch.from_numpy(np.array(out)).permute(0, 3, 1, 2)


def openvino_model(net: DeployNet, int8: list[tuple[float, float]] | None = None):
    """The deploy network as an OpenVINO model of any batch and image size, N x H x W x 3 in and out
    (channels-last memory, as the Upscaler keeps images): 3x3 convolutions with bias, PReLUs, and the input added
    to the last conv's channels before the pixel shuffle, as DeployNet.run does.

    `int8`: each conv's input range (low, high), from calibration: the input is then quantized to 256 levels
    over that range and the weights to 255 symmetric levels per output channel, as FakeQuantize nodes, which
    OpenVINO's CPU plugin runs as int8 convolutions (post-training quantization, measured in
    benchmarks/int8.py)."""
    import openvino as ov
    import openvino.opset13 as ops

    def quantized(node, low: np.ndarray, high: np.ndarray, levels: int):
        low, high = ops.constant(low.astype(np.float32)), ops.constant(high.astype(np.float32))
        return ops.fake_quantize(node, low, high, low, high, levels)

    s = net.cfg.scale
    image = ops.parameter(ov.PartialShape([-1, -1, -1, 3]), ov.Type.f32, name="data")
    nchw = ops.transpose(image, ops.constant(np.array([0, 3, 1, 2], dtype=np.int64)))
    x, convs = nchw, 0
    for kind, a, b in deploy_layers(net):
        if kind == "conv":
            weight = ops.constant(a)
            if int8 is not None:
                x = quantized(x, np.array(int8[convs][0]), np.array(int8[convs][1]), 256)
                peak = np.abs(a).reshape(len(a), -1).max(axis=1).reshape(-1, 1, 1, 1)
                weight = quantized(weight, -peak, peak, 255)
            x = ops.convolution(x, weight, [1, 1], [1, 1], [1, 1], [1, 1])
            x = ops.add(x, ops.constant(b.reshape(1, -1, 1, 1)))
            convs += 1
        else:
            x = ops.prelu(x, ops.constant(a))
    # channel c*s*s + k of the last conv takes input channel c: PixelShuffle then spreads it to c's s*s sub-pixels
    repeated = ops.gather(nchw, ops.constant(np.repeat(np.arange(3), s * s).astype(np.int64)), ops.constant(1))
    out = ops.depth_to_space(ops.add(x, repeated), "depth_first", s)  # depth_first: PyTorch's PixelShuffle order
    nhwc = ops.transpose(out, ops.constant(np.array([0, 2, 3, 1], dtype=np.int64)))
    return ov.Model([nhwc], [image], "repsr")


def cpu_forward(engine: str, net: DeployNet, threads: int, precision: str) -> Forward:
    """The engine's forward; an installed package whose library fails to load is said in one line."""
    forward = {"ncnn": NcnnForward, "openvino": OpenVinoForward}[engine]
    try:
        return forward(net, threads, bf16=precision == "bf16")
    except (ImportError, OSError) as exc:
        raise UserError(f"--engine {engine}: its package is installed but does not load ({exc})") from None
