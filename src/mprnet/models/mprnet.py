"""MPRNet (Zamir et al., CVPR 2021): Multi-Stage Progressive Image Restoration.

Module and parameter names follow the published network, so the official checkpoints
(`model_deblurring.pth`, `model_denoising.pth`, `model_deraining.pth`) load unchanged.

Stage 1 works on four quadrants, stage 2 on two halves, stage 3 on the whole image. The published
forward calls each sub-network once per patch; here the patches of a stage go through as one batch,
which computes exactly the same thing (every operation, channel attention included, is per sample)
in fewer, larger calls. `batch_patches=False` restores the one-call-per-patch order.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from ..losses import charbonnier, edge_loss
from .registry import Architecture, LossFn, register

#: Height and width of an input must be multiples of this (quadrants, then two 2x downsamplings).
SIZE_MULTIPLE = 8


def conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


class CALayer(nn.Module):
    """Channel attention: squeeze to one value per channel, excite through a bottleneck."""

    def __init__(self, channels: int, reduction: int, bias: bool):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1, bias=bias),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1, bias=bias),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.conv_du(self.avg_pool(x))


class CAB(nn.Module):
    """Channel attention block: conv, activation, conv, channel attention, residual."""

    def __init__(self, channels: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module):
        super().__init__()
        self.CA = CALayer(channels, reduction, bias)
        self.body = nn.Sequential(
            conv(channels, channels, kernel_size, bias), act, conv(channels, channels, kernel_size, bias)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.CA(self.body(x)) + x


def cab_stack(count: int, channels: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(*[CAB(channels, kernel_size, reduction, bias, act) for _ in range(count)])


class SAM(nn.Module):
    """Supervised attention module: predicts the stage's image and gates the features passed on."""

    def __init__(self, channels: int, kernel_size: int, bias: bool, image_channels: int = 3):
        super().__init__()
        self.conv1 = conv(channels, channels, kernel_size, bias)
        self.conv2 = conv(channels, image_channels, kernel_size, bias)
        self.conv3 = conv(image_channels, channels, kernel_size, bias)

    def forward(self, features: Tensor, degraded: Tensor) -> tuple[Tensor, Tensor]:
        image = self.conv2(features) + degraded
        gate = torch.sigmoid(self.conv3(image))
        return self.conv1(features) * gate + features, image


