"""PSNR and SSIM, and the protocol each benchmark computes them with.

Images are float arrays in [0, 1], H x W x C or H x W. The definitions:

- PSNR = 10 log10(data_range^2 / MSE), the MSE taken over every pixel and channel; identical images give inf.
- SSIM is Wang et al.'s (IEEE TIP 2004, `ssim_index.m`): 11 x 11 Gaussian window of sigma 1.5, K1 = 0.01,
  K2 = 0.03, statistics without the sample-size correction, averaged over the 'valid' part of the map only (no
  padding). A colour image's SSIM is the mean of its per-channel SSIMs (as skimage's `channel_axis`).
- The Y channel is MATLAB's `rgb2ycbcr`: Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255 on [0, 1] RGB, so
  it spans [16, 235] / 255.

Benchmarks (`PROTOCOLS`), as MPRNet's published evaluation scripts compute them:

- `gopro`, `hide` (deblurring) and `sidd` (denoising): RGB on the full image, both images first rounded to
  8 bits (the scripts save PNGs and compare those). The published deblurring SSIM comes from MATLAB's built-in
  `ssim` on the RGB array (one 3-D Gaussian volume, replicate padding), which this module does not reproduce: its
  values differ slightly from the per-channel mean here, so compare SSIMs computed by the same code only.
- `rain100l`, `rain100h` (deraining): Y channel of the 8-bit images, Y itself rounded to 8 bits (MATLAB's
  `rgb2ycbcr` on uint8 returns uint8), full image, `ssim_index` SSIM.
- `rgb`, `y`: the same measures on the unrounded floats, for training-time validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import ImageError, MetricError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
_Y_OFFSET = 16.0 / 255.0


@dataclass(frozen=True)
class Protocol:
    """How a benchmark turns a (restored, target) pair into PSNR and SSIM."""

    name: str
    #: Round both images to 8 bits first, as when results are saved as PNG and read back.
    quantize: bool = False
    #: Measure MATLAB's Y channel (rounded to 8 bits too when `quantize`) instead of RGB.
    y_channel: bool = False
    #: Pixels dropped at each side before measuring.
    crop_border: int = 0


PROTOCOLS: dict[str, Protocol] = {
    "gopro": Protocol("gopro", quantize=True),
    "hide": Protocol("hide", quantize=True),
    "sidd": Protocol("sidd", quantize=True),
    "rain100l": Protocol("rain100l", quantize=True, y_channel=True),
    "rain100h": Protocol("rain100h", quantize=True, y_channel=True),
    "rgb": Protocol("rgb"),
    "y": Protocol("y", y_channel=True),
}


def get_protocol(protocol: str | Protocol) -> Protocol:
    """A `Protocol` from its name (or itself)."""
    if isinstance(protocol, Protocol):
        return protocol
    try:
        return PROTOCOLS[protocol.lower()]
    except KeyError:
        raise MetricError(f"expected a protocol among {', '.join(PROTOCOLS)}, found {protocol!r}") from None


def quantize_8bit(image: np.ndarray) -> np.ndarray:
    """The image rounded to the nearest of 256 levels (clipped to [0, 1]), still as floats in [0, 1]."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """MATLAB `rgb2ycbcr`'s luma of an H x W x 3 image in [0, 1]; the result lies in [16, 235] / 255."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"the Y channel needs an H x W x 3 RGB image, found shape {image.shape}")
    return _Y_OFFSET + np.asarray(image, dtype=np.float64) @ _Y_WEIGHTS


