"""Classic and pretrained baselines as restorers: `get_baseline(name)(image, sigma=..., kernel=...)`.

A restorer takes a float image in [0, 1] (H x W x C, or H x W) and returns the restored one, same shape, float32,
clipped to [0, 1]. `sigma` is the noise level on the 0-255 scale and `kernel` a 2-D blur kernel; a method that needs
one says so when it is missing, and a method that does not use one ignores it, so one call fits every restorer.
"""

from __future__ import annotations

from .base import BASELINES, Baseline, get_baseline
from .dct import dct_denoise, msdct_denoise
from .deconv import as_kernel, load_kernel, richardson_lucy, tv_deconvolve, wiener_deconvolve
from .wrappers import bm3d_denoise, ffdnet_denoise, nlmeans_denoise, wavelet_denoise

__all__ = [
    "BASELINES",
    "Baseline",
    "get_baseline",
    "load_kernel",
    "as_kernel",
    "dct_denoise",
    "msdct_denoise",
    "deblur_blind",
    "estimate_kernel",
    "wiener_deconvolve",
    "tv_deconvolve",
    "richardson_lucy",
    "bm3d_denoise",
    "ffdnet_denoise",
    "nlmeans_denoise",
    "wavelet_denoise",
]


def __getattr__(name: str):
    """The l0 method's functions, imported when first asked for: their module loads scikit-image, which `import
    mprnet` leaves out."""
    if name in ("deblur_blind", "estimate_kernel"):
        from . import l0_deblur

        return getattr(l0_deblur, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
