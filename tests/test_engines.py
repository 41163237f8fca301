"""The forward-pass engines: ncnn and OpenVINO run every bundled model within one level of PyTorch's fp32,
`auto` measures the candidates once per CPU, layout and tile size and keeps the fastest, and an engine that
cannot run is refused in one line before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repsr_cli.deploy.weights import available_models
from repsr_cli.errors import UserError
from repsr_cli.infer import engines
from repsr_cli.infer.engines import available, candidates, engine_choices, fastest, resolve_engine
from repsr_cli.infer.upscaler import Upscaler

from .conftest import cli
from .test_bad_input import one_line_error

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BUNDLED = sorted(e.name for e in available_models() if e.source == "bundled")
ENGINES = [
    pytest.param(e, marks=pytest.mark.skipif(not available(e), reason=f"{e} is not installed"))
    for e in ("ncnn", "openvino")
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", BUNDLED)
def test_cpu_engines_run_every_bundled_model_within_one_level_of_torch_fp32(engine: str, name: str) -> None:
    """8- and 16-bit images alike (OpenVINO's graph takes and gives each type's integers): one 8-bit level is
    257 16-bit ones."""
    ours = Upscaler(name, engine="torch", precision="fp32", tile=0)
    other = Upscaler(name, engine=engine, precision="fp32", tile=0)
    assert other.engine == engine and other.precision == "float32"
    for dtype, level in ((np.uint8, 1), (np.uint16, 257)):
        img = np.random.default_rng(0).integers(0, np.iinfo(dtype).max + 1, (37, 45, 3), dtype=dtype)
        got = other.upscale_array(img)
        assert got.dtype == dtype and np.abs(got - ours.upscale_array(img).astype(int)).max() <= level, dtype


def test_auto_measures_on_the_cpu_and_is_pytorch_where_only_pytorch_can_run() -> None:
    cpu = "cpu"
    several = len(candidates(cpu, "auto")) > 1
    assert resolve_engine("auto", cpu, "auto") == ("auto" if several else "torch")
    assert ("ncnn", "fp32") in candidates(cpu, "fp32") or not available("ncnn")
    assert ("openvino", "fp32") in candidates(cpu, "fp32") or not available("openvino")
    assert ("ncnn", "bf16") not in candidates(cpu, "bf16")  # ncnn is chosen in fp32 only
    assert resolve_engine("auto", cpu, "auto", compile_model=True) == "torch"
    assert resolve_engine("auto", "cuda:0", "fp16") == "torch"
    assert resolve_engine("torch", cpu, "bf16") == "torch"
    with pytest.raises(UserError, match="unknown engine 'tensorrt'"):
        resolve_engine("tensorrt", cpu, "auto")


def test_the_fastest_pair_is_measured_once_then_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(engines, "busy_share", lambda: 0.0)  # a quiet machine, whatever this one is doing
    calls: list[tuple[str, str]] = []
    pause = {("torch", "fp32"): 0.004, ("ncnn", "fp32"): 0.0}

    def make(engine: str, precision: str):
        def run() -> None:
            calls.append((engine, precision))
            time.sleep(pause[engine, precision])

        return run

    pairs = list(pause)
    assert fastest(pairs, "layout-a", 64, make) == ("ncnn", "fp32")
    assert len(calls) == 6  # a warm-up and two rounds each
    assert fastest(pairs, "layout-a", 64, make) == ("ncnn", "fp32") and len(calls) == 6  # cached
    assert fastest(pairs, "layout-a", 128, make) == ("ncnn", "fp32") and len(calls) == 12  # another tile size
    kept = json.loads((tmp_path / "repsr" / "engine-choices.json").read_text())
    assert engine_choices() == tmp_path / "repsr" / "engine-choices.json"
    assert {tuple(v["choice"]) for v in kept.values()} == {("ncnn", "fp32")}


def test_a_near_tie_goes_to_the_engine_that_needs_no_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within engines.TIE of the fastest, an engine without torch's 2 s import wins; beyond it, the fastest."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(engines, "busy_share", lambda: 0.0)

    def make(pause: dict[str, float]):
        return lambda engine, precision: (lambda: time.sleep(pause[engine]))

    pairs = [("torch", "bf16"), ("openvino", "bf16")]
    assert fastest(pairs, "tied", 64, make({"torch": 0.020, "openvino": 0.0202})) == ("openvino", "bf16")
    assert fastest(pairs, "apart", 64, make({"torch": 0.020, "openvino": 0.028})) == ("torch", "bf16")


def test_a_choice_made_on_a_busy_machine_is_measured_again_when_it_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls: list[str] = []
    load = {"now": 1.0}
    monkeypatch.setattr(engines, "busy_share", lambda: load["now"])

    def make(engine: str, precision: str):
        return lambda: calls.append(engine)

    pairs = [("torch", "fp32"), ("ncnn", "fp32")]
    fastest(pairs, "layout-b", 64, make)
    assert len(calls) == 6  # measured while busy
    fastest(pairs, "layout-b", 64, make)
    assert len(calls) == 6  # still busy: kept
    load["now"] = 0.1
    fastest(pairs, "layout-b", 64, make)
    assert len(calls) == 12  # quieter now: measured again
    fastest(pairs, "layout-b", 64, make)
    assert len(calls) == 12  # and that quiet measurement is kept


def test_an_auto_upscaler_runs_the_measured_choice(tmp_path: Path) -> None:
    up = Upscaler("repsr-tiny-x4", tile=32)
    assert (up.engine, up.precision) in {
        (e, {"fp32": "float32", "bf16": "bfloat16"}[p]) for e, p in candidates("cpu", "auto")
    }
    again = Upscaler("repsr-tiny-x4", tile=32)
    assert (again.engine, again.precision) == (up.engine, up.precision)


@pytest.mark.parametrize("engine", ENGINES)
def test_cpu_engines_refuse_what_only_pytorch_does(engine: str, tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    one_line_error(cli("upscale", image, "--engine", engine, "--compile"), "--compile is PyTorch's")
    one_line_error(cli("upscale", image, "--engine", engine, "--precision", "fp16"), "runs auto, fp32 or bf16")
    one_line_error(cli("upscale", image, "--engine", "vulkan"), "unknown engine 'vulkan'")
    assert not list(tmp_path.glob("a_x4*"))  # refused before any work


@pytest.mark.skipif(not available("openvino"), reason="openvino is not installed")
def test_openvino_int8_graph_stays_near_fp32_and_quantizes() -> None:
    """The int8 network benchmarks/int8.py measures: close to fp32 with the image's own ranges, and really
    quantized (ranges far too narrow clip every activation, which the test sees)."""
    from repsr_cli.deploy.weights import load_model, load_plain
    from repsr_cli.infer.engines import OpenVinoEngine
    from repsr_cli.media.tensors import to_array, to_tensor

    net = load_model("repsr-tiny-x4")
    photo = np.ascontiguousarray(np.asarray(Image.open(EXAMPLES / "chart_lr.png").convert("RGB"))[:48, :64])
    ranges: list[tuple[float, float]] = []
    convs = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
    hooks = [
        c.register_forward_pre_hook(lambda _m, a: ranges.append((a[0].min().item(), a[0].max().item()))) for c in convs
    ]
    with torch.inference_mode():
        want = to_array(net(to_tensor(photo))).astype(float)
    for hook in hooks:
        hook.remove()
    whole = [(0, 48, 0, 64)]
    plain = load_plain("repsr-tiny-x4")
    near = OpenVinoEngine(plain, 1, int8=ranges)(photo[None], whole)[0]
    assert np.abs(near - want).mean() < 2.0  # a chart's hard edges: about 1.3 levels on average
    clipped = OpenVinoEngine(plain, 1, int8=[(0.0, 1e-3)] * len(ranges))(photo[None], whole)[0]
    assert np.abs(clipped - want).mean() > 5.0


@pytest.mark.skipif(not available("openvino"), reason="openvino is not installed")
def test_openvino_tiles_wider_networks_in_larger_tiles() -> None:
    """The automatic CPU tile is the engine's own where it has one (OpenVINO, 32 channels or more), and images up
    to the whole-image bound still run whole whatever the tile."""
    from repsr_cli.infer.upscaler import CPU_TILE, WHOLE_UP_TO_TILES

    wide, narrow = Upscaler("repsr-x4", engine="openvino"), Upscaler("repsr-tiny-x4", engine="openvino")
    assert (wide.tile, narrow.tile) == (engines.OPENVINO_WIDE_TILE, CPU_TILE)
    assert Upscaler("repsr-x4", engine="torch").tile == CPU_TILE
    side = int((WHOLE_UP_TO_TILES * CPU_TILE**2) ** 0.5)
    assert wide.tile_for(side, side) == 0 and wide.tile_for(side + 1, side + 1) == engines.OPENVINO_WIDE_TILE


def test_an_engine_whose_library_does_not_load_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise OSError("libopenvino.so: cannot open shared object file")

    monkeypatch.setattr(engines, "OpenVinoEngine", broken)
    with pytest.raises(UserError, match="--engine openvino: its package is installed but does not load"):
        engines.make_engine("openvino", None, "cpu", "fp32")


def test_the_cpu_facts_read_without_torch_agree_with_torch() -> None:
    """The engine choice is keyed and its candidates listed from /proc/cpuinfo, not torch: they must say what
    torch says, or a choice cached by one path would not be found by the other."""
    from repsr_cli.runtime import cpu_name, cpu_threads, native_bf16

    assert native_bf16("cpu") == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert cpu_threads() == torch.get_num_threads()
    assert f"({torch.backends.cpu.get_cpu_capability()})" in cpu_name() and torch.__version__ in cpu_name()


@pytest.mark.skipif(not available("openvino"), reason="openvino is not installed")
def test_an_upscale_on_a_cpu_engine_never_imports_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's import is most of a single-image command's time (docs/performance.md, "Time to first pixel"):
    with a CPU engine, forced or the cached choice, and a model file of ours, the command must not pay it."""
    from repsr_cli.deploy.weights import default_model, load_plain
    from repsr_cli.infer.upscaler import CPU_TILE

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(engines, "busy_share", lambda: 0.0)
    # the choice a first run would cache for the default model where OpenVINO is fastest
    layout = load_plain(default_model(4, "clean", ("tiny", "small")).path).layout
    slow = lambda engine, precision: (lambda: time.sleep(0.0 if engine == "openvino" else 0.002))  # noqa: E731
    assert fastest(candidates("cpu", "auto"), layout, CPU_TILE, slow)[0] == "openvino"
    image = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(image)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    script = (
        "import sys, runpy; sys.argv = ['repsr', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('repsr_cli', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('torch' in sys.modules)\n"
    )

    def torch_imported(*args: object) -> bool:
        done = subprocess.run(
            [sys.executable, "-c", script, "upscale", str(image), *map(str, args)],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()[-1] == "True"

    assert not torch_imported("-o", tmp_path / "default.png")  # the default command, its choice cached
    assert not torch_imported("--engine", "openvino", "--device", "cpu", "-o", tmp_path / "ov.png")
    assert not torch_imported("--engine", "ncnn", "--device", "cpu", "-s", "2", "-o", tmp_path / "ncnn.png")
    assert torch_imported("--engine", "torch", "--device", "cpu", "-o", tmp_path / "torch.png")  # the check sees it
    assert all((tmp_path / f"{name}.png").is_file() for name in ("default", "ov", "ncnn"))
