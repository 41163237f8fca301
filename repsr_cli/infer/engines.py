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

from ..errors import UserError
from ..formats.deploy import PlainNet
from ..formats.exports import ncnn_files
from ..formats.files import atomic_write
from ..media.tensors import peak, to_levels
from ..runtime import ENGINES, cpu_name, cpu_threads, host_memory, native_bf16
from ..schema import choices

CPU_ENGINES = {"ncnn": "pip install ncnn", "openvino": "pip install openvino"}  # engine -> how to get it
CPU_PRECISIONS = ("auto", "fp32", "bf16")  # what the CPU engines run
NCNN_OUT_OF_MEMORY = -100  # ncnn's return code when an allocation fails

Core = tuple[int, int, int, int]  # y0, y1, x0, x1: the part of a tile to keep, in its input pixels
OPENVINO_WIDE_TILE = 768  # OpenVINO's automatic CPU tile for networks of 32 channels or more


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


def resolve_engine(engine: str, device: str, precision: str, compile_model: bool = False) -> str:
    """The engine asked for, checked: `auto` stays `auto` where `candidates` can choose, else it is PyTorch."""
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r} (use {choices(ENGINES)})")
    if engine == "auto":
        return "auto" if len(candidates(device, precision, compile_model)) > 1 else "torch"
    if engine in CPU_ENGINES:
        if not available(engine):
            raise UserError(f"--engine {engine} needs its package: {CPU_ENGINES[engine]}")
        if device != "cpu":
            raise UserError(f"--engine {engine} runs on the CPU only, not on {device.split(':')[0]}")
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
    return "bf16" if engine != "ncnn" and native_bf16("cpu") else "fp32"


