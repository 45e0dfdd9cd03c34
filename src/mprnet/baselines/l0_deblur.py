"""Blind deblurring with the l0 gradient prior after Anger, Facciolo and Delbracio, "Blind Image Deblurring using
the l0 Gradient Prior" (IPOL 2019), following the authors' reference code and its defaults.

The kernel is estimated on the gray image, normalised to [0, 1], cropped to an FFT-friendly size and edge-tapered,
coarse to fine (image and kernel size halving per scale): at each scale rounds of least-squares kernel estimation on
gradients and l0 sharp-image estimation (half-quadratic splitting), the l0 weight decaying from round to round. The
colour image is then deconvolved with that kernel by total variation (`l0_steps.tv_deconvolve_reference`).

Two departures from the reference's estimator, each step of which it otherwise follows: the l0 weight restarts at
its initial value at every scale (the reference lets it decay across all scales, which freezes the blob-like kernel
of the coarsest scale into a kernel smeared across the motion), and the finest scale runs seven rounds instead of
five. The reference's own iteration is chaotic (noise of a quarter grey level added to a photo moves its result by
up to 4 dB), so no implementation reproduces its kernels exactly; these two changes make ours steadier and better
on average (docs/guide/l0.md).

Additions to the reference (`caution`, on by default): the TV weight is fitted to the photo's noise level rather
than fixed for nearly noise-free photos, and where the kernel is in doubt (`caution_reason`) only part of the
deconvolution is kept, blended with the photo as it was (`DEBLURRED_SHARE`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

from ..errors import BaselineError
from ..metrics import noise_sigma
from .deconv import (
    NOISE_FLOOR,
    convolve_circular,
    default_tv_fidelity,
    gradient,
    gradient_adjoint,
    gradient_power,
    kernel_spectrum,
)
from .l0_steps import TV_WEIGHT, centre_crop, double, halve, smooth_size_down, taper, tv_deconvolve_reference

DEFAULT_KERNEL_SIZE = 31
ROUNDS_PER_SCALE = 5
ROUNDS_FINEST = 7
KERNEL_WEIGHT = 20.0  # gamma, the l2 weight of the kernel in its least-squares estimate
LAMBDA_START, LAMBDA_DECAY, LAMBDA_FLOOR = 4e-3, 1.1, 1e-4
BETA_MAX = 1e5
KERNEL_THRESHOLD = 0.05  # share of the kernel's maximum below which values are dropped
COMPONENT_FLOOR = 0.1  # share of the kernel's mass below which a connected piece is dropped


RESIDUAL_LIMIT = 1.1  # re-blur residual of the result, in noise levels, above which the kernel is in doubt
TEXTURE_FLOOR = 1.8  # the photo's texture (diagnose.texture), in noise levels, below which a blur is hard to tell
#: The share of the deconvolution kept, the rest the photo as it was, per caution reason ("" where none).
DEBLURRED_SHARE = {"": 1.0, "flat": 0.5, "residual": 0.25}


@dataclass(frozen=True)
class Deblurred:
    """A blind deblurring: the restored image, the kernel estimated and why caution blended the deconvolution
    with the photo as it was ("" when it did not; `DEBLURRED_SHARE` says how much of it was kept)."""

    image: np.ndarray
    kernel: np.ndarray
    caution: str


def deblur_blind(image: np.ndarray, kernel_size: int = DEFAULT_KERNEL_SIZE, caution: bool = True) -> np.ndarray:
    """Blind deblurring of an H x W x C image in [0, 1] (`deblur`)."""
    return deblur(image, kernel_size, caution).image


def deblur(image: np.ndarray, kernel_size: int = DEFAULT_KERNEL_SIZE, caution: bool = True) -> Deblurred:
    """Estimate a kernel of at most kernel_size x kernel_size (made odd), then deconvolve by TV. Without caution,
    as the reference (TV weight 3000); with it, the TV weight is fitted to the photo's noise and, where the kernel
    is in doubt (`caution_reason`), only part of the deconvolution is kept (`DEBLURRED_SHARE`)."""
    image = np.asarray(image, dtype=np.float64)
    kernel = estimate_kernel(_gray(image), kernel_size)
    if not caution:
        return Deblurred(tv_deconvolve_reference(image, kernel), kernel, "")
    sigma = max(noise_sigma(image), NOISE_FLOOR)
    restored = tv_deconvolve_reference(image, kernel, weight=min(TV_WEIGHT, default_tv_fidelity(sigma)))
    reason = caution_reason(image, kernel, restored, sigma)
    share = DEBLURRED_SHARE[reason]
    return Deblurred(share * restored + (1.0 - share) * image, kernel, reason)


def caution_reason(image: np.ndarray, kernel: np.ndarray, restored: np.ndarray, sigma: float) -> str:
    """Why the kernel cannot be fully trusted to deblur the photo, "" if it can: a result that, blurred again by
    the kernel, does not give the photo back within its noise (sigma, 0-255), or a photo with too little detail
    above its noise to tell a blur."""
    from ..diagnose import texture  # diagnose loads torch, which a deblurring without caution does not need

    if reblur_residual(restored, image, kernel) > RESIDUAL_LIMIT * sigma:
        return "residual"
    if texture(_gray(image)) < TEXTURE_FLOOR * sigma:
        return "flat"
    return ""


def reblur_residual(restored: np.ndarray, image: np.ndarray, kernel: np.ndarray) -> float:
    """The RMS difference (0-255) between the photo and its restoration blurred again by the kernel, in gray,
    the kernel's size left out at the borders (at most a quarter of the smaller side, so a small photo keeps its
    middle)."""
    difference = convolve_circular(_gray(restored), kernel) - _gray(image)
    margin = min(kernel.shape[0], (min(difference.shape) - 1) // 4)
    return float(np.sqrt(np.mean(difference[margin:-margin, margin:-margin] ** 2)) * 255.0)


def estimate_kernel(gray: np.ndarray, kernel_size: int = DEFAULT_KERNEL_SIZE) -> np.ndarray:
    """The blur kernel of a gray H x W image, kernel_size x kernel_size (made odd), non-negative, summing to 1:
    the multiscale l0 estimate."""
    if int(kernel_size) != kernel_size or not 3 <= kernel_size <= min(gray.shape):
        raise BaselineError(
            f"Expected a kernel size from 3 to the image's smaller side {min(gray.shape)}, found {kernel_size!r}."
        )
    kernel_size = int(kernel_size) | 1
    pyramid = _pyramid(_prepare(np.asarray(gray, dtype=np.float64), kernel_size), kernel_size)
    sharp = pyramid[0][0]
    for index, (blurred, size) in enumerate(pyramid):
        sharp = double(sharp, blurred.shape) if sharp.shape != blurred.shape else sharp
        rounds = ROUNDS_FINEST if index == len(pyramid) - 1 else ROUNDS_PER_SCALE
        kernel, sharp = _alternate(blurred, sharp, size, rounds)
    return kernel


def _prepare(gray: np.ndarray, kernel_size: int) -> np.ndarray:
    """Normalised to [0, 1], centre-cropped to a smooth FFT size and tapered by a flat kernel_size kernel."""
    gray = (gray - gray.min()) / max(float(np.ptp(gray)), 1e-12)
    gray = centre_crop(gray, (smooth_size_down(gray.shape[0]), smooth_size_down(gray.shape[1])))
    return taper(gray, np.full((kernel_size, kernel_size), 1.0 / kernel_size**2))


def _pyramid(gray: np.ndarray, kernel_size: int) -> list[tuple[np.ndarray, int]]:
    """(image, kernel size) pairs from coarse to fine: each scale halves the image and the kernel size (made odd),
    down to a kernel of 3."""
    pyramid = [(gray, kernel_size)]
    while min(pyramid[-1][0].shape) > 1:
        image, size = pyramid[-1]
        size = (size // 2) | 1
        if size < 3:
            break
        pyramid.append((halve(image), size))
    return pyramid[::-1]


def _alternate(blurred: np.ndarray, sharp: np.ndarray, size: int, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """Alternate kernel and sharp-image estimates at one scale, the l0 weight starting afresh and decaying each
    round."""
    blurred_gradients = _gradient_spectra(blurred)
    weight = LAMBDA_START
    for _ in range(rounds):
        kernel = clean_kernel(_least_squares_kernel(sharp, blurred_gradients, size))
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


def _gradient_spectra(image: np.ndarray) -> list[np.ndarray]:
    """The spectra of the image's forward differences across columns and rows, zero on the last column / row
    (not wrapped around the periodic border)."""
    across, down = np.zeros_like(image), np.zeros_like(image)
    across[:, :-1] = np.diff(image, axis=1)
    down[:-1] = np.diff(image, axis=0)
    return [fft.rfft2(across), fft.rfft2(down)]


def _least_squares_kernel(sharp: np.ndarray, blurred_gradients: list[np.ndarray], size: int) -> np.ndarray:
    """argmin_k sum over both gradient directions |k * grad sharp - grad blurred|^2 + gamma |k|^2, solved in the
    Fourier domain and cropped to size x size around the origin."""
    numerator = np.zeros(blurred_gradients[0].shape, dtype=np.complex128)
    denominator = np.full(numerator.shape, KERNEL_WEIGHT)
    for sharp_spectrum, blurred_spectrum in zip(_gradient_spectra(sharp), blurred_gradients):
        numerator += np.conj(sharp_spectrum) * blurred_spectrum
        denominator += np.abs(sharp_spectrum) ** 2
    full = fft.irfft2(numerator / denominator, sharp.shape)
    return np.roll(full, (size // 2, size // 2), axis=(0, 1))[:size, :size]


def clean_kernel(kernel: np.ndarray) -> np.ndarray:
    """Clip, drop values under 5% of the maximum and 8-connected pieces under 10% of the mass, centre (what is
    shifted out of the window is lost), normalise; a kernel with nothing left becomes a centred impulse."""
    kernel = np.clip(kernel, 0.0, None)
    if kernel.sum() <= 0:
        return _impulse(kernel.shape[0])
    kernel[kernel < KERNEL_THRESHOLD * kernel.max()] = 0.0
    labels, count = ndimage.label(kernel > 0, structure=np.ones((3, 3)))
    masses = ndimage.sum(kernel, labels, index=np.arange(1, count + 1)) / kernel.sum()
    kernel[np.isin(labels, 1 + np.flatnonzero(masses < COMPONENT_FLOOR))] = 0.0
    kernel = _centred(kernel) if kernel.sum() > 0 else kernel
    return kernel / kernel.sum() if kernel.sum() > 0 else _impulse(kernel.shape[0])


def _impulse(size: int) -> np.ndarray:
    kernel = np.zeros((size, size))
    kernel[size // 2, size // 2] = 1.0
    return kernel


def _centred(kernel: np.ndarray) -> np.ndarray:
    """The kernel shifted by whole pixels so its centre of mass is nearest the grid centre."""
    centre = np.array(kernel.shape) // 2
    shift = centre - np.round(np.array(ndimage.center_of_mass(kernel))).astype(int)
    return ndimage.shift(kernel, shift, order=0, mode="constant")


def _gray(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float64).mean(axis=2)
