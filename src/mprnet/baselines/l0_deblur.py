"""Blind deblurring with the l0 gradient prior after Anger, Facciolo and Delbracio, "Blind Image Deblurring using
the l0 Gradient Prior" (IPOL 2019).

The kernel is estimated on the gray, normalised, edge-tapered image, coarse to fine (the kernel size halves per
scale): at each scale a few rounds of l0 sharp-image estimation (half-quadratic splitting) and least-squares kernel
estimation on gradients. The colour image is then deconvolved with that kernel by total variation.
One departure from the published code: the gradients entering the kernel estimate are windowed to zero near the
borders (instead of non-periodic differences), which kept the periodic wrap-around out of the kernel in our tests.
"""

from __future__ import annotations

import numpy as np
from scipy import fft, ndimage
from skimage.transform import rescale, resize

from ..errors import BaselineError
from ..metrics import noise_sigma
from .deconv import edge_taper, gradient, gradient_adjoint, gradient_power, kernel_spectrum, tv_deconvolve

DEFAULT_KERNEL_SIZE = 31
ROUNDS_PER_SCALE = 5
KERNEL_WEIGHT = 20.0  # gamma, the l2 weight of the kernel in its least-squares estimate
LAMBDA_START, LAMBDA_DECAY, LAMBDA_FLOOR = 4e-3, 1.1, 1e-4
BETA_MAX = 1e5
KERNEL_THRESHOLD = 0.05  # share of the kernel's maximum below which values are dropped
COMPONENT_FLOOR = 0.1  # share of the kernel's mass below which a connected piece is dropped


def deblur_blind(image: np.ndarray, kernel_size: int = DEFAULT_KERNEL_SIZE) -> np.ndarray:
    """Blind deblurring of an H x W x C image: estimate a kernel of at most kernel_size x kernel_size (odd), then
    TV deconvolution with a fidelity fitted to the noise level estimated from the image."""
    kernel = estimate_kernel(_gray(image), kernel_size)
    return tv_deconvolve(image, kernel, sigma=noise_sigma(image))


def estimate_kernel(gray: np.ndarray, kernel_size: int = DEFAULT_KERNEL_SIZE) -> np.ndarray:
    """The blur kernel of a gray H x W image, kernel_size x kernel_size (made odd), non-negative, summing to 1."""
    if int(kernel_size) != kernel_size or not 3 <= kernel_size <= min(gray.shape):
        raise BaselineError(
            f"Expected a kernel size from 3 to the image's smaller side {min(gray.shape)}, found {kernel_size!r}."
        )
    gray = (gray - gray.min()) / max(float(np.ptp(gray)), 1e-12)
    kernel_size = int(kernel_size) | 1
    pyramid = _pyramid(edge_taper(gray, np.full((kernel_size, kernel_size), 1.0 / kernel_size**2)), kernel_size)
    sharp = pyramid[0][0]
    for blurred, size in pyramid:
        sharp = resize(sharp, blurred.shape, order=3)
        kernel, sharp = _alternate(blurred, sharp, size)
    return kernel


def _pyramid(gray: np.ndarray, kernel_size: int) -> list[tuple[np.ndarray, int]]:
    """(image, kernel size) pairs from coarse to fine: each scale halves the image and the kernel size, which stays
    odd, down to a kernel of 3."""
    pyramid = [(gray, kernel_size)]
    while pyramid[-1][1] > 3 and min(pyramid[-1][0].shape) > 2:
        image, size = pyramid[-1]
        pyramid.append((rescale(image, 0.5, anti_aliasing=True), max((size // 2) | 1, 3)))
    return pyramid[::-1]


def _alternate(blurred: np.ndarray, sharp: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Alternate kernel and sharp-image estimates at one scale, the l0 weight decaying each round."""
    weight = LAMBDA_START
    for _ in range(ROUNDS_PER_SCALE):
        kernel = _clean_kernel(_least_squares_kernel(sharp, blurred, size))
        sharp = l0_restore(blurred, kernel, weight)
        weight = max(weight / LAMBDA_DECAY, LAMBDA_FLOOR)
    return kernel, sharp


def l0_restore(blurred: np.ndarray, kernel: np.ndarray, weight: float) -> np.ndarray:
    """Minimiser of |kernel * x - blurred|^2 + weight * |grad x|_0 for a gray image, by half-quadratic splitting:
    the penalty beta on |grad x - g|^2 grows from 2 weight to 1e5, doubling."""
    shape = blurred.shape
    blur = kernel_spectrum(kernel, shape)
    data_term = np.conj(blur) * fft.rfft2(blurred)
    blur_power, regulariser_power = np.abs(blur) ** 2, gradient_power(shape)
    sharp = blurred
    beta = 2.0 * weight
    while beta < BETA_MAX:
        field = gradient(sharp)
        field[:, np.sum(field**2, axis=0) < weight / beta] = 0.0
        right = data_term + beta * fft.rfft2(gradient_adjoint(field))
        sharp = fft.irfft2(right / (blur_power + beta * regulariser_power), shape)
        beta *= 2.0
    return sharp


def _least_squares_kernel(sharp: np.ndarray, blurred: np.ndarray, size: int) -> np.ndarray:
    """argmin_k sum over both gradient directions |k * grad sharp - grad blurred|^2 + gamma |k|^2, solved in the
    Fourier domain and cropped to size x size around the origin."""
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
    """1 inside, 0 on the outer `margin` pixels and a raised-cosine ramp over the next `margin`, so the periodic
    wrap-around at the image borders takes no part in the kernel estimate."""
    profiles = []
    for length in shape:
        distance = np.minimum(np.arange(length), np.arange(length)[::-1]) - margin
        profiles.append(0.5 - 0.5 * np.cos(np.pi * np.clip(distance / margin, 0.0, 1.0)))
    return np.outer(*profiles)


def _clean_kernel(kernel: np.ndarray) -> np.ndarray:
    """Clip, drop values under 5% of the maximum and connected pieces under 10% of the mass, centre, normalise;
    a kernel with nothing left becomes a centred impulse."""
    kernel = np.clip(kernel, 0.0, None)
    kernel[kernel < KERNEL_THRESHOLD * kernel.max()] = 0.0
    labels, count = ndimage.label(kernel > 0, structure=np.ones((3, 3)))
    masses = ndimage.sum(kernel, labels, index=np.arange(1, count + 1))
    floor = COMPONENT_FLOOR * kernel.sum()
    for label, mass in enumerate(masses, start=1):
        if mass < floor:
            kernel[labels == label] = 0.0
    if kernel.sum() <= 0:
        kernel = np.zeros_like(kernel)
        kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] = 1.0
    return _centred(kernel / kernel.sum())


def _centred(kernel: np.ndarray) -> np.ndarray:
    """The kernel shifted by whole pixels so its centre of mass is nearest the grid centre."""
    centre = (np.array(kernel.shape) - 1) / 2
    shift = np.round(centre - np.array(ndimage.center_of_mass(kernel))).astype(int)
    return ndimage.shift(kernel, shift, order=0, mode="constant")


def _gray(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float64).mean(axis=2)