def psnr(
    restored: np.ndarray, target: np.ndarray, data_range: float = 1.0, crop_border: int = 0, y_channel: bool = False
) -> float:
    """Peak signal-to-noise ratio in dB; inf for identical images."""
    restored, target = _prepare(restored, target, crop_border, y_channel)
    mse = float(np.mean((restored - target) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def ssim(
    restored: np.ndarray, target: np.ndarray, data_range: float = 1.0, crop_border: int = 0, y_channel: bool = False
) -> float:
    """Wang et al.'s SSIM (Gaussian window, 'valid' map); mean of the per-channel values for colour images."""
    restored, target = _prepare(restored, target, crop_border, y_channel)
    if min(restored.shape[:2]) < SSIM_WINDOW:
        raise ImageError(
            f"SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels after cropping, "
            f"found {restored.shape[0]} x {restored.shape[1]}"
        )
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = _local_mean(restored), _local_mean(target)
    var_x = _local_mean(restored * restored) - mu_x**2
    var_y = _local_mean(target * target) - mu_y**2
    cov_xy = _local_mean(restored * target) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())  # every channel's map has the same size: this is the mean of per-channel means


def evaluate_pair(restored: np.ndarray, target: np.ndarray, protocol: str | Protocol = "rgb") -> dict[str, float]:
    """`{"psnr": ..., "ssim": ...}` of one restored image against its target under a benchmark's protocol."""
    protocol = get_protocol(protocol)
    restored, target = (_apply_protocol(np.asarray(image, dtype=np.float64), protocol) for image in (restored, target))
    return {
        "psnr": psnr(restored, target, crop_border=protocol.crop_border),
        "ssim": ssim(restored, target, crop_border=protocol.crop_border),
    }


def _apply_protocol(image: np.ndarray, protocol: Protocol) -> np.ndarray:
    if protocol.quantize:
        image = quantize_8bit(image)
    if protocol.y_channel:
        image = rgb_to_y(image)
        if protocol.quantize:
            image = quantize_8bit(image)
    return image


def _prepare(
    restored: np.ndarray, target: np.ndarray, crop_border: int, y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64, checked to match, converted to Y if asked, and cropped."""
    restored, target = np.asarray(restored, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if restored.shape != target.shape:
        raise ImageError(
            f"the restored image and its target must have the same shape, found {restored.shape} and {target.shape}"
        )
    if restored.ndim not in (2, 3):
        raise ImageError(f"expected an H x W or H x W x C image, found shape {restored.shape}")
    if y_channel:
        restored, target = rgb_to_y(restored), rgb_to_y(target)
    return _crop(restored, crop_border), _crop(target, crop_border)


def _crop(image: np.ndarray, border: int) -> np.ndarray:
    if border < 0:
        raise ImageError(f"the border to crop must be zero or more pixels, found {border}")
    if 2 * border >= min(image.shape[:2]):
        raise ImageError(
            f"cropping {border} pixels from each side leaves nothing of a {image.shape[0]} x {image.shape[1]} image"
        )
    return image[border : image.shape[0] - border, border : image.shape[1] - border] if border else image


def _gaussian_window() -> np.ndarray:
    offsets = np.arange(SSIM_WINDOW) - SSIM_WINDOW // 2
    weights = np.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return weights / weights.sum()


def _local_mean(image: np.ndarray) -> np.ndarray:
    """Gaussian-weighted mean over each window lying wholly inside the image (MATLAB `filter2(..., 'valid')`)."""
    window = _gaussian_window()
    for axis in (0, 1):  # the 2-D Gaussian is separable; filtering H and W only keeps channels apart
        image = ndimage.correlate1d(image, window, axis=axis, mode="constant")
    radius = SSIM_WINDOW // 2
    return image[radius:-radius, radius:-radius]


# ---- no-reference measures: for real photos, which have no clean reference -------------------------------------


def noise_sigma(image: np.ndarray) -> float:
    """An estimate of the noise's standard deviation (0-255 scale) from the image alone: scikit-image's wavelet
    estimate (Donoho's median absolute deviation of the finest diagonal coefficients, which image structure rarely
    reaches), averaged over the channels."""
    from skimage.restoration import estimate_sigma

    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim not in (2, 3) or min(pixels.shape[:2]) < 2:
        raise ImageError(f"a noise estimate needs an image of at least 2 x 2 pixels, found shape {pixels.shape}")
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    return 255.0 * float(np.mean(estimate_sigma(pixels, channel_axis=-1)))


def sharpness(image: np.ndarray) -> float:
    """The mean gradient magnitude of the image's grey level (0-255 scale per pixel): blur lowers it, sharpening
    raises it (and so does noise, which is why the deblurring figure shows the images too)."""
    pixels = np.asarray(image, dtype=np.float64)
    grey = pixels.mean(axis=-1) if pixels.ndim == 3 else pixels
    if min(grey.shape) < 3:
        raise ImageError(f"a sharpness measure needs an image of at least 3 x 3 pixels, found shape {pixels.shape}")
    rows, cols = np.gradient(grey)
    return float(255.0 * np.hypot(rows, cols).mean())
