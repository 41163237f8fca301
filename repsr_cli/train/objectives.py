"""What a generator step minimises: one Objective per run, built from a recipe row (recipes.py).

A pixel-only recipe is the same object with no discriminator, so the trainer never branches on the recipe.
An adversarial recipe owns its discriminator and that discriminator's optimizer; both go into the
checkpoint (`state_dict`), so resume is exact.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..model.discriminator import PatchDiscriminator
from .features import RandomFeatures, feature_loss
from .recipes import Recipe

Parts = dict[str, float]

# BT.601 luma weights: the grid term looks at brightness, where a checkerboard shows.
_LUMA = (0.299, 0.587, 0.114)


def fft_amplitude_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L1 between the 2-D FFT amplitudes (orthonormal, so the scale matches the pixels')."""
    return F.l1_loss(torch.fft.rfft2(sr, norm="ortho").abs(), torch.fft.rfft2(hr, norm="ortho").abs())


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian over 3 sigma each side, edges replicated (a training patch may be smaller than the
    kernel's reach, which reflection would not allow)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).expand(x.shape[1], 1, -1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), kernel.unsqueeze(2), groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), kernel.unsqueeze(3), groups=x.shape[1])


def unsharp(hr: torch.Tensor, amount: float, sigma: float, threshold: float = 10 / 255) -> torch.Tensor:
    """Unsharp mask where the detail stands out: the mask of detail above `threshold` (10 grey levels, as in
    Real-ESRGAN's USM), blurred to soften its edge, leaves flat areas and their fine noise alone."""
    detail = hr - gaussian_blur(hr, sigma)
    mask = gaussian_blur((detail.abs() > threshold).to(hr.dtype), sigma)
    return (hr + amount * mask * detail).clamp(0, 1)


def local_range(x: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel minimum and maximum over the (2r+1)^2 window around each pixel (the image's own pixels only
    at its borders: max pooling pads with -inf)."""
    k = 2 * radius + 1
    return -F.max_pool2d(-x, k, stride=1, padding=radius), F.max_pool2d(x, k, stride=1, padding=radius)


def overshoot_loss(sr: torch.Tensor, hr: torch.Tensor, scale: int, margin: float = 0.0) -> torch.Tensor:
    """Mean amount by which the output leaves the HR's local range (metrics.halo_share's window) by more than
    `margin`: zero for any output that stays within the levels the HR has around each pixel, however steep."""
    lo, hi = local_range(hr, scale)
    return (F.relu(sr - hi - margin) + F.relu(lo - margin - sr)).mean()


def highpass_luma(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Y minus its (2s+1)-box blur: the detail layer in which a PixelShuffle checkerboard lives."""
    y = sum(w * x[:, c : c + 1] for c, w in enumerate(_LUMA))
    k = 2 * scale + 1
    blurred = F.avg_pool2d(F.pad(y, (scale,) * 4, mode="replicate"), k, stride=1)
    return y - blurred


def phase_means(residual: torch.Tensor, scale: int) -> torch.Tensor:
    """N x s*s: the residual's mean on each of the s*s pixel phases (PixelShuffle's sub-pixel positions)."""
    n, _, h, w = residual.shape
    r = residual[:, 0, : h - h % scale, : w - w % scale]
    return r.unflatten(1, (-1, scale)).unflatten(3, (-1, scale)).mean(dim=(1, 3)).flatten(1)


def grid_loss(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The output's per-phase detail means should be the target's, relative to the target's detail spread."""
    res_sr, res_hr = highpass_luma(sr, scale), highpass_luma(hr, scale)
    spread = res_hr.flatten(1).std(dim=1, keepdim=True) + 1e-3
    diff = (phase_means(res_sr, scale) - phase_means(res_hr, scale)) / spread
    return diff.abs().mean()


def artifact_map(sr: torch.Tensor, hr: torch.Tensor, reference: torch.Tensor, window: int = 7) -> torch.Tensor:
    """LDL's refined artefact map (Liang et al., CVPR 2022, arXiv 2203.09195, Sec. 3): the local variance of the
    output's residual, scaled by the patch's residual variance to the power 1/5, kept only where the EMA
    generator's residual is smaller (where it is larger, the detail is more likely real texture)."""
    residual = (hr - sr).abs().sum(dim=1, keepdim=True)
    ref_residual = (hr - reference).abs().sum(dim=1, keepdim=True)
    patch_weight = residual.flatten(1).var(dim=1).pow(0.2).view(-1, 1, 1, 1)
    pad = window // 2
    padded = F.pad(residual, (pad,) * 4, mode="reflect")
    mean = F.avg_pool2d(padded, window, stride=1)
    local_var = (F.avg_pool2d(padded * padded, window, stride=1) - mean * mean).clamp_min(0)
    weight = patch_weight * local_var
    return torch.where(residual < ref_residual, torch.zeros_like(weight), weight)


class Objective:
    """Loss terms of one recipe; with an adversarial recipe, also the discriminator and its optimizer."""

    def __init__(
        self,
        recipe: Recipe,
        scale: int,
        device: str,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.recipe = recipe
        self.scale = scale
        self.autocast = autocast
        self.disc: PatchDiscriminator | None = None
        self.d_opt: torch.optim.Optimizer | None = None
        self.features = RandomFeatures().to(device) if recipe.feature_weight > 0 else None
        if recipe.adversarial:
            self.disc = PatchDiscriminator(recipe.d_channels).to(device)
            self.d_opt = torch.optim.Adam(self.disc.parameters(), lr=recipe.d_lr, betas=(0.9, 0.99))

    @property
    def needs_reference(self) -> bool:
        """The EMA generator's output is needed (for LDL's artefact map)."""
        return self.recipe.ldl_weight > 0

    def set_lr_factor(self, factor: float) -> None:
        """The discriminator follows the generator's schedule (as Real-ESRGAN's training does)."""
        if self.d_opt is not None:
            for group in self.d_opt.param_groups:
                group["lr"] = self.recipe.d_lr * factor

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        assert self.disc is not None
        with self.autocast():
            return self.disc(x).float()

    def _sides(self, real: torch.Tensor, fake: torch.Tensor, real_label: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of each side's logits toward its label (the fake side's is the other one): as they are
        (vanilla), or each relative to the other side's mean (RaGAN). Both players use this one rule."""
        if self.recipe.gan == "ragan":
            real, fake = real - fake.mean(), fake - real.mean()
        bce = F.binary_cross_entropy_with_logits
        return bce(real, torch.full_like(real, real_label)), bce(fake, torch.full_like(fake, 1 - real_label))

    def _adversarial(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Generator side: the labels swapped. Vanilla needs only the fake side, RaGAN both (real ones fixed)."""
        fake_logits = self._logits(fake)
        if self.recipe.gan == "vanilla":
            return self._sides(fake_logits, fake_logits, 0.0)[1]
        with torch.no_grad():
            real_logits = self._logits(real)
        return 0.5 * sum(self._sides(real_logits, fake_logits, 0.0))

    def generator_loss(
        self, sr: torch.Tensor, hr: torch.Tensor, reference: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Parts]:
        """The weighted sum and each term by name (unweighted), for the log."""
        r = self.recipe
        real = hr  # what the discriminator compares with; every other term aims at the (sharpened) target
        if r.target_sharpen > 0:
            hr = unsharp(hr, r.target_sharpen, r.target_sharpen_sigma)
            if r.target_limit:
                lo, hi = local_range(real, self.scale)
                hr = torch.minimum(torch.maximum(hr, lo), hi)
        pixel = (F.l1_loss if r.pixel == "l1" else F.mse_loss)(sr, hr)
        terms: dict[str, tuple[float, torch.Tensor]] = {"pixel": (r.pixel_weight, pixel)}
        if r.fft_weight > 0:
            terms["fft"] = (r.fft_weight, fft_amplitude_loss(sr, hr))
        if self.features is not None:
            with self.autocast():
                terms["feature"] = (r.feature_weight, feature_loss(self.features, sr, hr).float())
        if r.overshoot_weight > 0:
            terms["overshoot"] = (r.overshoot_weight, overshoot_loss(sr, real, self.scale, r.overshoot_margin))
        if r.grid_weight > 0:
            terms["grid"] = (r.grid_weight, grid_loss(sr, hr, self.scale))
        if r.ldl_weight > 0:
            if reference is None:
                raise ValueError("the LDL term needs the EMA generator's output")
            mask = artifact_map(sr.detach(), hr, reference)
            terms["ldl"] = (r.ldl_weight, F.l1_loss(mask * sr, mask * hr))
        if self.disc is not None:
            self.disc.requires_grad_(False)  # its gradient here would be thrown away
            terms["gan"] = (r.gan_weight, self._adversarial(sr, real))
            self.disc.requires_grad_(True)
        loss = sum(w * t for w, t in terms.values())
        return loss, {name: float(t.detach()) for name, (_, t) in terms.items()}

    def after_generator_step(self, sr: torch.Tensor, hr: torch.Tensor) -> Parts:
        """One discriminator step on the step's output (detached) against the HR batch."""
        if self.disc is None or self.d_opt is None:
            return {}
        fake, real = self._logits(sr.detach()), self._logits(hr)
        d_real, d_fake = self._sides(real, fake, 1.0)
        self.d_opt.zero_grad(set_to_none=True)
        (d_real + d_fake).backward()
        self.d_opt.step()
        return {"d_real": float(d_real.detach()), "d_fake": float(d_fake.detach())}

    def state_dict(self) -> dict[str, Any]:
        if self.disc is None or self.d_opt is None:
            return {}
        return {"discriminator": self.disc.state_dict(), "optimizer": self.d_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.disc is None or self.d_opt is None:
            return
        self.disc.load_state_dict(state["discriminator"])
        self.d_opt.load_state_dict(state["optimizer"])
