"""Training losses: the published recipe of each architecture, chosen by `loss_for(architecture, task)`."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LossFn = Callable[[object, Tensor], Tensor]


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


def mprnet_loss(task: str) -> LossFn:
    """MPRNet: Charbonnier summed over the three stage outputs, plus 0.05 x edge loss except for denoising."""
    edge_weight = 0.0 if task == "denoise" else 0.05

    def loss(outputs: list[Tensor], target: Tensor) -> Tensor:
        total = sum(charbonnier(output, target) for output in outputs)
        if edge_weight:
            total = total + edge_weight * sum(edge_loss(output, target) for output in outputs)
        return total

    return loss


LOSSES: dict[str, Callable[[str], LossFn]] = {"mprnet": mprnet_loss}


def loss_for(architecture: str, task: str) -> LossFn:
    try:
        return LOSSES[architecture](task)
    except KeyError:
        raise ValueError(f"no training loss is defined for architecture {architecture!r}") from None