class DownSample(nn.Module):
    def __init__(self, channels: int, extra: int):
        super().__init__()
        self.down = nn.Sequential(
            nn.Upsample(scale_factor=0.5, mode="bilinear", align_corners=False),
            nn.Conv2d(channels, channels + extra, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.down(x)


class UpSample(nn.Module):
    def __init__(self, channels: int, extra: int):
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(channels + extra, channels, 1, bias=False),
        )

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        x = self.up(x)
        return x if skip is None else x + skip


class Encoder(nn.Module):
    """Three-level U-Net encoder; with `cross_stage` it fuses the previous stage's features (CSFF)."""

    def __init__(
        self,
        n_feat: int,
        kernel_size: int,
        reduction: int,
        act: nn.Module,
        bias: bool,
        scale_unetfeats: int,
        cross_stage: bool,
    ):
        super().__init__()
        widths = [n_feat + level * scale_unetfeats for level in range(3)]
        self.encoder_level1 = cab_stack(2, widths[0], kernel_size, reduction, bias, act)
        self.encoder_level2 = cab_stack(2, widths[1], kernel_size, reduction, bias, act)
        self.encoder_level3 = cab_stack(2, widths[2], kernel_size, reduction, bias, act)
        self.down12 = DownSample(widths[0], scale_unetfeats)
        self.down23 = DownSample(widths[1], scale_unetfeats)
        self.cross_stage = cross_stage
        if cross_stage:
            for kind in ("enc", "dec"):
                for level, width in enumerate(widths, start=1):
                    setattr(self, f"csff_{kind}{level}", nn.Conv2d(width, width, 1, bias=bias))

    def _fuse(self, level: int, x: Tensor, previous: tuple[list[Tensor], list[Tensor]] | None) -> Tensor:
        if previous is None:
            return x
        encoder_outs, decoder_outs = previous
        csff_enc = getattr(self, f"csff_enc{level}")
        csff_dec = getattr(self, f"csff_dec{level}")
        return x + csff_enc(encoder_outs[level - 1]) + csff_dec(decoder_outs[level - 1])

    def forward(self, x: Tensor, previous: tuple[list[Tensor], list[Tensor]] | None = None) -> list[Tensor]:
        enc1 = self._fuse(1, self.encoder_level1(x), previous)
        enc2 = self._fuse(2, self.encoder_level2(self.down12(enc1)), previous)
        enc3 = self._fuse(3, self.encoder_level3(self.down23(enc2)), previous)
        return [enc1, enc2, enc3]


class Decoder(nn.Module):
    def __init__(self, n_feat: int, kernel_size: int, reduction: int, act: nn.Module, bias: bool, scale_unetfeats: int):
        super().__init__()
        widths = [n_feat + level * scale_unetfeats for level in range(3)]
        self.decoder_level1 = cab_stack(2, widths[0], kernel_size, reduction, bias, act)
        self.decoder_level2 = cab_stack(2, widths[1], kernel_size, reduction, bias, act)
        self.decoder_level3 = cab_stack(2, widths[2], kernel_size, reduction, bias, act)
        self.skip_attn1 = CAB(widths[0], kernel_size, reduction, bias, act)
        self.skip_attn2 = CAB(widths[1], kernel_size, reduction, bias, act)
        self.up21 = UpSample(widths[0], scale_unetfeats)
        self.up32 = UpSample(widths[1], scale_unetfeats)

    def forward(self, encoded: list[Tensor]) -> list[Tensor]:
        enc1, enc2, enc3 = encoded
        dec3 = self.decoder_level3(enc3)
        dec2 = self.decoder_level2(self.up32(dec3, self.skip_attn2(enc2)))
        dec1 = self.decoder_level1(self.up21(dec2, self.skip_attn1(enc1)))
        return [dec1, dec2, dec3]


class ORB(nn.Module):
    """Original-resolution block: CABs and a conv, with a residual connection."""

    def __init__(self, channels: int, kernel_size: int, reduction: int, act: nn.Module, bias: bool, num_cab: int):
        super().__init__()
        blocks = [CAB(channels, kernel_size, reduction, bias, act) for _ in range(num_cab)]
        self.body = nn.Sequential(*blocks, conv(channels, channels, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + x


class ORSNet(nn.Module):
    """Stage 3: a full-resolution subnetwork fed with stage 2's multi-scale features."""

    # Registered with setattr in __init__; declared here for the type checker.
    conv_enc1: nn.Conv2d
    conv_enc2: nn.Conv2d
    conv_enc3: nn.Conv2d
    conv_dec1: nn.Conv2d
    conv_dec2: nn.Conv2d
    conv_dec3: nn.Conv2d

    def __init__(
        self,
        n_feat: int,
        scale_orsnetfeats: int,
        kernel_size: int,
        reduction: int,
        act: nn.Module,
        bias: bool,
        scale_unetfeats: int,
        num_cab: int,
    ):
        super().__init__()
        width = n_feat + scale_orsnetfeats
        self.orb1 = ORB(width, kernel_size, reduction, act, bias, num_cab)
        self.orb2 = ORB(width, kernel_size, reduction, act, bias, num_cab)
        self.orb3 = ORB(width, kernel_size, reduction, act, bias, num_cab)
        self.up_enc1 = UpSample(n_feat, scale_unetfeats)
        self.up_dec1 = UpSample(n_feat, scale_unetfeats)
        self.up_enc2 = nn.Sequential(
            UpSample(n_feat + scale_unetfeats, scale_unetfeats), UpSample(n_feat, scale_unetfeats)
        )
        self.up_dec2 = nn.Sequential(
            UpSample(n_feat + scale_unetfeats, scale_unetfeats), UpSample(n_feat, scale_unetfeats)
        )
        for name in ("conv_enc1", "conv_enc2", "conv_enc3", "conv_dec1", "conv_dec2", "conv_dec3"):
            setattr(self, name, nn.Conv2d(n_feat, width, 1, bias=bias))

    def forward(self, x: Tensor, encoded: list[Tensor], decoded: list[Tensor]) -> Tensor:
        x = self.orb1(x) + self.conv_enc1(encoded[0]) + self.conv_dec1(decoded[0])
        x = self.orb2(x) + self.conv_enc2(self.up_enc1(encoded[1])) + self.conv_dec2(self.up_dec1(decoded[1]))
        x = self.orb3(x) + self.conv_enc3(self.up_enc2(encoded[2])) + self.conv_dec3(self.up_dec2(decoded[2]))
        return x


def _split_halves(x: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    middle = x.shape[dim] // 2
    return x.narrow(dim, 0, middle), x.narrow(dim, middle, x.shape[dim] - middle)


def _cat_features(first: list[Tensor], second: list[Tensor], dim: int) -> list[Tensor]:
    return [torch.cat(pair, dim) for pair in zip(first, second)]


class MPRNet(nn.Module):
    """The three-stage network; `forward` returns `[stage3, stage2, stage1]` images, stage3 being the result."""

    def __init__(
        self,
        in_c: int = 3,
        out_c: int = 3,
        n_feat: int = 96,
        scale_unetfeats: int = 48,
        scale_orsnetfeats: int = 32,
        num_cab: int = 8,
        kernel_size: int = 3,
        reduction: int = 4,
        bias: bool = False,
        batch_patches: bool = True,
    ):
        super().__init__()
        self.batch_patches = batch_patches
        act = nn.PReLU()  # one activation shared by every block, as in the published network
        self.shallow_feat1 = nn.Sequential(
            conv(in_c, n_feat, kernel_size, bias), CAB(n_feat, kernel_size, reduction, bias, act)
        )
        self.shallow_feat2 = nn.Sequential(
            conv(in_c, n_feat, kernel_size, bias), CAB(n_feat, kernel_size, reduction, bias, act)
        )
        self.shallow_feat3 = nn.Sequential(
            conv(in_c, n_feat, kernel_size, bias), CAB(n_feat, kernel_size, reduction, bias, act)
        )
        self.stage1_encoder = Encoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats, cross_stage=False)
        self.stage1_decoder = Decoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats)
        self.stage2_encoder = Encoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats, cross_stage=True)
        self.stage2_decoder = Decoder(n_feat, kernel_size, reduction, act, bias, scale_unetfeats)
        self.stage3_orsnet = ORSNet(
            n_feat, scale_orsnetfeats, kernel_size, reduction, act, bias, scale_unetfeats, num_cab
        )
        self.sam12 = SAM(n_feat, 1, bias, image_channels=out_c)
        self.sam23 = SAM(n_feat, 1, bias, image_channels=out_c)
        self.concat12 = conv(n_feat * 2, n_feat, kernel_size, bias)
        self.concat23 = conv(n_feat * 2, n_feat + scale_orsnetfeats, kernel_size, bias)
        self.tail = conv(n_feat + scale_orsnetfeats, out_c, kernel_size, bias)

    def _per_patch(self, fn, patches: list, *shared_args):
        """Apply `fn` to each patch: as one batch (fast path) or one call each (published order)."""
        if not self.batch_patches:
            return [fn(*args) for args in zip(patches, *shared_args)]
        count = len(patches)
        batched_args = [_stack(arg) for arg in (patches, *shared_args)]
        return _unstack(fn(*batched_args), count)

    def forward(self, image: Tensor) -> list[Tensor]:
        height, width = image.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(
                f"MPRNet needs height and width that are multiples of {SIZE_MULTIPLE}, got {height}x{width}; "
                "pad the image first (mprnet.infer does it for you)"
            )
        top, bottom = _split_halves(image, 2)
        quadrants = [*_split_halves(top, 3), *_split_halves(bottom, 3)]

        # Stage 1: encode each quadrant, join left and right, decode each half.
        encoded = self._per_patch(lambda q: self.stage1_encoder(self.shallow_feat1(q)), quadrants)
        encoded1 = [_cat_features(encoded[0], encoded[1], 3), _cat_features(encoded[2], encoded[3], 3)]
        decoded1 = self._per_patch(self.stage1_decoder, encoded1)
        sam1 = self._per_patch(self.sam12, [d[0] for d in decoded1], [top, bottom])
        stage1_image = torch.cat([sam1[0][1], sam1[1][1]], 2)

        # Stage 2: each half, fused with stage 1's features, then the halves joined and decoded.
        def encode_half(half: Tensor, sam_features: Tensor, enc: list[Tensor], dec: list[Tensor]) -> list[Tensor]:
            fused = self.concat12(torch.cat([self.shallow_feat2(half), sam_features], 1))
            return self.stage2_encoder(fused, (enc, dec))

        encoded2 = self._per_patch(encode_half, [top, bottom], [s[0] for s in sam1], encoded1, decoded1)
        encoded2 = _cat_features(encoded2[0], encoded2[1], 2)
        decoded2 = self.stage2_decoder(encoded2)
        sam_features, stage2_image = self.sam23(decoded2[0], image)

        # Stage 3: full resolution.
        features = self.concat23(torch.cat([self.shallow_feat3(image), sam_features], 1))
        features = self.stage3_orsnet(features, encoded2, decoded2)
        return [self.tail(features) + image, stage2_image, stage1_image]


def _stack(items: list):
    """Concatenate a list of tensors (or of equally structured lists/tuples of tensors) along the batch."""
    first = items[0]
    if isinstance(first, Tensor):
        return torch.cat(items, 0)
    return type(first)(_stack(list(group)) for group in zip(*items))


def _unstack(batched, count: int) -> list:
    """Inverse of `_stack`: split along the batch into `count` equally structured items."""
    if isinstance(batched, Tensor):
        return list(batched.chunk(count, 0))
    parts = [_unstack(item, count) for item in batched]
    return [type(batched)(part[i] for part in parts) for i in range(count)]


#: The published configurations (all with num_cab=8, kernel_size=3, reduction=4, bias=False).
PRESETS: dict[str, dict] = {
    "deblur": dict(n_feat=96, scale_unetfeats=48, scale_orsnetfeats=32),
    "denoise": dict(n_feat=80, scale_unetfeats=48, scale_orsnetfeats=32),
    "derain": dict(n_feat=40, scale_unetfeats=20, scale_orsnetfeats=16),
}


def detect_config(state_dict: dict[str, Tensor]) -> dict | None:
    """MPRNet hyper-parameters read off a state dict's shapes, or None if it is not an MPRNet."""
    required = ("shallow_feat1.0.weight", "stage1_encoder.down12.down.1.weight", "concat23.weight", "tail.weight")
    if not all(key in state_dict for key in required):
        return None
    first = state_dict["shallow_feat1.0.weight"]
    n_feat, in_c, kernel_size = first.shape[0], first.shape[1], first.shape[-1]
    num_cab = len(
        {key.split(".")[3] for key in state_dict if key.startswith("stage3_orsnet.orb1.body.") and ".CA." in key}
    )
    return dict(
        in_c=in_c,
        out_c=state_dict["tail.weight"].shape[0],
        n_feat=n_feat,
        scale_unetfeats=state_dict["stage1_encoder.down12.down.1.weight"].shape[0] - n_feat,
        scale_orsnetfeats=state_dict["concat23.weight"].shape[0] - n_feat,
        num_cab=num_cab,
        kernel_size=kernel_size,
        reduction=_detect_reduction(state_dict),
        bias="shallow_feat1.0.bias" in state_dict,
    )


def _detect_reduction(state_dict: dict[str, Tensor]) -> int:
    """The smallest reduction r with channels // r equal to every channel-attention bottleneck's width."""
    squeezes = [tensor.shape[:2] for key, tensor in state_dict.items() if key.endswith("CA.conv_du.0.weight")]
    largest = max(channels for _, channels in squeezes)
    for reduction in range(1, largest + 1):
        if all(channels // reduction == squeezed for squeezed, channels in squeezes):
            return reduction
    raise ValueError("inconsistent channel-attention widths: not an MPRNet state dict")


def training_loss(task: str) -> LossFn:
    """Charbonnier summed over the three stage outputs, plus 0.05 x edge loss except for denoising."""
    edge_weight = 0.0 if task == "denoise" else 0.05

    def loss(outputs: list[Tensor], target: Tensor) -> Tensor:
        # sum() of tensors is a tensor (there is at least one output), not its start value 0
        total = cast(Tensor, sum(charbonnier(output, target) for output in outputs))
        if edge_weight:
            total = total + edge_weight * cast(Tensor, sum(edge_loss(output, target) for output in outputs))
        return total

    return loss


#: The official releases differ by width: model_deblurring 96, model_denoising 80, model_deraining 40.
RELEASE_TASK_BY_WIDTH: dict[int | None, str] = {96: "deblur", 80: "denoise", 40: "derain"}  # None: no n_feat given

register(
    Architecture(
        name="mprnet",
        display_name="MPRNet",
        build=MPRNet,
        detect=detect_config,
        restore=lambda model, image: model(image)[0],
        loss=training_loss,
        presets=PRESETS,
        release_tasks=("denoise", "deblur", "derain"),
        task_of=lambda hparams: RELEASE_TASK_BY_WIDTH.get(hparams.get("n_feat")),
        size_multiple=SIZE_MULTIPLE,
        image_channels=lambda hparams: hparams.get("in_c", 3),
        run_options=("batch_patches",),
        description="MPRNet (Zamir et al., CVPR 2021), multi-stage progressive restoration",
    )
)
