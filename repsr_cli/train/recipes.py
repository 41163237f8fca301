"""The loss recipes of `repsr train --loss`: which terms a generator step adds, and their weights, as data.

Torch-free, so the CLI lists the names without loading torch; train/objectives.py builds the terms. A new
recipe is one row here. The sharp recipe's weights were chosen by a search of short fine-tunes scored along each
run (`benchmarks/sharp_recipes.py`, results in docs/sharp-search.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

GAN_KINDS = ("none", "vanilla", "ragan")
PIXEL_LOSSES = ("l1", "l2")


@dataclass(frozen=True)
class Recipe:
    """Weights of the loss terms (0 leaves a term out) and the adversarial set-up, if any."""

    pixel: str = "l1"  # l1 | l2: the pixel loss
    pixel_weight: float = 1.0
    # L1 between the FFT amplitudes of output and target: pushes the output's spectrum up to the target's where
    # a pixel loss alone averages high frequencies away (as in Real-ESRGAN-style sharp fine-tunes).
    fft_weight: float = 0.0
    # Per-phase grid: the s*s pixel phases of the output's high-pass residual should carry the same means as the
    # target's; an adversarial PixelShuffle generator otherwise drifts into a checkerboard (docs/sharp.md).
    grid_weight: float = 0.0
    # L1 between features of a fixed random VGG-style net (train/features.py, arXiv 2103.10571): a perceptual
    # loss without downloaded weights, which ties what the GAN invents to the target's local structure.
    feature_weight: float = 0.0
    # Unsharp-mask amount applied to the target of every term but the adversarial one, as Real-ESRGAN's training
    # sharpens its ground truth for the pixel and perceptual losses (Wang et al. 2021, arXiv 2107.10833): the
    # generator aims at crisper edges than the HR has, while the discriminator still judges the plain HR.
    target_sharpen: float = 0.0
    target_sharpen_sigma: float = 8.0  # Gaussian sigma (HR pixels): basicsr's USMSharp, radius 50 -> sigma 8
    # Clamp the sharpened target to the HR's own minimum-maximum over the (2s+1)^2 window around each pixel: the
    # edge is steepened but gains no rim beyond the levels beside it (the overshoot control of video sharpeners
    # such as AviSynth's LimitedSharpen). An unsharp mask alone puts a halo into the target itself.
    target_limit: bool = False
    # L1 of the output beyond the plain HR's local range (the same window): what `repsr eval` counts as halo,
    # penalised where it happens and nowhere else, so a steep edge in the right place costs nothing.
    overshoot_weight: float = 0.0
    # Levels (of 1.0) the output may pass the local range before the overshoot term charges it: at 8/255, the
    # tolerance of the halo measure, a crisp edge may keep the slight overshoot that reads as sharp, a ring not.
    overshoot_margin: float = 0.0
    gan: str = "none"  # none | vanilla | ragan (relativistic average, ESRGAN, arXiv 1809.00219)
    gan_weight: float = 0.0
    # LDL (Liang et al., CVPR 2022, arXiv 2203.09195): an L1 term on the pixels where the output has artefacts
    # that the EMA generator does not; needs `ema`.
    ldl_weight: float = 0.0
    ema: float = 0.0  # decay of the generator EMA (Real-ESRGAN keeps one at 0.999); 0: none
    d_channels: int = 16  # the discriminator's first width (model/discriminator.py)
    d_lr: float = 1e-4

    def __post_init__(self) -> None:
        if self.pixel not in PIXEL_LOSSES or self.gan not in GAN_KINDS:
            raise ValueError(f"unknown pixel loss {self.pixel!r} or GAN {self.gan!r}")
        if self.overshoot_weight < 0 or self.overshoot_margin < 0:
            raise ValueError("the overshoot weight and margin must be >= 0")
        if self.target_sharpen < 0 or self.target_sharpen_sigma <= 0:
            raise ValueError("the target's unsharp mask needs an amount >= 0 and a sigma > 0")
        if self.ldl_weight > 0 and self.ema <= 0:
            raise ValueError("the LDL term compares with the generator EMA: it needs ema > 0")

    @property
    def adversarial(self) -> bool:
        return self.gan != "none" and self.gan_weight > 0


_SHARP_USM = Recipe(
    grid_weight=1.0, feature_weight=1.0, target_sharpen=1.25, gan="vanilla", gan_weight=0.05, ldl_weight=1.0, ema=0.999
)

_SHARP_OVERSHOOT10 = replace(_SHARP_USM, overshoot_weight=10.0, overshoot_margin=8 / 255)

RECIPES: dict[str, Recipe] = {
    "l1": Recipe(),
    # l2 (mean squared error, what PSNR measures) is the last fine-tune step of RLFN (Kong et al., NTIRE 2022
    # efficient SR, arXiv 2205.07514).
    "l2": Recipe(pixel="l2"),
    # The shipped sharp recipe (issue 40), chosen by benchmarks/sharp_recipes.py (docs/sharp-search.md, candidate
    # sharpen1.5-overshoot20-margin8): the unsharp-masked target at amount 1.5 with an overshoot term (20) on what
    # passes the plain HR's local range by more than 8 levels: the mask's steep edges without its rings. At base x4
    # its run at 2,000 iterations is the first to meet realesr-animevideov3 on halo, edge energy, Y-PSNR and NIQE
    # on Set14 and B100 at once.
    "sharp": replace(_SHARP_OVERSHOOT10, target_sharpen=1.5, overshoot_weight=20.0),
    # Issue 40's first halo fix (candidate sharpen1.25-overshoot10-margin8): the runs experiments/sharp-*-overshoot10.
    # At base x4 Set14's edge energy reached realesr-animevideov3's only after B100's halo had passed it.
    "sharp-overshoot10": _SHARP_OVERSHOOT10,
    # The sharp recipe before issue 40: L1, phase-grid, random-feature and LDL terms aimed at the HR unsharp-masked
    # by amount 1.25 at sigma 8, a vanilla GAN (0.05) judged against the plain HR, generator EMA 0.999. Crisp, but
    # it rings (a halo beside every outline); the runs experiments/sharp-*-usm made the models it shipped.
    "sharp-usm": _SHARP_USM,
}
