"""Training losses: the published recipe of each architecture, chosen by `loss_for(architecture, task)`.

A loss takes what `forward_for(architecture)` returns for a batch and the clean target in [0, 1]; where the
architecture trains on rain-density labels (`needs_density_labels`), both also take the batch's labels.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.srn import resize_to

LossFn = Callable[..., Tensor]
TrainingForward = Callable[..., object]
#: MIMO-UNet's weight of the frequency term.
FFT_WEIGHT = 0.1


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


def psnr_loss(prediction: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """NAFNet's loss: minus the PSNR of each image (10 log10 of its mean squared error), averaged over the batch."""
    mse = ((prediction - target) ** 2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(mse + eps).mean()


def nafnet_loss(task: str) -> LossFn:
    return psnr_loss


def resized_like(target: Tensor, output: Tensor) -> Tensor:
    """The target bilinearly resized to an output's scale (the reference's targets for coarse outputs)."""
    return resize_to(target, output.shape[-2:])


def fft_l1(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference of the real and imaginary parts of the two images' 2-D Fourier transforms."""
    spectra = [torch.view_as_real(torch.fft.fft2(image)) for image in (prediction, target)]
    return F.l1_loss(*spectra)


def mimo_unet_loss(task: str) -> LossFn:
    """MIMO-UNet: L1 at each of the three output scales, plus 0.1 x L1 between their Fourier spectra."""

    def loss(outputs: list[Tensor], target: Tensor) -> Tensor:
        targets = [resized_like(target, output) for output in outputs]
        content = sum(F.l1_loss(output, scaled) for output, scaled in zip(outputs, targets))
        spectral = sum(fft_l1(output, scaled) for output, scaled in zip(outputs, targets))
        return content + FFT_WEIGHT * spectral

    return loss


def srn_loss(task: str) -> LossFn:
    """SRN: the mean squared error at each of the three scales, summed (the authors' multi-scale Euclidean loss)."""

    def loss(outputs: list[Tensor], target: Tensor) -> Tensor:
        return sum(F.mse_loss(output, resized_like(target, output)) for output in outputs)

    return loss


def did_mdn_loss(task: str) -> LossFn:
    """DID-MDN: L1 between the clean estimate and the target in [-1, 1], plus cross-entropy of the density
    classifier's logits against the labels when the network carries the classifier.

    The release adds 1.8 x L1 between VGG-16 features of both images; those weights cannot be fetched here, so
    this recipe leaves the perceptual term out.
    """

    def loss(outputs: list[Tensor], target: Tensor, labels: Tensor) -> Tensor:
        _, clean, *logits = outputs
        total = F.l1_loss(clean, target * 2 - 1)
        if logits:
            total = total + F.cross_entropy(logits[0], labels)
        return total

    return loss


LOSSES: dict[str, Callable[[str], LossFn]] = {
    "mprnet": mprnet_loss,
    "nafnet": nafnet_loss,
    "mimo-unet": mimo_unet_loss,
    "srn": srn_loss,
    "did-mdn": did_mdn_loss,
}


def loss_for(architecture: str, task: str) -> LossFn:
    try:
        return LOSSES[architecture](task)
    except KeyError:
        raise ValueError(f"no training loss is defined for architecture {architecture!r}") from None


def plain_forward(network: nn.Module, degraded: Tensor) -> object:
    return network(degraded)


def did_mdn_forward(network: nn.Module, degraded: Tensor, labels: Tensor) -> list[Tensor]:
    """DID-MDN in training: conditioned on the true labels, on images in [-1, 1], with the classifier's logits."""
    return network(degraded * 2 - 1, labels, with_density_logits=True)


#: How a batch reaches each network in training, where it is not simply `network(degraded)`.
FORWARDS: dict[str, TrainingForward] = {"did-mdn": did_mdn_forward}


def forward_for(architecture: str) -> TrainingForward:
    return FORWARDS.get(architecture, plain_forward)


def needs_density_labels(architecture: str) -> bool:
    """Whether training batches must carry rain-density labels (DID-MDN is conditioned on them)."""
    return architecture == "did-mdn"
