"""Loss terms of the published training recipes (each network's file composes its own from these).

Each takes predictions and targets in [0, 1] (N x C x H x W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def charbonnier(prediction: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    return torch.sqrt((prediction - target) ** 2 + eps * eps).mean()


def _gaussian_kernel(channels: int, device, dtype) -> Tensor:
    taps = torch.tensor([0.05, 0.25, 0.4, 0.25, 0.05], device=device, dtype=dtype)
    return (taps[:, None] * taps[None, :]).expand(channels, 1, 5, 5).contiguous()


def laplacian(image: Tensor) -> Tensor:
    """One Laplacian-pyramid residual: the image minus its blurred, decimated, re-expanded copy."""
    kernel = _gaussian_kernel(image.shape[1], image.device, image.dtype)

    def smooth(x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=x.shape[1])

    filtered = smooth(image)
    expanded = torch.zeros_like(filtered)
    expanded[..., ::2, ::2] = filtered[..., ::2, ::2] * 4
    return image - smooth(expanded)


def edge_loss(prediction: Tensor, target: Tensor) -> Tensor:
    return charbonnier(laplacian(prediction), laplacian(target))


def psnr_loss(prediction: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """NAFNet's loss: minus the PSNR of each image (10 log10 of its mean squared error), averaged over the batch."""
    mse = ((prediction - target) ** 2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(mse + eps).mean()


def resized_like(target: Tensor, output: Tensor) -> Tensor:
    """The target bilinearly resized to an output's scale (the reference's targets for coarse outputs)."""
    if target.shape[-2:] == output.shape[-2:]:
        return target
    return F.interpolate(target, size=output.shape[-2:], mode="bilinear", align_corners=False)


def fft_l1(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference of the real and imaginary parts of the two images' 2-D Fourier transforms."""
    predicted, expected = (torch.view_as_real(torch.fft.fft2(image)) for image in (prediction, target))
    return F.l1_loss(predicted, expected)