def candidates(device: str, precision: str, compile_model: bool = False) -> list[tuple[str, str]]:
    """The (engine, precision) pairs `auto` chooses between: on the CPU, PyTorch and OpenVINO at each precision
    the request allows (`auto`: fp32, and bf16 where the CPU has bf16 units) and ncnn at fp32; elsewhere
    PyTorch alone."""
    if device != "cpu" or compile_model or precision not in CPU_PRECISIONS:
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
# Engines this close to the fastest count as tied: rows of one engine moved 5-10 % between rounds of
# benchmarks/peers.py (docs/performance.md). A tie goes to an engine that needs no torch, whose import is most of
# a single-image command's time ("Time to first pixel"); a batch or a video then runs at the same speed, within
# what can be measured.
TIE = 0.05


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
    back (without importing torch: the key and the file need none). The calls take turns, a warm-up each and
    then the best of two rounds, so a busy spell on the machine falls on every candidate alike."""
    # repsr's own version too: a release changes what surrounds each engine's forward, and so which is fastest
    versions = [f"{package} {engine_version(package)}" for package in ("repsr", *CPU_ENGINES)]
    key = "|".join([cpu_name(), *versions, layout, f"tile {tile}", repr(pairs)])
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
    import torch

    from ..measure.speed import timed_rounds  # here: speed.py imports the Upscaler, which imports this

    rounds = timed_rounds({pair: make(*pair) for pair in pairs}, torch.device("cpu"), rounds=2, min_time=0.0)
    seconds = {pair: min(times) for pair, times in rounds.items()}
    tied = [pair for pair in pairs if seconds[pair] <= min(seconds.values()) * (1 + TIE)]
    choice = min(tied, key=lambda pair: (pair[0] == "torch", seconds[pair]))
    known[key] = {
        "choice": choice,
        "seconds": {" ".join(p): round(t, 4) for p, t in seconds.items()},
        "busy": round(load, 2),
    }
    with contextlib.suppress(OSError):  # an unwritable cache only costs the measurement again next time
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(known, indent=1)))
    return choice


class Engine:
    """What the Upscaler calls: `engine(tiles, cores)` takes N tiles of one size (N x h x w x 3, uint8 or uint16)
    and gives each tile's core (`Core`) upscaled, as an array of the tiles' type."""

    precision = "float32"  # the precision inside the engine, as a torch dtype name
    bytes_per_value = 4  # of the activations, for the automatic tile size
    cpu_tile: int | None = None  # the automatic tile side on a CPU where the engine has its own (else CPU_TILE)

    def __init__(self, net: PlainNet) -> None:
        self.scale = net.scale

    def __call__(self, tiles: np.ndarray, cores: list[Core]) -> list[np.ndarray]:
        raise NotImplementedError

    def free_memory(self) -> int:
        """Bytes free for activations where the engine runs."""
        return host_memory()

    def release(self) -> None:
        """Out of memory: hand back what the engine caches."""

    def upscaled(self, core: Core) -> tuple[slice, slice]:
        """A core's rows and columns in the engine's upscaled tile."""
        s, (y0, y1, x0, x1) = self.scale, core
        return slice(y0 * s, y1 * s), slice(x0 * s, x1 * s)


class TorchEngine(Engine):
    """PyTorch on any device: the network stops before its pixel shuffle (DeployNet.subpixels) and to_array
    rounds the sub-pixel planes to integers before shuffling them: uint8 moves a quarter of the bytes float32
    would."""

    def __init__(self, net: PlainNet, device: str, precision: str, compile_model: bool = False) -> None:
        import torch

        from ..formats.deploy import deploy_net
        from ..runtime import resolve_precision

        super().__init__(net)
        self._device = torch.device(device)
        self._dtype = resolve_precision(precision, self._device)
        self.precision = str(self._dtype).removeprefix("torch.")
        self.bytes_per_value = torch.finfo(self._dtype).bits // 8
        module = deploy_net(net).to(self._device, self._dtype, memory_format=torch.channels_last)
        # torch.compile can fuse each PReLU into its conv's epilogue (measure with `repsr bench --compile`),
        # paid for with a compile per distinct tile shape.
        self._run = torch.compile(module.subpixels) if compile_model else module.subpixels
        self._torch = torch

    def __call__(self, tiles: np.ndarray, cores: list[Core]) -> list[np.ndarray]:
        from ..media.tensors import to_array, to_tensor

        torch = self._torch
        batch = to_tensor(tiles)
        if self._device.type == "cuda":
            batch = batch.pin_memory()
        with torch.inference_mode():
            # channels-last, the layout the tiles already have in host memory: PyTorch's convolutions take it as
            # it is
            x = batch.to(self._device, self._dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
            planes = self._run(x).float()
            return [
                to_array(planes[i : i + 1, :, y0:y1, x0:x1], tiles.dtype.type, self.scale)
                for i, (y0, y1, x0, x1) in enumerate(cores)
            ]

    def free_memory(self) -> int:
        if self._device.type == "cuda":
            return self._torch.cuda.mem_get_info(self._device)[0]
        return super().free_memory()

    def release(self) -> None:
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()


class NcnnEngine(Engine):
    """The network in ncnn, one tile at a time (ncnn's Python API runs one image per extractor)."""

    def __init__(self, net: PlainNet, threads: int, bf16: bool = False, winograd: bool = True) -> None:
        import ncnn

        super().__init__(net)
        self.precision = "bfloat16" if bf16 else "float32"  # bf16 storage: ncnn computes in fp32
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

    def __call__(self, tiles: np.ndarray, cores: list[Core]) -> list[np.ndarray]:
        white = np.float32(peak(tiles.dtype))
        out = []
        for tile, core in zip(tiles, cores, strict=True):
            x = np.ascontiguousarray(tile.transpose(2, 0, 1), dtype=np.float32) / white  # CHW in [0, 1]
            rows, cols = self.upscaled(core)
            out.append(to_levels(self._one(x)[:, rows, cols].transpose(1, 2, 0), tiles.dtype))
        return out

    def _one(self, x: np.ndarray) -> np.ndarray:
        extractor = self._net.create_extractor()
        extractor.input("data", self._mat(x))  # x stays referenced until extract: ncnn reads it in place
        code, out = extractor.extract("output")
        if code == NCNN_OUT_OF_MEMORY:
            raise RuntimeError("ncnn: out of memory")
        if code != 0:
            raise RuntimeError(f"ncnn failed with code {code}")
        return np.array(out)


class OpenVinoEngine(Engine):
    """The network in OpenVINO, integers in and out: the graph converts the tiles to floats and rounds its
    output back to the image's type itself, in its own threads, so no conversion runs outside it (numpy's would
    run on one core). OpenVINO folds each PReLU into the convolution before it, which PyTorch does not
    (issue 45)."""

    def __init__(
        self, net: PlainNet, threads: int, bf16: bool = False, int8: list[tuple[float, float]] | None = None
    ) -> None:
        import openvino as ov

        super().__init__(net)
        self.precision = "bfloat16" if bf16 else "float32"
        # 768-pixel tiles (the whole frame where one holds it) ran -0.4 % to +17 % faster than 384 in bf16 (fp32:
        # -0.9 % to +18 %) for the 32- and 64-channel models on 640x360, 960x540 and 1280x720 frames, five runs
        # each; the 16-channel tiny model did not gain at 1280x720 (docs/performance.md, "The CPU tile size")
        self.cpu_tile = OPENVINO_WIDE_TILE if net.channels >= 32 else None
        self._net, self._int8, self._core = net, int8, ov.Core()
        self._config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32"}
        self._compiled: dict[np.dtype, Callable] = {}  # one graph per image type, compiled when first met

    def __call__(self, tiles: np.ndarray, cores: list[Core]) -> list[np.ndarray]:
        if tiles.dtype not in self._compiled:
            model = openvino_model(self._net, tiles.dtype, self._int8)
            self._compiled[tiles.dtype] = self._core.compile_model(model, "CPU", self._config)
        try:
            out = self._compiled[tiles.dtype](np.ascontiguousarray(tiles))[0]
        except RuntimeError as exc:
            if "bad_alloc" in str(exc) or "allocate" in str(exc).lower():
                raise RuntimeError(f"openvino: out of memory ({exc})") from exc
            raise
        # copies: the request's output buffer is reused by the next call
        return [np.array(out[i, rows, cols]) for i, (rows, cols) in enumerate(map(self.upscaled, cores))]


def openvino_model(net: PlainNet, dtype: np.dtype, int8: list[tuple[float, float]] | None = None):
    """The deploy network as an OpenVINO model of any batch and image size, N x H x W x 3 integers of `dtype` in
    and out (channels-last memory, as the Upscaler keeps images): the input scaled to [0, 1], 3x3 convolutions
    with bias, PReLUs, the input added to the last conv's channels, the result clamped, scaled and rounded
    half to even as media.tensors.to_levels does, then the pixel shuffle on the integers.

    `int8`: each conv's input range (low, high), from calibration: the input is then quantized to 256 levels
    over that range and the weights to 255 symmetric levels per output channel, as FakeQuantize nodes, which
    OpenVINO's CPU plugin runs as int8 convolutions (post-training quantization, measured in
    benchmarks/int8.py)."""
    import openvino as ov
    import openvino.opset13 as ops

    def quantized(node, low: np.ndarray, high: np.ndarray, levels: int):
        low, high = ops.constant(low.astype(np.float32)), ops.constant(high.astype(np.float32))
        return ops.fake_quantize(node, low, high, low, high, levels)

    s, white = net.scale, ops.constant(np.float32(peak(dtype)))
    kind = ov.Type.u8 if np.dtype(dtype) == np.uint8 else ov.Type.u16
    image = ops.parameter(ov.PartialShape([-1, -1, -1, 3]), kind, name="data")
    unit = ops.divide(ops.convert(image, ov.Type.f32), white)
    nchw = ops.transpose(unit, ops.constant(np.array([0, 3, 1, 2], dtype=np.int64)))
    x, convs = nchw, 0
    for layer, a, b in net.layers():
        if layer == "conv":
            weight = ops.constant(a)
            if int8 is not None:
                x = quantized(x, np.array(int8[convs][0]), np.array(int8[convs][1]), 256)
                top = np.abs(a).reshape(len(a), -1).max(axis=1).reshape(-1, 1, 1, 1)
                weight = quantized(weight, -top, top, 255)
            x = ops.convolution(x, weight, [1, 1], [1, 1], [1, 1], [1, 1])
            x = ops.add(x, ops.constant(b.reshape(1, -1, 1, 1)))
            convs += 1
        else:
            x = ops.prelu(x, ops.constant(a))
    # channel c*s*s + k of the last conv takes input channel c: PixelShuffle then spreads it to c's s*s sub-pixels
    repeated = ops.gather(nchw, ops.constant(np.repeat(np.arange(3), s * s).astype(np.int64)), ops.constant(1))
    levels = ops.round(ops.multiply(ops.clamp(ops.add(x, repeated), 0.0, 1.0), white), "half_to_even")
    out = ops.depth_to_space(ops.convert(levels, kind), "depth_first", s)  # depth_first: PyTorch's order
    nhwc = ops.transpose(out, ops.constant(np.array([0, 2, 3, 1], dtype=np.int64)))
    return ov.Model([nhwc], [image], "repsr")


def make_engine(engine: str, net: PlainNet, device: str, precision: str, compile_model: bool = False) -> Engine:
    """The engine resolve_engine named (not `auto`); an installed package whose library fails to load is said
    in one line."""
    if engine == "torch":
        return TorchEngine(net, device, precision, compile_model)
    forward = {"ncnn": NcnnEngine, "openvino": OpenVinoEngine}[engine]
    try:
        return forward(net, cpu_threads(), bf16=cpu_precision(engine, precision) == "bf16")
    except (ImportError, OSError) as exc:
        raise UserError(f"--engine {engine}: its package is installed but does not load ({exc})") from None
