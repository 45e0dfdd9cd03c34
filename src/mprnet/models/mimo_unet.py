"""MIMO-UNet and MIMO-UNet+ (Cho et al., ICCV 2021): a multi-input multi-output U-Net for deblurring.

One encoder-decoder takes the image at full, half and quarter resolution and returns a restored image at each
of the three scales. MIMO-UNet+ is the same network with 20 residual blocks per level instead of 8 and dropout
on its fused skip connections. Parameter names follow the published network, so the released checkpoints
(stored under "model") load unchanged.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ImageError
from ..losses import fft_l1, resized_like
from .registry import Architecture, LossFn, register

#: Height and width must be multiples of this: two halvings, each undone exactly by a transposed convolution.
SIZE_MULTIPLE = 4
#: Residual blocks per level of MIMO-UNet+, the only release that uses dropout.
PLUS_NUM_RES = 20
PLUS_DROPOUT = 0.1


class BasicConv(nn.Module):
    """A (transposed) convolution, optionally followed by ReLU, wrapped as `main` like the published layers."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        relu: bool = True,
        transpose: bool = False,
    ):
        super().__init__()
        layer: nn.Module
        if transpose:
            layer = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2 - 1)
        else:
            layer = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2)
        self.main = nn.Sequential(layer, nn.ReLU(inplace=True)) if relu else nn.Sequential(layer)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.main = nn.Sequential(BasicConv(channels, channels, 3), BasicConv(channels, channels, 3, relu=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + x


class ResStack(nn.Module):
    """`num_res` residual blocks (the published EBlock and DBlock, which are identical)."""

    def __init__(self, channels: int, num_res: int):
        super().__init__()
        self.layers = nn.Sequential(*[ResBlock(channels) for _ in range(num_res)])

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class AFF(nn.Module):
    """Asymmetric feature fusion: the encoder features of all three scales, merged for one decoder level."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Sequential(
            BasicConv(in_channels, out_channels, 1), BasicConv(out_channels, out_channels, 3, relu=False)
        )

    def forward(self, *features: Tensor) -> Tensor:
        return self.conv(torch.cat(features, dim=1))


class SCM(nn.Module):
    """Shallow convolutional module: features of a downscaled input image, the image itself kept as 3 channels."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.main = nn.Sequential(
            BasicConv(3, out_channels // 4, 3),
            BasicConv(out_channels // 4, out_channels // 2, 1),
            BasicConv(out_channels // 2, out_channels // 2, 3),
            BasicConv(out_channels // 2, out_channels - 3, 1),
        )
        self.conv = BasicConv(out_channels, out_channels, 1, relu=False)

    def forward(self, image: Tensor) -> Tensor:
        return self.conv(torch.cat([image, self.main(image)], dim=1))


class FAM(nn.Module):
    """Feature attention module: encoder features modulated by the SCM features of the same scale."""

    def __init__(self, channels: int):
        super().__init__()
        self.merge = BasicConv(channels, channels, 3, relu=False)

    def forward(self, features: Tensor, shallow: Tensor) -> Tensor:
        return features + self.merge(features * shallow)


def _resize(x: Tensor, scale: float) -> Tensor:
    return F.interpolate(x, scale_factor=scale, mode="nearest")


class MIMOUNet(nn.Module):
    """`forward` returns `[quarter, half, full]` resolution images; the last is the result."""

    def __init__(self, num_res: int = 8, base_channel: int = 32, dropout: float = 0.0):
        super().__init__()
        c = base_channel
        self.Encoder = nn.ModuleList([ResStack(c, num_res), ResStack(c * 2, num_res), ResStack(c * 4, num_res)])
        self.feat_extract = nn.ModuleList(
            [
                BasicConv(3, c, 3),
                BasicConv(c, c * 2, 3, stride=2),
                BasicConv(c * 2, c * 4, 3, stride=2),
                BasicConv(c * 4, c * 2, 4, stride=2, transpose=True),
                BasicConv(c * 2, c, 4, stride=2, transpose=True),
                BasicConv(c, 3, 3, relu=False),
            ]
        )
        self.Decoder = nn.ModuleList([ResStack(c * 4, num_res), ResStack(c * 2, num_res), ResStack(c, num_res)])
        self.Convs = nn.ModuleList([BasicConv(c * 4, c * 2, 1), BasicConv(c * 2, c, 1)])
        self.ConvsOut = nn.ModuleList([BasicConv(c * 4, 3, 3, relu=False), BasicConv(c * 2, 3, 3, relu=False)])
        self.AFFs = nn.ModuleList([AFF(c * 7, c), AFF(c * 7, c * 2)])
        self.FAM1 = FAM(c * 4)
        self.SCM1 = SCM(c * 4)
        self.FAM2 = FAM(c * 2)
        self.SCM2 = SCM(c * 2)
        # Dropout2d has no parameters, so MIMO-UNet+ checkpoints keep the plain network's keys.
        self.skip_dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, image: Tensor) -> list[Tensor]:
        height, width = image.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ImageError(
                f"MIMO-UNet needs height and width that are multiples of {SIZE_MULTIPLE}, "
                f"got {height}x{width}; pad the image first (mprnet.infer does it for you)"
            )
        image_2 = _resize(image, 0.5)
        image_4 = _resize(image_2, 0.5)

        skip1 = self.Encoder[0](self.feat_extract[0](image))
        skip2 = self.Encoder[1](self.FAM2(self.feat_extract[1](skip1), self.SCM2(image_2)))
        bottom = self.Encoder[2](self.FAM1(self.feat_extract[2](skip2), self.SCM1(image_4)))

        bottom_2 = _resize(bottom, 2)
        fused2 = self.AFFs[1](_resize(skip1, 0.5), skip2, bottom_2)
        fused1 = self.AFFs[0](skip1, _resize(skip2, 2), _resize(bottom_2, 2))
        fused2, fused1 = self.skip_dropout(fused2), self.skip_dropout(fused1)

        z = self.Decoder[0](bottom)
        quarter = self.ConvsOut[0](z) + image_4
        z = self.Decoder[1](self.Convs[0](torch.cat([self.feat_extract[3](z), fused2], dim=1)))
        half = self.ConvsOut[1](z) + image_2
        z = self.Decoder[2](self.Convs[1](torch.cat([self.feat_extract[4](z), fused1], dim=1)))
        full = self.feat_extract[5](z) + image
        return [quarter, half, full]


PRESETS: dict[str, dict] = {
    "plus": dict(num_res=PLUS_NUM_RES, dropout=PLUS_DROPOUT),
}


def detect_config(state_dict: dict[str, Tensor]) -> dict | None:
    """MIMO-UNet(+) hyper-parameters read off a state dict, or None if it is not one.

    Dropout leaves no trace in the weights; it is set for the 20-block layout of the MIMO-UNet+ release.
    """
    required = ("feat_extract.0.main.0.weight", "AFFs.0.conv.0.main.0.weight", "SCM1.conv.main.0.weight")
    if not all(key in state_dict for key in required):
        return None
    num_res = len({key.split(".")[3] for key in state_dict if key.startswith("Encoder.0.layers.")})
    return dict(
        num_res=num_res,
        base_channel=state_dict["feat_extract.0.main.0.weight"].shape[0],
        dropout=PLUS_DROPOUT if num_res == PLUS_NUM_RES else 0.0,
    )


#: Weight of the frequency term in the authors' loss.
FFT_WEIGHT = 0.1


def training_loss(task: str) -> LossFn:
    """L1 at each of the three output scales, plus 0.1 x L1 between their Fourier spectra."""

    def loss(outputs: list[Tensor], target: Tensor) -> Tensor:
        targets = [resized_like(target, output) for output in outputs]
        # sum() of tensors is a tensor (there are three outputs), not its start value 0
        content = cast(Tensor, sum(F.l1_loss(output, scaled) for output, scaled in zip(outputs, targets)))
        spectral = cast(Tensor, sum(fft_l1(output, scaled) for output, scaled in zip(outputs, targets)))
        return content + FFT_WEIGHT * spectral

    return loss


register(
    Architecture(
        name="mimo-unet",
        display_name="MIMO-UNet",
        build=MIMOUNet,
        detect=detect_config,
        restore=lambda model, image: model(image)[-1],
        loss=training_loss,
        presets=PRESETS,
        release_tasks=("deblur",),
        size_multiple=SIZE_MULTIPLE,
        description="MIMO-UNet (Cho et al., ICCV 2021), multi-input multi-output U-Net; '-plus' for MIMO-UNet+",
    )
)
