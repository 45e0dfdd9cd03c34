"""DCT denoising after Pierazzo, Morel and Facciolo, "Multi-Scale DCT Denoising" (IPOL 2017).

The single-scale denoiser runs on every 8 x 8 patch (stride 1) of each channel of an orthonormal colour transform:
a hard threshold at 3 sigma, then an empirical Wiener filter guided by the first result. Patches are transformed
all at once as rows of a matrix, in bands of patch rows so memory stays bounded on large photos, and put back by
weighted overlap-add. The multi-scale version denoises each layer of a DCT pyramid and recomposes them, taking from
each coarser layer only its lowest frequencies.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.fft import dct, dctn, idctn

PATCH = 8
HARD_THRESHOLD = 3.0
BAND_ROWS = 64

# Rows: mean, red minus blue, red and blue minus green; orthonormal, so white noise keeps its sigma.
COLOUR_TRANSFORM = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float64) / np.sqrt([[3], [2], [6]])

# The orthonormal 8-point DCT-II as a matrix: coefficients = _DCT_1D @ samples.
_DCT_1D = dct(np.eye(PATCH), norm="ortho", axis=0)

Shrink = Callable[[np.ndarray, np.ndarray, float], "tuple[np.ndarray, np.ndarray]"]


def dct_denoise(image: np.ndarray, sigma: float) -> np.ndarray:
    """Two-step sliding DCT denoising of an H x W x C image; sigma on the 0-255 scale."""
    return _per_decorrelated_channel(image, lambda channel: _denoise_channel(channel, sigma / 255.0))


def msdct_denoise(image: np.ndarray, sigma: float, layers: int = 4, fraction: float = 0.5) -> np.ndarray:
    """Multi-scale DCT denoising: each of `layers` pyramid layers denoised at its own noise level, then the
    conservative recomposition keeping a `fraction` of each coarser layer's frequencies per axis."""
    pyramid = dct_pyramid(image, _usable_layers(image.shape, layers))
    denoised = [dct_denoise(layer, sigma * _scale(layer.shape, image.shape)) for layer in pyramid]
    return dct_recompose(denoised, fraction)


def dct_pyramid(image: np.ndarray, layers: int) -> list[np.ndarray]:
    """Layer i is the inverse DCT of the top-left (H / 2^i) x (W / 2^i) block of the image's DCT, rescaled to keep
    intensities (white noise of sigma becomes sigma / 2^i)."""
    coefficients = dctn(image, axes=(0, 1), norm="ortho")
    height, width = image.shape[:2]
    pyramid = []
    for level in range(layers):
        block = coefficients[: height >> level, : width >> level]
        pyramid.append(idctn(block, axes=(0, 1), norm="ortho") * _scale(block.shape, image.shape))
    return pyramid


def dct_recompose(pyramid: list[np.ndarray], fraction: float = 0.5) -> np.ndarray:
    """Inverse of `dct_pyramid` (exact on an untouched pyramid): going from coarse to fine, each finer layer takes
    the lowest `fraction` (per axis) of the coarser result's frequencies."""
    result = pyramid[-1]
    for layer in reversed(pyramid[:-1]):
        fine = dctn(layer, axes=(0, 1), norm="ortho")
        coarse = dctn(result, axes=(0, 1), norm="ortho") / _scale(result.shape, layer.shape)
        rows, cols = round(fraction * coarse.shape[0]), round(fraction * coarse.shape[1])
        fine[:rows, :cols] = coarse[:rows, :cols]
        result = idctn(fine, axes=(0, 1), norm="ortho")
    return result


def _scale(small: tuple[int, ...], large: tuple[int, ...]) -> float:
    return float(np.sqrt(small[0] * small[1] / (large[0] * large[1])))


def _usable_layers(shape: tuple[int, ...], layers: int) -> int:
    """At most `layers`, keeping the coarsest layer at least two patches wide."""
    smallest = min(shape[:2])
    usable = 1
    while usable < layers and (smallest >> usable) >= 2 * PATCH:
        usable += 1
    return usable


