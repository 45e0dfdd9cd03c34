"""Non-blind deconvolution with a known kernel: Wiener (scikit-image), Richardson-Lucy and total-variation
deconvolution by split Bregman (Getreuer, IPOL 2012), plus the kernel checks, kernel files and edge handling they
share.

Kernels follow the usual convolution convention (as `mprnet.degrade.blur`): the kernel's centre is element
((rows - 1) // 2, (cols - 1) // 2). FFT-based methods see the image as periodic, so every method here works on the
image extended by symmetric padding and edge-tapered, which keeps ringing out of the borders, and crops back.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from numpy.lib import format as npy
from scipy import fft

from ..errors import BaselineError, MprnetError
from ..io import open_raster, quiet_decoders

NOISE_FLOOR = 0.5  # 0-255 scale; below this a sigma-driven setting would ask for an unstable inverse
TV_SPLIT_WEIGHT = 5.0  # the split Bregman penalty gamma relative to the TV weight (Getreuer's default)
#: The largest kernel side in pixels: far beyond any camera shake, and a bound on what a kernel file may allocate.
MAX_KERNEL_SIDE = 255
_NPY_HEADER_READERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}


def as_kernel(kernel: np.ndarray) -> np.ndarray:
    """The kernel as a float64 2-D array summing to 1; raises BaselineError if it cannot be one."""
    kernel = np.asarray(kernel, dtype=np.float64)
    check_kernel_shape(kernel.shape)
    if not np.all(np.isfinite(kernel)) or kernel.min() < 0 or kernel.sum() <= 0:
        raise BaselineError(
            "Expected a blur kernel of finite non-negative values with a positive sum, "
            f"found values from {kernel.min()} to {kernel.max()} summing to {kernel.sum()}."
        )
    return kernel / kernel.sum()


def check_kernel_shape(shape: tuple[int, ...]) -> None:
    """BaselineError unless `shape` is that of a 2-D kernel of 1 to MAX_KERNEL_SIDE pixels per side."""
    if len(shape) != 2 or 0 in shape:
        raise BaselineError(f"Expected a 2-D blur kernel, found an array of shape {tuple(shape)}.")
    if max(shape) > MAX_KERNEL_SIDE:
        rows, cols = shape
        raise BaselineError(f"The kernel is {cols}x{rows} pixels; at most {MAX_KERNEL_SIDE} per side is taken.")


def load_kernel(path: str | Path) -> np.ndarray:
    """A blur kernel from a .npy file or a grayscale image, normalised to sum 1; its size and type are checked from
    the file's header, before anything is decoded."""
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"Expected a kernel file (.npy or grayscale image), found no file at {path}.")
    return _kernel(path, path.suffix.lower() == ".npy", str(path))


def kernel_from_bytes(data: bytes, name: str) -> np.ndarray:
    """A blur kernel from a kernel file's content held in memory (an upload), as `load_kernel` reads the file: a
    .npy array where `name` ends in .npy, else a grayscale image; errors name it `name`."""
    return _kernel(bytes(data), name.lower().endswith(".npy"), name)


def _kernel(source: Path | bytes, is_npy: bool, name: str) -> np.ndarray:
    try:
        return as_kernel(_read_npy(source) if is_npy else _read_gray(source))
    except MprnetError as error:
        raise BaselineError(f"{name}: {error}") from None
    except MemoryError:
        raise
    except Exception as error:  # Pillow and numpy raise many types (struct.error, SyntaxError...) on damaged files
        raise BaselineError(f"Could not read the kernel file {name}: {error}") from None


def _read_npy(source: Path | bytes) -> np.ndarray:
    with source.open("rb") if isinstance(source, Path) else io.BytesIO(source) as file:
        version = npy.read_magic(file)
        if version not in _NPY_HEADER_READERS:
            raise BaselineError(f"A .npy file of format version {version[0]}.{version[1]}, which is not read.")
        shape, _, dtype = _NPY_HEADER_READERS[version](file)
        if dtype.kind not in "uif":
            raise BaselineError(f"An array of {dtype} values; a kernel holds real numbers.")
        check_kernel_shape(shape)
        file.seek(0)
        return npy.read_array(file, allow_pickle=False)


