"""`repsr convert --format onnx|ncnn`: checked in the real runtimes (onnxruntime, ncnn) against our forward."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repsr_cli.deploy.weights import load_model, load_plain
from repsr_cli.formats import exports

from .conftest import cli

ROOT = Path(__file__).resolve().parents[1]
ort = pytest.importorskip("onnxruntime")
ncnn = pytest.importorskip("ncnn")


def inputs() -> list[np.ndarray]:
    """A real image (the bundled example chart) and odd sizes, as 1x3xHxW float32 in [0, 1]."""
    chart = np.asarray(Image.open(ROOT / "examples" / "chart_lr.png").convert("RGB"), np.float32) / 255
    rng = np.random.default_rng(0)
    odd = [rng.random((h, w, 3), dtype=np.float32) for h, w in ((37, 53), (128, 96))]
    return [np.ascontiguousarray(a.transpose(2, 0, 1)[None]) for a in (chart, *odd)]


def ours(name: str, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return load_model(name)(torch.from_numpy(x)).numpy()


def quantized(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0, 1) * 255)


@pytest.mark.parametrize("name", ["repsr-tiny-x4", "repsr-x3"])
def test_onnx_matches_our_forward(tmp_path: Path, name: str) -> None:
    fp32, fp16 = tmp_path / "m.onnx", tmp_path / "h.onnx"
    assert cli("convert", name, "--format", "onnx", "-o", fp32).returncode == 0
    assert cli("convert", name, "--format", "onnx", "--half", "-o", fp16).returncode == 0
    full = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    half = ort.InferenceSession(str(fp16), providers=["CPUExecutionProvider"])
    meta = full.get_modelmeta().custom_metadata_map
    scale = load_model(name).cfg.scale
    assert meta["scale"] == str(scale) and meta["architecture"] == "SRVGGNetCompact" and meta["source"]
    assert [i.name for i in full.get_inputs()] == ["input"] and [o.name for o in full.get_outputs()] == ["output"]
    for x in inputs():
        want = ours(name, x)
        got = full.run(["output"], {"input": x})[0]
        assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4
        got16 = half.run(["output"], {"input": x.astype(np.float16)})[0].astype(np.float32)
        assert np.abs(quantized(got16) - quantized(want)).max() <= 1  # within 1/255


def test_ncnn_matches_our_forward(tmp_path: Path) -> None:
    name = "repsr-x2"
    result = cli("convert", name, "--format", "ncnn", "-o", tmp_path / "x2")
    assert result.returncode == 0, result.stderr
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    assert net.load_param(str(tmp_path / "x2.param")) == 0 and net.load_model(str(tmp_path / "x2.bin")) == 0
    for x in inputs():
        ex = net.create_extractor()
        ex.input("data", ncnn.Mat(np.ascontiguousarray(x[0])))
        ret, out = ex.extract("output")
        got = np.array(out)[None]
        want = ours(name, x)
        assert ret == 0 and got.shape == want.shape
        assert np.abs(got - want).max() <= 1 / 255


def test_export_errors_are_one_line_and_leave_no_partial_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def error(*args: object) -> str:
        result = cli("convert", *args)
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result.stderr

    assert "unknown --format 'tflite'" in error("repsr-x2", "--format", "tflite")
    assert "does not exist" in error("repsr-x2", "--format", "onnx", "-o", tmp_path / "no" / "m.onnx")
    assert "--half is for ONNX" in error("repsr-x2", "--format", "ncnn", "--half")
    (tmp_path / "fake.pth").write_bytes(b"not a model")
    assert "fake.pth" in error(tmp_path / "fake.pth", "--format", "onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)  # the export extra not installed
    assert "pip install 'repsr[export]'" in error("repsr-x2", "--format", "onnx", "-o", tmp_path / "m.onnx")
    calls = []

    def failing_second(path: Path, write) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        write_real(path, write)

    write_real = exports.atomic_write
    monkeypatch.setattr(exports, "atomic_write", failing_second)
    with pytest.raises(OSError):
        exports.write_ncnn(load_plain("repsr-x2"), tmp_path / "n.param", tmp_path / "n.bin")
    assert not (tmp_path / "n.param").exists() and not (tmp_path / "n.bin").exists()


def test_ncnn_pair_reads_back_as_the_network_it_was_written_from(tmp_path: Path) -> None:
    """Reading is the writer's inverse up to the float16 the weights are stored in; the read network then runs
    like the original (within the half-precision rounding of its weights)."""
    net = load_model("repsr-tiny-x4")
    param, data = exports.ncnn_files(load_plain("repsr-tiny-x4"))
    (tmp_path / "m.param").write_text(param)
    (tmp_path / "m.bin").write_bytes(data)
    back = load_model(tmp_path / "m.param")
    assert back.cfg == net.cfg
    for key, value in net.state_dict().items():
        stored = value.half().float() if value.ndim == 4 else value
        assert torch.equal(back.state_dict()[key], stored), key
    x = torch.from_numpy(inputs()[1])
    with torch.no_grad():
        assert (back(x) - net(x)).abs().max() < 2e-3


def test_ncnn_pairs_that_are_not_plain_compact_models_are_refused_in_one_line(tmp_path: Path) -> None:
    param, data = exports.ncnn_files(load_plain("repsr-tiny-x4"))
    cases = {
        "truncated": (param, data[:-100], "ends before"),
        "resized": (
            param.replace("output 0=0", "added 0=0") + "Interp down 1 1 added output 0=3 1=0.5 2=0.5\n",
            data,
            "resized by 0.5",
        ),
        "other-layer": (param.replace("PReLU prelu_1", "ReLU relu_1"), data, "ReLU"),
        "quantised": (param, b"\x38\x4b\x0d\x00" + data[4:], "tag"),
        "not-ncnn": ("hello\n", data, "not an ncnn"),
    }
    for name, (text, blob, words) in cases.items():
        (tmp_path / f"{name}.param").write_text(text)
        (tmp_path / f"{name}.bin").write_bytes(blob)
        result = cli(
            "upscale",
            str(ROOT / "examples" / "chart_lr.png"),
            "-m",
            str(tmp_path / f"{name}.param"),
            "-o",
            str(tmp_path / f"{name}.png"),
        )
        assert result.returncode != 0 and words in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr and not (tmp_path / f"{name}.png").exists()
