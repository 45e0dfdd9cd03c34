"""The building blocks of the IPOL l0 blind deblurring pipeline (Anger, Facciolo and Delbracio 2019) as its
reference code has them, so that `l0_deblur` gives what the authors' code gives: the Tukey-like edge taper, the
scale pyramid (periodic Gaussian blur then sampling every second pixel down, Catmull-Rom cubic up), the crop to an
FFT-friendly size, and the final total-variation deconvolution by split Bregman (Getreuer's tvreg: half-sample
symmetric extension, Neumann gradients, shrink before each u update).

Images are H x W (x C) float64 arrays; x runs along columns.
"""

from __future__ import annotations

import numpy as np
from scipy import fft, ndimage, signal

from .deconv import kernel_spectrum

DOWNSAMPLE_BLUR = 1.6  # the reference's Gaussian exp(-r^2 / s^2) before halving, s = 1.6 sqrt((f^2 - 1) / 3)
TV_WEIGHT = 3000.0  # alpha, the data fidelity weight of the final TV deconvolution
TV_SPLIT_WEIGHT = 30.0  # beta (tvreg's gamma1), the penalty on d = grad u
TV_ITERATIONS = 7
TV_TAPER_ROUNDS = 3
_SMOOTH_PRIMES = (2, 3, 5, 7)


def taper(image: np.ndarray, kernel: np.ndarray, rounds: int = 1) -> np.ndarray:
    """Blend the image near its borders with its circular blur by `kernel`, `rounds` times: the image keeps a
    weight sin^2 rising from 0 at the border to 1 a kernel size inside, so that it is nearly periodic."""
    weights = np.outer(_ramp(image.shape[0], kernel.shape[0]), _ramp(image.shape[1], kernel.shape[1]))
    weights = weights.reshape(weights.shape + (1,) * (image.ndim - 2))
    spectrum = kernel_spectrum(kernel, image.shape[:2])
    spectrum = spectrum.reshape(spectrum.shape + (1,) * (image.ndim - 2))
    out = np.asarray(image, dtype=np.float64)
    for _ in range(rounds):
        blurred = fft.irfft2(fft.rfft2(out, axes=(0, 1)) * spectrum, image.shape[:2], axes=(0, 1))
        out = weights * out + (1.0 - weights) * blurred
    return out


def _ramp(length: int, width: int) -> np.ndarray:
    position = np.arange(length)
    ramp = np.ones(length)
    head, tail = position < width, position > length - width
    ramp[head] = np.sin(position[head] * np.pi / (2 * width - 1)) ** 2
    ramp[tail] = np.sin((length - 1 - position[tail]) * np.pi / (2 * width - 1)) ** 2
    return ramp


def smooth_size_down(length: int) -> int:
    """The largest length <= `length` whose prime factors are all at most 7 (fast FFTs)."""
    for candidate in range(length, 0, -1):
        rest = candidate
        for prime in _SMOOTH_PRIMES:
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return candidate
    return length