def _read_gray(source: Path | bytes) -> np.ndarray:
    with quiet_decoders(), open_raster(source) as image:
        check_kernel_shape((image.height, image.width))
        array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3:
        colour = array[..., :3]
        if not np.all(colour == colour[..., :1]):
            raise BaselineError("Expected a grayscale kernel image, found a colour image.")
        array = colour[..., 0]
    return array


def edge_taper(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Blend the image near its borders with its circular blur by `kernel`, the weight of the blur falling from 1
    at the border to 0 a kernel size inside (as MATLAB's edgetaper), so that the image is almost periodic."""
    alpha: np.ndarray = np.outer(
        1.0 - _edge_profile(kernel.sum(axis=1), image.shape[0]), 1.0 - _edge_profile(kernel.sum(axis=0), image.shape[1])
    )
    alpha = alpha.reshape(alpha.shape + (1,) * (image.ndim - 2))
    return alpha * image + (1.0 - alpha) * convolve_circular(image, kernel)


def _edge_profile(projection: np.ndarray, length: int) -> np.ndarray:
    """The circular autocorrelation of the kernel's projection on one axis, scaled to peak at 1."""
    spectrum = np.abs(fft.rfft(projection, length - 1)) ** 2
    correlation = fft.irfft(spectrum, length - 1)
    correlation = np.append(correlation, correlation[0])
    return correlation / correlation.max()


def kernel_spectrum(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The kernel's real-FFT transfer function on a periodic grid of `shape`, its centre moved to the origin."""
    padded = np.zeros(shape)
    rows, cols = kernel.shape
    padded[:rows, :cols] = kernel
    padded = np.roll(padded, (-((rows - 1) // 2), -((cols - 1) // 2)), axis=(0, 1))
    return fft.rfft2(padded)


def convolve_circular(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Periodic convolution of an H x W (x C) image with a 2-D kernel."""
    spectrum = kernel_spectrum(kernel, image.shape[:2])
    return _filter(image, spectrum.reshape(spectrum.shape + (1,) * (image.ndim - 2)))


def extend(image: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    """The image padded symmetrically by a kernel size on each side and edge-tapered, with the slices that crop
    the original back out."""
    margin_rows, margin_cols = kernel.shape
    padding = [(margin_rows, margin_rows), (margin_cols, margin_cols)] + [(0, 0)] * (image.ndim - 2)
    padded = edge_taper(np.pad(image, padding, mode="symmetric"), kernel)
    crop = (slice(margin_rows, margin_rows + image.shape[0]), slice(margin_cols, margin_cols + image.shape[1]))
    return padded, crop


def wiener_deconvolve(
    image: np.ndarray, kernel: np.ndarray, sigma: float | None = None, balance: float | None = None
) -> np.ndarray:
    """Wiener deconvolution (scikit-image, Laplacian regulariser) of an H x W x C image; `balance` defaults to one
    grown with the noise level sigma (0-255 scale, about 1% noise when unknown)."""
    from skimage import restoration  # imported when used: `import mprnet` stays free of scikit-image

    kernel = as_kernel(kernel)
    if balance is None:
        balance = default_wiener_balance(2.55 if sigma is None else sigma)
    extended, crop = extend(image, kernel)
    channels = [
        restoration.wiener(extended[..., c], _centred_odd(kernel), balance, clip=False) for c in range(image.shape[2])
    ]
    return np.stack(channels, axis=-1)[crop]


def richardson_lucy(image: np.ndarray, kernel: np.ndarray, iterations: int = 10) -> np.ndarray:
    """Richardson-Lucy deconvolution of an H x W x C image. Periodic convolutions on the tapered extension: with
    scikit-image's zero boundary, errors from the border creep inwards by a kernel radius per iteration."""
    kernel = as_kernel(kernel)
    extended, crop = extend(np.clip(image, 0.0, 1.0), kernel)
    spectrum = kernel_spectrum(kernel, extended.shape[:2])[..., None]
    estimate = extended.copy()
    for _ in range(iterations):
        ratio = extended / np.maximum(_filter(estimate, spectrum), 1e-12)
        estimate *= _filter(ratio, np.conj(spectrum))
    return estimate[crop]


def _filter(image: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    return fft.irfft2(fft.rfft2(image, axes=(0, 1)) * spectrum, image.shape[:2], axes=(0, 1))


def _centred_odd(kernel: np.ndarray) -> np.ndarray:
    """The kernel on an odd grid with the same centre, as scikit-image expects its centre at the middle."""
    rows, cols = kernel.shape
    return np.pad(kernel, [(1 - rows % 2, 0), (1 - cols % 2, 0)])


def tv_deconvolve(
    image: np.ndarray,
    kernel: np.ndarray,
    sigma: float | None = None,
    fidelity: float | None = None,
    iterations: int = 100,
    tolerance: float = 1e-4,
) -> np.ndarray:
    """Total-variation deconvolution by split Bregman: minimises |grad u| (colour channels coupled) plus
    fidelity / 2 * |kernel * u - image|^2; `fidelity` defaults to one fitted to the noise level sigma (0-255,
    about 1% noise when unknown)."""
    kernel = as_kernel(kernel)
    if fidelity is None:
        fidelity = default_tv_fidelity(2.55 if sigma is None else sigma)
    extended, crop = extend(np.asarray(image, dtype=np.float64), kernel)
    return _split_bregman(extended, kernel, fidelity, iterations, tolerance)[crop]


def default_tv_fidelity(sigma: float) -> float:
    """The TV fidelity weight for Gaussian noise of sigma (0-255 scale), fitted on camera-shake blurred photos
    (best near 1000, 500 and 300 at sigma 1, 2.55 and 5.1)."""
    return 500.0 * (2.55 / max(sigma, NOISE_FLOOR)) ** 0.75


def default_wiener_balance(sigma: float) -> float:
    """The Wiener balance for Gaussian noise of sigma (0-255 scale), fitted as `default_tv_fidelity`."""
    return 0.05 * (max(sigma, NOISE_FLOOR) / 2.55) ** 0.5


def _split_bregman(
    image: np.ndarray, kernel: np.ndarray, fidelity: float, iterations: int, tolerance: float
) -> np.ndarray:
    shape = image.shape[:2]
    gamma = TV_SPLIT_WEIGHT
    blur = kernel_spectrum(kernel, shape)[..., None]
    data_term = fidelity * np.conj(blur) * fft.rfft2(image, axes=(0, 1))
    denominator = fidelity * np.abs(blur) ** 2 + gamma * gradient_power(shape)[..., None]
    result = image
    split = np.zeros((2, *image.shape))
    bregman = np.zeros_like(split)
    for _ in range(iterations):
        right = data_term + gamma * fft.rfft2(gradient_adjoint(split - bregman), axes=(0, 1))
        updated = fft.irfft2(right / denominator, shape, axes=(0, 1))
        change = np.linalg.norm(updated - result) / max(np.linalg.norm(updated), 1e-12)
        result = updated
        bregman += gradient(result)
        split = _shrink(bregman, 1.0 / gamma)
        bregman -= split
        if change < tolerance:
            break
    return result


def gradient(image: np.ndarray) -> np.ndarray:
    """Periodic forward differences along rows and columns, stacked on a new first axis."""
    return np.stack([np.roll(image, -1, axis=0) - image, np.roll(image, -1, axis=1) - image])


def gradient_adjoint(field: np.ndarray) -> np.ndarray:
    """The adjoint of `gradient` (minus the divergence)."""
    return (np.roll(field[0], 1, axis=0) - field[0]) + (np.roll(field[1], 1, axis=1) - field[1])


def gradient_power(shape: tuple[int, int]) -> np.ndarray:
    """The real-FFT transfer function of `gradient_adjoint(gradient(.))`: |D_rows|^2 + |D_cols|^2."""
    return (
        np.abs(kernel_spectrum(np.array([[1.0], [-1.0]]), shape)) ** 2
        + np.abs(kernel_spectrum(np.array([[1.0, -1.0]]), shape)) ** 2
    )


def _shrink(field: np.ndarray, threshold: float) -> np.ndarray:
    """Isotropic soft threshold of the gradient field, its magnitude taken over directions and colour channels."""
    magnitude = np.sqrt(np.sum(field * field, axis=(0, 3), keepdims=True))
    return field * np.maximum(1.0 - threshold / np.maximum(magnitude, 1e-12), 0.0)
