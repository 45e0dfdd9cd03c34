"""A quick blur-kernel estimate for telling blurred photos from sharp ones: the kernel peak that `--task auto`'s
blur check (`diagnose.kernel_peak`) and the no-harm judge (`no_harm`) read.

It is the l0-prior estimator (coarse to fine, l0 sharp image by half-quadratic splitting, kernel by least squares on
gradients) in the form their thresholds (`diagnose.SHARP_KERNEL`, `scripts/calibrate_sharp_kernel.py`) were
calibrated with: the l0 weight restarts at every scale and the gradients are windowed to zero near the borders. It
takes about 0.36 s for a 256-px crop. The `l0` deblurring baseline (`baselines/l0_deblur.py`) follows the IPOL
reference instead, which is slower and estimates a kernel that moves more with the photo's noise; moving these
checks onto it means calibrating their thresholds again.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from .baselines.deconv import edge_taper, gradient

ROUNDS_PER_SCALE = 5
KERNEL_WEIGHT = 20.0  # gamma, the l2 weight of the kernel in its least-squares estimate
LAMBDA_START, LAMBDA_DECAY, LAMBDA_FLOOR = 4e-3, 1.1, 1e-4


def probe_kernel(gray: np.ndarray, kernel_size: int) -> np.ndarray:
    """The blur kernel of a gray H x W image, kernel_size x kernel_size (odd, at most the smaller side), non-negative,
    summing to 1."""
    from .baselines.l0_deblur import clean_kernel, l0_restore

    gray = (gray - gray.min()) / max(float(np.ptp(gray)), 1e-12)
    kernel_size = int(kernel_size) | 1
    pyramid = _pyramid(edge_taper(gray, np.full((kernel_size, kernel_size), 1.0 / kernel_size**2)), kernel_size)
    sharp = pyramid[0][0]
    kernel = np.ones((1, 1))
    for blurred, size in pyramid:
        sharp = _resized(sharp, blurred.shape)
        weight = LAMBDA_START
        for _ in range(ROUNDS_PER_SCALE):
            kernel = clean_kernel(_least_squares_kernel(sharp, blurred, size))
            sharp = l0_restore(blurred, kernel, weight)
            weight = max(weight / LAMBDA_DECAY, LAMBDA_FLOOR)
    return kernel


def _pyramid(gray: np.ndarray, kernel_size: int) -> list[tuple[np.ndarray, int]]:
    """(image, kernel size) pairs from coarse to fine: each scale halves the image and the kernel size, which stays
    odd, down to a kernel of 3."""
    from skimage.transform import rescale

    pyramid = [(gray, kernel_size)]
    while pyramid[-1][1] > 3 and min(pyramid[-1][0].shape) > 2:
        image, size = pyramid[-1]
        pyramid.append((rescale(image, 0.5, anti_aliasing=True), max((size // 2) | 1, 3)))
    return pyramid[::-1]


def _resized(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    from skimage.transform import resize

    return resize(image, shape, order=3)


def _least_squares_kernel(sharp: np.ndarray, blurred: np.ndarray, size: int) -> np.ndarray:
    """argmin_k sum over both gradient directions |k * grad sharp - grad blurred|^2 + gamma |k|^2 in the Fourier
    domain, the gradients windowed to zero near the borders, cropped to size x size around the origin."""
    numerator = np.zeros(fft.rfft2(sharp).shape, dtype=np.complex128)
    denominator = np.full(numerator.shape, KERNEL_WEIGHT)
    window = _border_window(sharp.shape, size)
    for sharp_gradient, blurred_gradient in zip(gradient(sharp), gradient(blurred)):
        sharp_spectrum = fft.rfft2(window * sharp_gradient)
        numerator += np.conj(sharp_spectrum) * fft.rfft2(window * blurred_gradient)
        denominator += np.abs(sharp_spectrum) ** 2
    full = fft.irfft2(numerator / denominator, sharp.shape)
    return np.roll(full, (size // 2, size // 2), axis=(0, 1))[:size, :size]


def _border_window(shape: tuple[int, int], margin: int) -> np.ndarray:
    """1 inside, 0 on the outer `margin` pixels and a raised-cosine ramp over the next `margin`."""
    profiles = []
    for length in shape:
        distance = np.minimum(np.arange(length), np.arange(length)[::-1]) - margin
        profiles.append(0.5 - 0.5 * np.cos(np.pi * np.clip(distance / margin, 0.0, 1.0)))
    return np.outer(*profiles)
