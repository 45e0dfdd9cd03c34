"""Motion blur: camera-shake and linear motion kernels, same-size convolution, and the MotionBlur degradation.

Kernels are non-negative, sum to 1 and have their centre of mass exactly at the centre of the grid, so blurring
does not shift the image. Trajectories are drawn sub-pixel and spread onto the grid with bilinear weights, which
keep a trajectory's mean point as the kernel's centre of mass.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from ..errors import DataError
from .base import Degradation, Range, check_range, draw
from .camera import linear_to_srgb, srgb_to_linear
from .noise import add_gaussian_noise

KINDS = ("shake", "linear", "mixed")
SIZE_WEIGHTINGS = ("uniform", "inverse")
# Pixels whose brightest channel is above this in the photo were (nearly) clipped: in linear light they are
# brightened, the brighter the closer to white.
HIGHLIGHT_START = 0.98


def camera_shake_kernel(
    size: int,
    rng: np.random.Generator,
    *,
    samples: int = 1000,
    anxiety: float | None = None,
    jerk_rate: float | None = None,
) -> np.ndarray:
    """A size x size camera-shake kernel after Boracchi & Foi (2012): a random walk of the camera with inertia,
    a pull back towards its start, Gaussian tremor scaled by `anxiety` and rare impulsive jerks (`jerk_rate`
    expected per trajectory), scaled to span the grid. Unset parameters are drawn from rng."""
    size = _check_size(size)
    anxiety = float(rng.uniform(0.0, 1.0)) if anxiety is None else anxiety
    jerk_rate = float(rng.uniform(0.0, 2.0)) if jerk_rate is None else jerk_rate
    trajectory = _shake_trajectory(samples, anxiety, jerk_rate, rng)
    return _splat(_fit_to_grid(trajectory, size), size)


def linear_motion_kernel(length: float, angle: float, size: int | None = None) -> np.ndarray:
    """A straight motion of `length` pixels at `angle` degrees (counter-clockwise from the x axis), centred
    on an odd size x size grid (by default the smallest that holds it)."""
    if not np.isfinite(length) or length < 0:
        raise DataError(f"linear_motion_kernel expects a non-negative length, found {length}.")
    smallest_odd = (int(np.ceil(length)) + 1) | 1
    size = _check_size(smallest_odd if size is None else size)
    if length > size - 1:
        raise DataError(f"linear_motion_kernel expects a length of at most size - 1 = {size - 1}, found {length}.")
    steps = np.linspace(-0.5, 0.5, max(2, int(np.ceil(4 * length)) + 1)) * length
    radians = np.deg2rad(angle)
    centre = (size - 1) / 2
    points = np.stack([centre - steps * np.sin(radians), centre + steps * np.cos(radians)], axis=1)
    return _splat(points, size)


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The image (H x W or H x W x C) convolved with a 2-D kernel, same size, edges extended symmetrically."""
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2 or kernel.size == 0 or not np.all(np.isfinite(kernel)):
        raise DataError(f"blur expects a finite 2-D kernel, found one of shape {kernel.shape}.")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (2, 3):
        raise DataError(f"blur expects an image shaped H x W or H x W x C, found shape {image.shape}.")
    rows, cols = kernel.shape
    padding = [((rows - 1) // 2, rows // 2), ((cols - 1) // 2, cols // 2)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, padding, mode="symmetric")
    return _valid_convolution(padded, kernel.reshape(kernel.shape + (1,) * (image.ndim - 2)))


def _valid_convolution(padded: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The part of the convolution over axes 0 and 1 that needs no values beyond `padded`, through the FFT:
    a circular convolution only wraps around into the first kernel-size - 1 rows and columns, dropped here."""
    rows, cols = kernel.shape[:2]
    shape = [fft.next_fast_len(length, real=True) for length in padded.shape[:2]]
    spectrum = fft.rfft2(padded, shape, axes=(0, 1)) * fft.rfft2(kernel, shape, axes=(0, 1))
    full = fft.irfft2(spectrum, shape, axes=(0, 1))
    return full[rows - 1 : padded.shape[0], cols - 1 : padded.shape[1]].astype(np.float32)


class MotionBlur(Degradation):
    """Blurs with a random motion kernel of a size drawn per image (odd sizes within kernel_size, uniformly or,
    with size_weighting "inverse", with chances falling as 1 / size, so that small and medium blur dominate as in
    real shake), then adds a little Gaussian sensor noise (noise_sigma on the 0-255 scale) and clips to [0, 1].

    With linear_light the blur averages light, as a moving camera does (GoPro's blurry frames are means of sharp
    frames in linear light): the photo is taken to linear light first, its near-white pixels, clipped in the
    photo, are brightened by a highlight gain drawn from highlight_gain so that lights smear into bright streaks,
    and the result is clipped as a sensor saturates and taken back through the gamma. The parameters record the
    kernel itself (float32 array) under "kernel"."""

    task = "deblur"
    param_type = "motion_blur"

    def __init__(
        self,
        kernel_size: int | tuple[int, int] = (7, 31),
        noise_sigma: Range = 2.55,
        kind: str = "shake",
        size_weighting: str = "uniform",
        linear_light: bool = False,
        highlight_gain: Range = (1.0, 4.0),
    ):
        low, high = check_range("kernel_size", kernel_size, 3, 255)
        if kind not in KINDS:
            raise DataError(f"MotionBlur expects kind to be one of {', '.join(KINDS)}, found {kind!r}.")
        if size_weighting not in SIZE_WEIGHTINGS:
            choices = ", ".join(SIZE_WEIGHTINGS)
            raise DataError(f"MotionBlur expects size_weighting to be one of {choices}, found {size_weighting!r}.")
        self.sizes = np.arange(int(low), int(high) + 1)
        self.sizes = self.sizes[self.sizes % 2 == 1]
        if self.sizes.size == 0:
            raise DataError(f"MotionBlur expects kernel_size to include an odd size, found {kernel_size!r}.")
        inverse = 1.0 / self.sizes
        self.size_chances = inverse / inverse.sum() if size_weighting == "inverse" else None  # None: uniform
        self.noise_sigma = check_range("noise_sigma", noise_sigma, 0.0, 255.0)
        self.kind = kind
        self.linear_light = bool(linear_light)
        self.highlight_gain = check_range("highlight_gain", highlight_gain, 1.0, 100.0)
        self.margin = int(self.sizes[-1]) // 2

    @classmethod
    def camera(cls) -> MotionBlur:
        """Blur as real photos show it: in linear light, camera shake or straight motion, kernels of 5 to 45 px
        with small ones most likely, and up to 1% sensor noise after."""
        return cls(
            kernel_size=(5, 45), noise_sigma=(0.0, 2.55), kind="mixed", size_weighting="inverse", linear_light=True
        )

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
        size = int(rng.choice(self.sizes, p=self.size_chances))
        kind = self.kind if self.kind != "mixed" else str(rng.choice(["shake", "linear"]))
        params: dict = {"type": self.param_type, "kind": kind, "kernel_size": size}
        if kind == "shake":
            kernel = camera_shake_kernel(size, rng)
        else:
            params["length"], params["angle"] = float(size - 1), float(rng.uniform(0.0, 180.0))
            kernel = linear_motion_kernel(params["length"], params["angle"], size)
        params.update(noise_sigma=draw(self.noise_sigma, rng), linear_light=self.linear_light)
        if self.linear_light:
            params["highlight_gain"] = draw(self.highlight_gain, rng)
        params["kernel"] = kernel
        return params

    def apply(self, clean: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
        if params.get("linear_light", False):
            light = brighten_highlights(srgb_to_linear(clean), params["highlight_gain"])
            blurred = linear_to_srgb(np.clip(blur(light, params["kernel"]), 0.0, 1.0))
        else:
            blurred = blur(clean, params["kernel"])
        return np.clip(add_gaussian_noise(blurred, params["noise_sigma"], rng), 0.0, 1.0)


def brighten_highlights(light: np.ndarray, gain: float) -> np.ndarray:
    """Linear light with its near-white pixels (brightest channel above HIGHLIGHT_START in the photo) scaled up
    to `gain` times: the light a photo clipped, smoothly ramped in so that no edge appears."""
    brightest = linear_to_srgb(light.max(axis=-1, keepdims=True))
    ramp = np.clip((brightest - HIGHLIGHT_START) / (1.0 - HIGHLIGHT_START), 0.0, 1.0)
    return (light * (1.0 + (gain - 1.0) * ramp)).astype(np.float32)


def _check_size(size: int) -> int:
    if int(size) != size or size < 1:
        raise DataError(f"Expected a kernel size that is a positive integer, found {size!r}.")
    return int(size)


def _shake_trajectory(samples: int, anxiety: float, jerk_rate: float, rng: np.random.Generator) -> np.ndarray:
    """Points (row, col) of a camera path with unit steps, as a samples x 2 array."""
    tremor = 0.15 * anxiety * rng.standard_normal((samples, 2)) @ np.array([1.0, 1j])
    jerks = rng.random(samples) < jerk_rate / samples
    jerk_turns = np.exp(1j * (np.pi + rng.uniform(-0.5, 0.5, samples)))
    pull = 0.1 * rng.uniform()
    velocity = np.exp(2j * np.pi * rng.uniform())
    path = np.zeros(samples, dtype=np.complex128)
    for step in range(1, samples):
        change = anxiety * (tremor[step] - pull * path[step - 1] / samples)
        if jerks[step]:
            change += 2 * velocity * jerk_turns[step]
        velocity += change
        velocity /= max(abs(velocity), 1e-12)
        path[step] = path[step - 1] + velocity
    return np.stack([path.imag, path.real], axis=1)


def _fit_to_grid(points: np.ndarray, size: int) -> np.ndarray:
    """The points moved so their mean is the grid centre and scaled to fit inside a size x size grid."""
    offsets = points - points.mean(axis=0)
    reach = np.abs(offsets).max()
    scale = (size - 1) / 2 / reach if reach > 0 else 0.0
    return offsets * scale + (size - 1) / 2


def _splat(points: np.ndarray, size: int) -> np.ndarray:
    """Bilinear accumulation of equally weighted sub-pixel points onto a size x size grid, normalised to sum 1."""
    points = np.clip(points, 0.0, size - 1)
    base = np.minimum(np.floor(points).astype(int), size - 2) if size > 1 else np.zeros_like(points, dtype=int)
    fraction = points - base
    kernel = np.zeros((size, size), dtype=np.float64)
    for drow, dcol in ((0, 0), (0, 1), (1, 0), (1, 1)):
        weight = np.abs(1 - drow - fraction[:, 0]) * np.abs(1 - dcol - fraction[:, 1])
        rows, cols = np.minimum(base[:, 0] + drow, size - 1), np.minimum(base[:, 1] + dcol, size - 1)
        np.add.at(kernel, (rows, cols), weight)
    return (kernel / kernel.sum()).astype(np.float32)
