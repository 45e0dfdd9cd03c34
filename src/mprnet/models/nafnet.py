"""NAFNet (Chen et al., ECCV 2022): a nonlinear-activation-free U-Net for denoising and deblurring.

Parameter names follow the published network, so the released checkpoints (SIDD, GoPro) load unchanged.

TLC (test-time local converter, Chu et al. 2021): a network trained on crops computes channel-attention
statistics over the whole crop; at test time, on a larger image, TLC averages over a window the size those
statistics covered in training (1.5x the training crop, as the release does) instead of over the whole image.
It changes no weights: `tlc_train_size=256` switches it on, and the published GoPro numbers need it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import psnr_loss
from .registry import Architecture, register

#: Side of the training crops of the released models, and the TLC window relative to it.
RELEASE_TRAIN_SIZE = 256
TLC_WINDOW_RATIO = 1.5


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channels of each pixel."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(1, keepdim=True)
        variance = (x - mean).pow(2).mean(1, keepdim=True)
        normalised = (x - mean) / (variance + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * normalised + self.bias.view(1, -1, 1, 1)


class LocalMeanPool(nn.Module):
    """TLC's replacement of global average pooling: the mean over a `window` x `window` box around each pixel.

    Boxes are read off an integral image (cost independent of the window) and the borders, where no full box
    fits, repeat the nearest full box, as the reference does. An image no larger than the window gets the global mean.
    """

    def __init__(self, window: int):
        super().__init__()
        self.window = window

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if self.window >= height and self.window >= width:
            return x.mean((2, 3), keepdim=True)
        box_h, box_w = min(height, self.window), min(width, self.window)
        # Integral images lose precision in half types: accumulate in float32 at least.
        integral = x.to(torch.promote_types(x.dtype, torch.float32)).cumsum(-1).cumsum(-2)
        integral = F.pad(integral, (1, 0, 1, 0))
        sums = (
            integral[..., box_h:, box_w:]
            - integral[..., :-box_h, box_w:]
            - integral[..., box_h:, :-box_w]
            + integral[..., :-box_h, :-box_w]
        )
        means = (sums / (box_h * box_w)).to(x.dtype)
        pad_h, pad_w = height - means.shape[-2], width - means.shape[-1]
        return F.pad(means, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2), mode="replicate")


class SimpleGate(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        first, second = x.chunk(2, dim=1)
        return first * second


class NAFBlock(nn.Module):
    """Norm, pointwise and depthwise convolutions, simple gate, simplified channel attention; then a gated FFN.

    `tlc_window` replaces the channel attention's global pooling by TLC's local mean over that window.
    """

    def __init__(self, channels: int, tlc_window: int | None = None, expand: int = 2):
        super().__init__()
        hidden = channels * expand
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.conv3 = nn.Conv2d(hidden // 2, channels, 1)
        pool = nn.AdaptiveAvgPool2d(1) if tlc_window is None else LocalMeanPool(tlc_window)
        self.sca = nn.Sequential(pool, nn.Conv2d(hidden // 2, hidden // 2, 1))
        self.sg = SimpleGate()
        self.conv4 = nn.Conv2d(channels, hidden, 1)
        self.conv5 = nn.Conv2d(hidden // 2, channels, 1)
        self.norm1 = LayerNorm2d(channels)
        self.norm2 = LayerNorm2d(channels)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, inputs: Tensor) -> Tensor:
        x = self.sg(self.conv2(self.conv1(self.norm1(inputs))))
        x = self.conv3(x * self.sca(x))
        y = inputs + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class NAFNet(nn.Module):
    """The U-Net: `enc_blk_nums[i]` blocks then a 2x downsampling per level, middle blocks, mirrored decoder.

    Any input size is accepted: the image is zero-padded to a multiple of 2**levels and the result cropped back,
    as in the reference. `forward` returns the restored image.
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 32,
        middle_blk_num: int = 12,
        enc_blk_nums: Sequence[int] = (2, 2, 4, 8),
        dec_blk_nums: Sequence[int] = (2, 2, 2, 2),
        tlc_train_size: int | None = None,
    ):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError(
                f"NAFNet needs as many decoder as encoder levels, got {list(enc_blk_nums)} and {list(dec_blk_nums)}"
            )
        levels = len(enc_blk_nums)
        self.padder_size = 2**levels
        _check_tlc_train_size(tlc_train_size, self.padder_size)

        def blocks(count: int, channels: int, level: int) -> nn.Sequential:
            window = _tlc_window(tlc_train_size, level)
            return nn.Sequential(*[NAFBlock(channels, window) for _ in range(count)])

        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders = nn.ModuleList(blocks(count, width << level, level) for level, count in enumerate(enc_blk_nums))
        self.decoders = nn.ModuleList(
            blocks(count, width << level, level) for level, count in zip(range(levels - 1, -1, -1), dec_blk_nums)
        )
        self.middle_blks = blocks(middle_blk_num, width << levels, levels)
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width << level, width << level << 1, 1, bias=False), nn.PixelShuffle(2))
            for level in range(levels, 0, -1)
        )
        self.downs = nn.ModuleList(
            nn.Conv2d(width << level, width << level << 1, 2, stride=2) for level in range(levels)
        )

    def forward(self, image: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        padded = F.pad(image, (0, -width % self.padder_size, 0, -height % self.padder_size))
        x = self.intro(padded)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)
        x = self.ending(x) + padded
        return x[..., :height, :width]


