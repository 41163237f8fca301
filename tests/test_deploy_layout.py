"""The deploy network is Real-ESRGAN's SRVGGNetCompact: same keys, shapes and forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from repsr_cli.model import RepSRNet, fuse, size_config


def compact_forward(state: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> torch.Tensor:
    """SRVGGNetCompact's forward written from its published layout alone: conv/PReLU pairs, last conv,
    PixelShuffle, plus the nearest-neighbour upsampled input."""
    n = max(int(k.split(".")[1]) for k in state)
    out = x
    for i in range(0, n + 1):
        if f"body.{i}.bias" in state:
            out = F.conv2d(out, state[f"body.{i}.weight"], state[f"body.{i}.bias"], padding=1)
        else:
            out = F.prelu(out, state[f"body.{i}.weight"])
    return F.pixel_shuffle(out, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")


@pytest.mark.parametrize("size", ["tiny", "small"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_state_dict_matches_srvggnet_compact(size: str, scale: int) -> None:
    cfg = size_config(size, scale)
    state = fuse(RepSRNet(cfg).eval()).state_dict()
    c, b = cfg.channels, cfg.blocks
    expected = {"body.0.weight": (c, 3, 3, 3), "body.0.bias": (c,), "body.1.weight": (c,)}
    for i in range(b):
        expected[f"body.{2 * i + 2}.weight"] = (c, c, 3, 3)
        expected[f"body.{2 * i + 2}.bias"] = (c,)
        expected[f"body.{2 * i + 3}.weight"] = (c,)
    expected[f"body.{2 * b + 2}.weight"] = (3 * scale * scale, c, 3, 3)
    expected[f"body.{2 * b + 2}.bias"] = (3 * scale * scale,)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_independent_forward_agrees(scale: int, layout: torch.memory_format) -> None:
    """Bit for bit: our forward adds the input before the shuffle, which must give the very same sums."""
    torch.manual_seed(scale)
    deploy = fuse(RepSRNet(size_config("tiny", scale)).eval()).to(memory_format=layout)
    x = torch.rand(2, 3, 13, 17).contiguous(memory_format=layout)
    with torch.no_grad():
        assert torch.equal(deploy(x), compact_forward(deploy.state_dict(), x, scale))