def centre_crop(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    top, left = (image.shape[0] - shape[0]) // 2, (image.shape[1] - shape[1]) // 2
    return image[top : top + shape[0], left : left + shape[1]]


def halve(image: np.ndarray) -> np.ndarray:
    """The gray image blurred by a periodic Gaussian and sampled at every second pixel (ceil(n / 2) per side); the
    Gaussian's width follows the true factor (a little under 2 on an odd side)."""
    rows, cols = (-(-length // 2) for length in image.shape)
    factor = image.shape[0] / rows * image.shape[1] / cols
    sigma = DOWNSAMPLE_BLUR * np.sqrt((factor - 1.0) / 3.0) / np.sqrt(2.0)
    blurred = ndimage.gaussian_filter(image, sigma, mode="wrap")
    return _linear_matrix(image.shape[0], rows) @ blurred @ _linear_matrix(image.shape[1], cols).T


def double(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The gray image sampled at half-pixel steps from its first pixel by Catmull-Rom cubic interpolation (edge
    values repeated), on a grid of `shape`."""
    return _cubic_matrix(image.shape[0], shape[0]) @ image @ _cubic_matrix(image.shape[1], shape[1]).T


def _linear_matrix(source: int, target: int) -> np.ndarray:
    """Linear interpolation at source / target steps from sample 0, as a target x source matrix."""
    position = np.arange(target) * (source / target)
    base = np.floor(position).astype(int)
    offset = position - base
    matrix = np.zeros((target, source))
    rows = np.arange(target)
    np.add.at(matrix, (rows, np.clip(base, 0, source - 1)), 1.0 - offset)
    np.add.at(matrix, (rows, np.clip(base + 1, 0, source - 1)), offset)
    return matrix


def _cubic_matrix(source: int, target: int) -> np.ndarray:
    """Catmull-Rom interpolation at half steps from sample 0, as a target x source matrix."""
    position = np.arange(target) / 2.0
    base = np.floor(position).astype(int)
    t = position - base
    weights = 0.5 * np.stack(
        [-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3, t + 4 * t**2 - 3 * t**3, -(t**2) + t**3], axis=1
    )
    matrix = np.zeros((target, source))
    rows = np.arange(target)
    for tap in range(4):
        np.add.at(matrix, (rows, np.clip(base + tap - 1, 0, source - 1)), weights[:, tap])
    return matrix


def tv_deconvolve_reference(
    image: np.ndarray,
    kernel: np.ndarray,
    weight: float = TV_WEIGHT,
    split: float = TV_SPLIT_WEIGHT,
    iterations: int = TV_ITERATIONS,
) -> np.ndarray:
    """The reference's final step on an H x W x C image in [0, 1]: scaled by its maximum, padded by half the
    kernel (mirrored), tapered by the kernel three times, deconvolved by vectorial TV (`split_bregman_tv`),
    unpadded, clipped to [0, 1] and scaled back."""
    image = np.asarray(image, dtype=np.float64)
    peak = max(float(image.max()), 1e-12)
    half_rows, half_cols = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(image / peak, [(half_rows, half_rows), (half_cols, half_cols), (0, 0)], mode="reflect")
    restored = split_bregman_tv(taper(padded, kernel, TV_TAPER_ROUNDS), kernel, weight, split, iterations)
    restored = restored[half_rows : half_rows + image.shape[0], half_cols : half_cols + image.shape[1]]
    return np.clip(restored, 0.0, 1.0) * peak


def split_bregman_tv(image: np.ndarray, kernel: np.ndarray, weight: float, split: float, iterations: int) -> np.ndarray:
    """argmin_u |grad u| + weight / 2 |kernel * u - image|^2 by `iterations` split Bregman rounds from u = image:
    the image is extended by half-sample symmetry to twice its size, so its borders are not wrapped around."""
    rows, cols = image.shape[:2]
    ratio = weight / split
    blur = kernel_spectrum(kernel, (2 * rows, 2 * cols))[..., None]
    laplacian = _periodic_laplacian_power((2 * rows, 2 * cols))[..., None]
    data_term = ratio * np.conj(blur) * fft.rfft2(_mirror(image), axes=(0, 1))
    denominator = ratio * np.abs(blur) ** 2 + laplacian
    u = image
    d = np.zeros((2, *image.shape))
    d_minus_b = np.zeros_like(d)
    for _ in range(iterations):
        d += _neumann_gradient(u) - d_minus_b
        shrunk = _shrink(d, 1.0 / split)
        d_minus_b = 2.0 * shrunk - d
        d = shrunk
        right = data_term + fft.rfft2(_mirror(_neumann_gradient_adjoint(d_minus_b)), axes=(0, 1))
        u = fft.irfft2(right / denominator, (2 * rows, 2 * cols), axes=(0, 1))[:rows, :cols]
    return u


def _mirror(image: np.ndarray) -> np.ndarray:
    """The image reflected over its last row and column (half-sample symmetry), twice its size."""
    tall = np.concatenate([image, image[::-1]], axis=0)
    return np.concatenate([tall, tall[:, ::-1]], axis=1)


def _periodic_laplacian_power(shape: tuple[int, int]) -> np.ndarray:
    """|D_rows|^2 + |D_cols|^2 of periodic forward differences on the real-FFT grid of `shape`."""
    rows = 2.0 - 2.0 * np.cos(2 * np.pi * np.arange(shape[0]) / shape[0])
    cols = 2.0 - 2.0 * np.cos(2 * np.pi * np.arange(shape[1] // 2 + 1) / shape[1])
    return rows[:, None] + cols[None, :]


def _neumann_gradient(image: np.ndarray) -> np.ndarray:
    """Forward differences along rows and columns, zero across the last row and column."""
    field = np.zeros((2, *image.shape))
    field[0, :-1] = image[1:] - image[:-1]
    field[1, :, :-1] = image[:, 1:] - image[:, :-1]
    return field


def _neumann_gradient_adjoint(field: np.ndarray) -> np.ndarray:
    """The adjoint of `_neumann_gradient` (minus its divergence)."""
    out = np.zeros(field.shape[1:])
    out[:-1] -= field[0, :-1]
    out[1:] += field[0, :-1]
    out[:, :-1] -= field[1, :, :-1]
    out[:, 1:] += field[1, :, :-1]
    return out


def _shrink(field: np.ndarray, threshold: float) -> np.ndarray:
    """Vectorial soft threshold: the magnitude taken over both directions and all channels of a pixel."""
    magnitude = np.sqrt(np.sum(field * field, axis=(0, 3), keepdims=True))
    return field * np.maximum(1.0 - threshold / np.maximum(magnitude, 1e-12), 0.0)


def aligned_psnr(restored: np.ndarray, clean: np.ndarray, max_shift: int = 8, border: int = 16) -> float:
    """PSNR (dB, 8-bit) of `restored` against `clean` after the best whole-pixel shift within +-max_shift, a
    `border` left out: blind deblurring may shift the image (the golden set's psnr_aligned.json measure)."""
    restored = np.round(np.clip(restored, 0.0, 1.0) * 255.0) / 255.0
    rows, cols = clean.shape[:2]
    target = clean[border : rows - border, border : cols - border]
    errors = [
        np.mean((restored[border + dy : rows - border + dy, border + dx : cols - border + dx] - target) ** 2)
        for dy in range(-max_shift, max_shift + 1)
        for dx in range(-max_shift, max_shift + 1)
    ]
    return float(10.0 * np.log10(1.0 / max(min(errors), 1e-12)))


def kernel_similarity(kernel: np.ndarray, other: np.ndarray) -> float:
    """The normalised cross-correlation of two kernels at their best relative shift: 1 for the same kernel
    anywhere on its grid, near 0 for kernels with nothing in common."""
    correlation = signal.correlate(np.asarray(kernel, float), np.asarray(other, float), mode="full")
    return float(correlation.max() / np.sqrt(np.sum(np.square(kernel)) * np.sum(np.square(other))))