def _check_tlc_train_size(train_size: object, least: int) -> None:
    """A ValueError unless TLC is off (None) or its training side is a whole number that every level's features
    keep at least one pixel of (`least`, 2 ** levels): smaller, a level's window is empty and every image fails."""
    if train_size is None:
        return
    if isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < least:
        raise ValueError(
            f"tlc_train_size must be null (no TLC) or the training crops' side, a whole number of at least {least} "
            f"for {least.bit_length() - 1} levels, found {train_size!r}"
        )


def _tlc_window(train_size: int | None, level: int) -> int | None:
    """TLC's pooling window at a level: 1.5x the side that level's features had on the training crops."""
    if train_size is None:
        return None
    return (train_size >> level) * int(train_size * TLC_WINDOW_RATIO) // train_size


def _count_blocks(prefix: str, keys: set[str]) -> dict[int, int]:
    """Number of NAFBlocks per index under `prefix`: 'encoders' -> {level: blocks}."""
    counts: dict[int, set[str]] = {}
    for key in keys:
        parts = key.split(".")
        if parts[0] == prefix and len(parts) > 3 and parts[3] == "conv1":
            counts.setdefault(int(parts[1]), set()).add(parts[2])
    return {level: len(names) for level, names in counts.items()}


#: Encoder/decoder/middle layout of the released deblurring models (GoPro, REDS), all evaluated with TLC.
_DEBLUR_LAYOUT = dict(middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1])
_DENOISE_LAYOUT = dict(middle_blk_num=12, enc_blk_nums=[2, 2, 4, 8], dec_blk_nums=[2, 2, 2, 2])

PRESETS: dict[str, dict] = {
    "sidd-w32": dict(width=32, **_DENOISE_LAYOUT),
    "sidd-w64": dict(width=64, **_DENOISE_LAYOUT),
    "gopro-w32": dict(width=32, **_DEBLUR_LAYOUT, tlc_train_size=RELEASE_TRAIN_SIZE),
    "gopro-w64": dict(width=64, **_DEBLUR_LAYOUT, tlc_train_size=RELEASE_TRAIN_SIZE),
}


def detect_config(state_dict: dict[str, Tensor]) -> dict | None:
    """NAFNet hyper-parameters read off a state dict, or None if it is not a NAFNet.

    TLC leaves no trace in the weights; it is switched on for the deblurring layout of the releases,
    whose published results were all computed with it.
    """
    if not all(key in state_dict for key in ("intro.weight", "ending.weight", "downs.0.weight")):
        return None
    keys = set(state_dict)
    levels = sum(1 for key in keys if key.startswith("downs.") and key.endswith(".weight"))
    encoders, decoders = _count_blocks("encoders", keys), _count_blocks("decoders", keys)
    middle = {key.split(".")[1] for key in keys if key.startswith("middle_blks.") and key.endswith(".conv1.weight")}
    intro = state_dict["intro.weight"]
    config = dict(
        img_channel=intro.shape[1],
        width=intro.shape[0],
        middle_blk_num=len(middle),
        enc_blk_nums=[encoders.get(level, 0) for level in range(levels)],
        dec_blk_nums=[decoders.get(level, 0) for level in range(levels)],
    )
    layout = {key: config[key] for key in _DEBLUR_LAYOUT}
    config["tlc_train_size"] = RELEASE_TRAIN_SIZE if layout == _DEBLUR_LAYOUT else None
    return config


register(
    Architecture(
        name="nafnet",
        display_name="NAFNet",
        build=NAFNet,
        detect=detect_config,
        restore=lambda model, image: model(image),
        loss=lambda task: psnr_loss,  # minus the PSNR, as the authors train every task
        presets=PRESETS,
        release_tasks=("denoise",),
        size_multiple=1,  # pads itself to a multiple of 2**levels, as the reference does
        image_channels=lambda hparams: hparams.get("img_channel", 3),
        description="NAFNet (Chen et al., ECCV 2022), nonlinear-activation-free U-Net; TLC for the GoPro presets",
    )
)