def _per_decorrelated_channel(image: np.ndarray, denoise: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.shape[2] != 3:
        return np.stack([denoise(image[..., c]) for c in range(image.shape[2])], axis=-1)
    decorrelated = image @ COLOUR_TRANSFORM.T
    denoised = np.stack([denoise(decorrelated[..., c]) for c in range(3)], axis=-1)
    return denoised @ COLOUR_TRANSFORM


def _denoise_channel(channel: np.ndarray, sigma: float) -> np.ndarray:
    basic = _filter_patches(channel, channel, sigma, _hard_threshold)
    return _filter_patches(channel, basic, sigma, _empirical_wiener)


def _hard_threshold(coefficients: np.ndarray, _guide: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    keep = np.abs(coefficients) >= HARD_THRESHOLD * sigma
    keep[..., 0] = True
    return coefficients * keep, 1.0 / (1.0 + keep.sum(axis=-1))


def _empirical_wiener(coefficients: np.ndarray, guide: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    power = guide * guide
    gain = power / (power + sigma * sigma)
    return coefficients * gain, 1.0 / (1.0 + np.sum(gain * gain, axis=-1))


def _filter_patches(noisy: np.ndarray, guide: np.ndarray, sigma: float, shrink: Shrink) -> np.ndarray:
    """Shrink the DCT of every patch of `noisy` (guided by the same patch of `guide`) and average the patches back,
    each weighted as `shrink` says. Symmetric padding gives border pixels as many patches as inner ones."""
    pad = PATCH - 1
    noisy_padded = np.pad(noisy, pad, mode="symmetric").astype(np.float32)
    guide_padded = noisy_padded if guide is noisy else np.pad(guide, pad, mode="symmetric").astype(np.float32)
    patch_rows = noisy_padded.shape[0] - pad
    total = np.zeros(noisy_padded.shape, dtype=np.float64)
    weight_sum = np.zeros(noisy_padded.shape, dtype=np.float64)
    for top in range(0, patch_rows, BAND_ROWS):
        rows = slice(top, min(top + BAND_ROWS, patch_rows) + pad)
        coefficients = _patch_dct(noisy_padded[rows])
        guide_coefficients = coefficients if guide is noisy else _patch_dct(guide_padded[rows])
        shrunk, weights = shrink(coefficients, guide_coefficients, sigma)
        total[rows] += _patch_idct_sum(shrunk * weights[:, :, None].astype(np.float32))
        weight_sum[rows] += _box_sum(weights)
    return (total / weight_sum)[pad:-pad, pad:-pad]


def _patch_dct(region: np.ndarray) -> np.ndarray:
    """DCT coefficients of every 8 x 8 patch of `region`, shaped (patch rows, patch cols, 64), computed separably:
    columns of all vertical windows first, then rows of all horizontal windows of that."""
    rows, cols = region.shape[0] - PATCH + 1, region.shape[1] - PATCH + 1
    vertical = _windows_times(region, axis=0, matrix=_DCT_1D.T)  # (rows, width, u)
    both = _windows_times(vertical, axis=1, matrix=_DCT_1D.T)  # (rows, cols, u, v)
    return both.reshape(rows, cols, PATCH * PATCH)


def _patch_idct_sum(coefficients: np.ndarray) -> np.ndarray:
    """The sum, each at its place, of the inverse DCTs of all patches; the transpose of `_patch_dct`."""
    rows, cols = coefficients.shape[:2]
    horizontal = _times(coefficients.reshape(rows, cols, PATCH, PATCH), _DCT_1D)  # (.., u, dx)
    spread = np.zeros((rows, cols + PATCH - 1, PATCH), dtype=np.float32)
    for dx in range(PATCH):
        spread[:, dx : dx + cols] += horizontal[..., dx]
    vertical = _times(spread, _DCT_1D)  # (.., dy)
    result = np.zeros((rows + PATCH - 1, cols + PATCH - 1), dtype=np.float32)
    for dy in range(PATCH):
        result[dy : dy + rows] += vertical[..., dy]
    return result


def _windows_times(array: np.ndarray, axis: int, matrix: np.ndarray) -> np.ndarray:
    """Every length-8 window along `axis`, times `matrix`, the new axis last."""
    return _times(np.lib.stride_tricks.sliding_window_view(array, PATCH, axis=axis), matrix)


def _times(array: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """`array @ matrix` on the last axis, as one matrix product (a stack of small ones would be far slower)."""
    product = array.reshape(-1, array.shape[-1]) @ matrix.astype(np.float32)
    return product.reshape((*array.shape[:-1], matrix.shape[1]))


def _box_sum(weights: np.ndarray) -> np.ndarray:
    """Each patch's weight added over the 8 x 8 pixels it covers."""
    rows, cols = weights.shape
    wide = np.zeros((rows, cols + PATCH - 1))
    for dx in range(PATCH):
        wide[:, dx : dx + cols] += weights
    result = np.zeros((rows + PATCH - 1, cols + PATCH - 1))
    for dy in range(PATCH):
        result[dy : dy + rows] += wide
    return result
