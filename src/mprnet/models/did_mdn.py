"""DID-MDN (Zhang and Patel, CVPR 2018): density-aware multi-stream densely connected deraining.

Three densely connected streams (3x3, 5x5 and 7x7 kernels, different depths of down- and upsampling) read the
rainy image; their features, the image and a constant map of the rain-density label (0 heavy, 1 medium,
2 light) are fused and refined by multi-scale pooling into the rain residual, then the clean image.

Parameter names follow the published `Dense_rain`, so its released checkpoint loads unchanged. The release
keeps layers its forward never calls (five of each stream's six side convolutions, two streams' refinement
heads, every batch norm outside the dense blocks); they are kept for the names but frozen, so no optimiser or
DDP waits for their gradients. The network works on images in [-1, 1] (the release's normalisation).

This package's own density classifier has the layout of the release's `vgg19ca` (stored under "classifier."):
trained with the network, it reads the rain residual the network estimates under the heavy label, on a copy of
the image resized to `classifier_size`, so any image is restored at full size with one label (0 heavy, 1 medium,
2 light, the value of the label map).

The release itself (`test.py`) picks the label with two more networks of its own, which `release_estimator_size`
adds (stored under "release."): `Dense_rain_residual` (its file `residual_heavy/netG_epoch_6.pth`) estimates the
rain under the heavy label, and `vgg19ca` (`classification/netG_epoch_9.pth`) classifies the image less that
estimate, at 512x512; the generator then gets the winning class of the four plus one (its training labelled heavy
1, medium 2, light 3), and its output is stretched from its own minimum and maximum to [0, 1]. A generator file
from the release's folder layout (`pre_trained/netG_epoch_9.pth` beside `classification/` and `residual_heavy/`)
brings both along when it is loaded (`with_release_companions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, ImageError
from .registry import Architecture, LossFn, register

#: Height and width must be multiples of this (the deepest stream halves three times) and at least MIN_SIZE
#: (the widest pooling of the refinement averages 32x32 boxes).
SIZE_MULTIPLE = 8
MIN_SIZE = 32
DENSITY_LABELS = ("heavy", "medium", "light")
HEAVY = 0
LABEL_CHANNELS = 8
#: The release's classifier: one VGG-19 conv (+BN, ReLU), a 24-channel conv, 7x7 average pooling, two dense layers.
CLASSIFIER_POOL = 7
CLASSIFIER_CHANNELS = 24
CLASSIFIER_CLASSES = 4  # the release has four outputs; only the three densities are ever trained
#: Where the release's test.py finds its density estimator, from the folder holding the generator's folder.
RELEASE_COMPANIONS = {
    "release.residual.": "residual_heavy/netG_epoch_6.pth",
    "release.classifier.": "classification/netG_epoch_9.pth",
}


class BottleneckBlock(nn.Module):
    """Dense layer: BN-ReLU-1x1 conv to 4x growth, BN-ReLU-kxk conv to `growth` channels, appended to the input."""

    def __init__(self, in_channels: int, growth: int, kernel_size: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, growth * 4, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(growth * 4)
        self.conv2 = nn.Conv2d(growth * 4, growth, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([x, out], 1)


class TransitionBlock(nn.Module):
    """BN-ReLU-1x1 transposed conv, then 2x average pooling ('down'), nearest 2x upsampling ('up') or nothing."""

    def __init__(self, in_channels: int, out_channels: int, resample: str):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.ConvTranspose2d(in_channels, out_channels, 1, bias=False)
        self.resample = resample

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        if self.resample == "down":
            return F.avg_pool2d(out, 2)
        if self.resample == "up":
            return F.interpolate(out, scale_factor=2, mode="nearest")
        return out


@dataclass(frozen=True)
class StreamSpec:
    kernel_size: int
    growths: tuple[int, ...]
    transitions: tuple[int, ...]
    resampling: tuple[str, ...]
    #: The 5x5 and 7x7 streams of the release carry an (unused) refinement head of their own.
    unused_head: bool


STREAMS = (
    StreamSpec(3, (5, 8, 4, 4, 8, 8), (4, 12, 12, 12, 4, 4), ("down", "same", "same", "same", "same", "up"), False),
    StreamSpec(5, (13, 16, 16, 16, 8, 8), (8, 16, 16, 16, 8, 4), ("down", "down", "same", "same", "up", "up"), True),
    StreamSpec(7, (13, 16, 16, 16, 8, 8), (8, 16, 16, 16, 8, 4), ("down", "down", "down", "up", "up", "up"), True),
)
SIDE_MAPS = 5
STREAM_CHANNELS = STREAMS[0].transitions[-1] + SIDE_MAPS + 3


class DenseStream(nn.Module):
    """Six dense blocks with transitions (two skip concatenations), plus side maps of the first transition.

    Returns the last transition's features, five side maps and the input image, concatenated (12 channels).
    """

    # Registered with setattr in __init__; declared here for the type checker.
    dense_block1: BottleneckBlock
    dense_block2: BottleneckBlock
    dense_block3: BottleneckBlock
    dense_block4: BottleneckBlock
    dense_block5: BottleneckBlock
    dense_block6: BottleneckBlock
    trans_block1: TransitionBlock
    trans_block2: TransitionBlock
    trans_block3: TransitionBlock
    trans_block4: TransitionBlock
    trans_block5: TransitionBlock
    trans_block6: TransitionBlock
    conv11: nn.Conv2d

    def __init__(self, spec: StreamSpec):
        super().__init__()
        t = spec.transitions
        block_inputs = (3, t[0], t[1], t[2], t[3] + t[1], t[4] + t[0])
        for index, (width, growth, out, resample) in enumerate(
            zip(block_inputs, spec.growths, t, spec.resampling), start=1
        ):
            setattr(self, f"dense_block{index}", BottleneckBlock(width, growth, spec.kernel_size))
            setattr(self, f"trans_block{index}", TransitionBlock(width + growth, out, resample))
        if spec.unused_head:
            self.conv_refin = nn.Conv2d(t[0] + 3, 20, 3, padding=1)
        side_inputs = (t[0], t[1], t[2], block_inputs[4], block_inputs[5], 8)
        for index, width in enumerate(side_inputs, start=1):
            setattr(self, f"conv{index}1", nn.Conv2d(width, 1, 3, padding=1))
        unused = [self.conv21, self.conv31, self.conv41, self.conv51, self.conv61]
        if spec.unused_head:
            self.refine3 = nn.Conv2d(20 + 4, 3, 3, padding=1)
            self.batchnorm20 = nn.BatchNorm2d(20)
            self.batchnorm1 = nn.BatchNorm2d(1)
            unused += [self.conv_refin, self.refine3, self.batchnorm20, self.batchnorm1]
        for module in unused:
            module.requires_grad_(False)

    def forward(self, image: Tensor) -> Tensor:
        x1 = self.trans_block1(self.dense_block1(image))
        x2 = self.trans_block2(self.dense_block2(x1))
        x3 = self.trans_block3(self.dense_block3(x2))
        x4 = torch.cat([self.trans_block4(self.dense_block4(x3)), x2], 1)
        x5 = torch.cat([self.trans_block5(self.dense_block5(x4)), x1], 1)
        x6 = self.trans_block6(self.dense_block6(x5))
        # The release computes all five side maps with the same convolution (conv11), so they are equal.
        side = F.interpolate(F.leaky_relu(self.conv11(x1), 0.2), size=x6.shape[-2:], mode="nearest")
        return torch.cat([x6, *[side] * SIDE_MAPS, image], 1)


@dataclass(frozen=True)
class ResidualStreamSpec:
    """A stream of the release's `Dense_rain_residual`: 3x3 dense blocks, skips added (not concatenated)."""

    growths: tuple[int, ...]
    transitions: tuple[int, ...]
    resampling: tuple[str, ...]
    #: The 5x5 and 7x7 streams' namesakes there carry an (unused) refinement head.
    unused_head: bool


RESIDUAL_STREAMS = (
    ResidualStreamSpec((5, 8, 4, 4, 8, 8), (4, 12, 12, 12, 4, 2), ("same",) * 6, False),
    ResidualStreamSpec(
        (13, 16, 16, 16, 8, 8), (8, 16, 16, 16, 8, 2), ("down", "same", "same", "same", "same", "up"), True
    ),
    ResidualStreamSpec(
        (13, 16, 16, 16, 8, 8), (8, 16, 16, 16, 8, 2), ("down", "down", "same", "same", "up", "up"), True
    ),
)
#: `Dense_rain_residual` also keeps six dense blocks and transitions of its own that its forward never calls.
RESIDUAL_UNUSED_BLOCKS = ((3, 13, 8), (8, 16, 16), (16, 32, 16), (16, 16, 16), (16, 8, 8), (8, 8, 4))
RESIDUAL_LABEL_CHANNELS = 4


def _dense_layers(module: nn.Module, block_inputs, growths, transitions, resampling, kernel_size: int = 3) -> None:
    for index, (width, growth, out, resample) in enumerate(
        zip(block_inputs, growths, transitions, resampling), start=1
    ):
        setattr(module, f"dense_block{index}", BottleneckBlock(width, growth, kernel_size))
        setattr(module, f"trans_block{index}", TransitionBlock(width + growth, out, resample))


def _refinement_head(module: nn.Module, in_channels: int, features: int, pooled: int) -> None:
    """conv_refin, the four pooled 1x1 convolutions and refine3, as both of the release's networks name them."""
    module.conv_refin = nn.Conv2d(in_channels, features, 3, padding=1)
    for scale in range(1, 5):
        setattr(module, f"conv10{scale}0", nn.Conv2d(features, pooled, 1))
    module.refine3 = nn.Conv2d(features + 4 * pooled, 3, 3, padding=1)


def _refined_residual(module: nn.Module, fused: Tensor) -> Tensor:
    """The refinement both networks share: conv_refin, multi-scale pooling, refine3 and tanh."""
    features = F.leaky_relu(getattr(module, "conv_refin")(fused), 0.2)  # noqa: B009  (set by _refinement_head)
    pooled = []
    for scale in range(1, 5):  # averages over boxes of 32, 16, 8 and 4 pixels, upsampled back
        conv = getattr(module, f"conv10{scale}0")
        maps = F.leaky_relu(conv(F.avg_pool2d(features, 64 >> scale)), 0.2)
        pooled.append(F.interpolate(maps, size=features.shape[-2:], mode="nearest"))
    return torch.tanh(getattr(module, "refine3")(torch.cat([*pooled, features], 1)))  # noqa: B009


class ResidualStream(nn.Module):
    """One stream of `Dense_rain_residual` (`Dense_base_down0/1/2` of models/derain_residual.py): 2 channels."""

    def __init__(self, spec: ResidualStreamSpec):
        super().__init__()
        t = spec.transitions
        _dense_layers(self, (3, t[0], t[1], t[2], t[3], t[4]), spec.growths, t, spec.resampling)
        if spec.unused_head:
            _refinement_head(self, 11, 20, 1)
            self.batchnorm20 = nn.BatchNorm2d(20)
            self.batchnorm1 = nn.BatchNorm2d(1)

    def forward(self, image: Tensor) -> Tensor:
        x1 = self._stage(1, image)
        x2 = self._stage(2, x1)
        x4 = self._stage(4, self._stage(3, x2)) + x2
        x5 = self._stage(5, x4) + x1
        return self._stage(6, x5)

    def _stage(self, index: int, x: Tensor) -> Tensor:
        return getattr(self, f"trans_block{index}")(getattr(self, f"dense_block{index}")(x))


class DenseRainResidual(nn.Module):
    """The release's `Dense_rain_residual`: the rain residual (tanh) of an image in [-1, 1] under a label value."""

    def __init__(self):
        super().__init__()
        inputs, growths, outs = zip(*RESIDUAL_UNUSED_BLOCKS, strict=True)
        _dense_layers(self, inputs, growths, outs, ("same",) * 6)
        _refinement_head(self, 3 * 2 + 3 + RESIDUAL_LABEL_CHANNELS, 20, 1)
        self.batchnorm20 = nn.BatchNorm2d(20)
        self.batchnorm1 = nn.BatchNorm2d(1)
        self.dense0, self.dense1, self.dense2 = (ResidualStream(spec) for spec in RESIDUAL_STREAMS)

    def forward(self, image: Tensor, label: int | Tensor) -> Tensor:
        streams = [self.dense0(image), image, self.dense1(image), self.dense2(image)]
        fused = torch.cat([*streams, _label_map(label, image, RESIDUAL_LABEL_CHANNELS)], 1)
        return _refined_residual(self, fused)


class ReleaseDensityEstimator(nn.Module):
    """How the release's test.py picks the label: `vgg19ca` on the image less `Dense_rain_residual`'s estimate
    under the heavy label (value 0), at the classifier's input size; frozen (this package does not train it)."""

    def __init__(self, input_size: int = 512, hidden: int = 512):
        super().__init__()
        self.residual = DenseRainResidual()
        self.classifier = DensityClassifier(input_size, hidden)
        self.requires_grad_(False)

    def label_values(self, image: Tensor) -> Tensor:
        """The generator's label value (1 heavy, 2 medium, 3 light; 4 where the untrained fourth class wins) of
        each image in [-1, 1] already at the classifier's input size."""
        residue = image - self.residual(image, HEAVY)
        return self.classifier(residue).argmax(1) + 1  # test.py: softmax, max over the four classes, plus one


class DensityClassifier(nn.Module):
    """The release's residual-aware rain-density classifier (`vgg19ca`), for square inputs of `input_size`."""

    def __init__(self, input_size: int = 512, hidden: int = 512):
        super().__init__()
        self.input_size = input_size
        self.feature = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.conv16 = nn.Conv2d(64, CLASSIFIER_CHANNELS, 3, padding=1)
        cells = input_size // CLASSIFIER_POOL
        self.dense_classifier = nn.Linear(CLASSIFIER_CHANNELS * cells * cells, hidden)
        self.dense_classifier1 = nn.Linear(hidden, CLASSIFIER_CLASSES)

    def forward(self, residual: Tensor) -> Tensor:
        """Logits (N x 4) of a rain residual already resized to `input_size`."""
        features = F.relu(self.conv16(self.feature(residual)))
        pooled = F.avg_pool2d(features, CLASSIFIER_POOL).flatten(1)
        return self.dense_classifier1(F.relu(self.dense_classifier(pooled)))


class DIDMDN(nn.Module):
    """`forward(image, label)` on images in [-1, 1] returns `[residual, clean]`; clean = refine(image - residual).

    `label` is one density for the batch or one per image. With `classifier_size` the network carries the
    density classifier (`classify`); without it, `restore` uses `default_density`.
    """

    conv_refin: nn.Conv2d

    def __init__(
        self,
        classifier_size: int | None = None,
        classifier_hidden: int = 512,
        default_density: int = 1,
        release_estimator_size: int | None = None,
        release_estimator_hidden: int = 512,
    ):
        super().__init__()
        _check_label(default_density)
        self.default_density = default_density
        _refinement_head(self, 3 * STREAM_CHANNELS + 3 + LABEL_CHANNELS, 47, 2)
        self.refineclean1 = nn.Conv2d(3, 8, 7, padding=3)
        self.refineclean2 = nn.Conv2d(8, 3, 3, padding=1)
        self.batchnorm20 = nn.BatchNorm2d(20)
        self.batchnorm1 = nn.BatchNorm2d(1)
        for module in (self.batchnorm20, self.batchnorm1):
            module.requires_grad_(False)  # unused by the release's forward
        self.dense0, self.dense1, self.dense2 = (DenseStream(spec) for spec in STREAMS)
        self.classifier = DensityClassifier(classifier_size, classifier_hidden) if classifier_size else None
        self.release = (
            ReleaseDensityEstimator(release_estimator_size, release_estimator_hidden)
            if release_estimator_size
            else None
        )

    def forward(self, image: Tensor, label: int | Tensor, with_density_logits: bool = False) -> list[Tensor]:
        """`[residual, clean]`, then the classifier's logits if asked for and the network carries the classifier."""
        streams = self._streams(image)
        outputs = self._head(image, streams, label)
        if with_density_logits and self.classifier is not None:
            # At the classifier's input size its resized copy is the image itself: reuse the dense streams.
            reusable = image.shape[-1] == image.shape[-2] == self.classifier.input_size
            outputs.append(self.density_logits(image, [s.detach() for s in streams] if reusable else None))
        return outputs

    def _streams(self, image: Tensor) -> list[Tensor]:
        """The three dense streams (the bulk of the network's work), which do not depend on the label."""
        height, width = image.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or min(height, width) < MIN_SIZE:
            raise ImageError(
                f"DID-MDN needs height and width that are multiples of {SIZE_MULTIPLE} and at least "
                f"{MIN_SIZE}, got {height}x{width}; pad the image first (mprnet.infer does it for you)"
            )
        return [self.dense0(image), self.dense1(image), self.dense2(image)]

    def _head(self, image: Tensor, streams: list[Tensor], label: int | Tensor) -> list[Tensor]:
        fused = torch.cat([streams[0], image, streams[1], streams[2], _label_map(label, image)], 1)
        residual = _refined_residual(self, fused)
        clean = torch.tanh(self.refineclean2(F.leaky_relu(self.refineclean1(image - residual), 0.2)))
        return [residual, clean]

    def classify(self, image: Tensor) -> Tensor:
        """Density labels (N,) of images in [-1, 1], from a copy resized to the classifier's input size."""
        if self.classifier is None:
            raise ValueError("this DID-MDN has no density classifier (build it with classifier_size)")
        return self.density_logits(image)[:, : len(DENSITY_LABELS)].argmax(1)

    def density_logits(self, image: Tensor, streams: list[Tensor] | None = None) -> Tensor:
        """The classifier's logits (N x 4) for images in [-1, 1] of any size, on any device (only the copy resized
        to the classifier's input goes to the model's); `streams`: the image's dense streams when it already has
        that size (what its training loss passes).

        No gradient flows into the residual it reads: the release trains the classifier on the residuals of a
        fixed deraining network, and the deraining loss alone shapes that network.
        """
        assert self.classifier is not None  # callers check that the network carries its classifier
        with torch.no_grad():
            if streams is None:
                size = self.classifier.input_size
                image = F.interpolate(
                    image, size=(size, size), mode="bilinear", align_corners=False, antialias=True
                ).to(self.conv_refin.weight.device)
                streams = self._streams(image)
            residual, _ = self._head(image, streams, HEAVY)
        return self.classifier(residual)


def _check_label(label: int) -> None:
    if label not in range(len(DENSITY_LABELS)):
        raise ValueError(f"rain density labels are 0 (heavy), 1 (medium) or 2 (light), got {label!r}")


def _label_map(label: int | Tensor, image: Tensor, channels: int = LABEL_CHANNELS) -> Tensor:
    """The label as constant channels the size of the image, per image of the batch."""
    batch, _, height, width = image.shape
    labels = torch.as_tensor(label, dtype=image.dtype, device=image.device).reshape(-1)
    if labels.numel() not in (1, batch):
        raise ValueError(f"expected one density label or one per image ({batch}), got {labels.numel()}")
    return labels.view(-1, 1, 1, 1).expand(batch, channels, height, width)


def choose_density(model: DIDMDN, image: Tensor) -> dict:
    """The density label of each whole image in [0, 1] (release estimator, classifier or default), chosen once
    before any tiling; with the release's estimator also the range its output is stretched from (`release_pass`).
    The image may stay on the CPU: only its copy at the classifier's input size goes to the model's device."""
    if model.release is not None:
        return release_pass(model, image)
    if model.classifier is None:
        return {"label": model.default_density}
    return {"label": model.classify(image.float() * 2 - 1)}


def release_pass(model: DIDMDN, image: Tensor) -> dict:
    """What the release's test.py does to an image resized to 512x512 (in [0, 1] here, [-1, 1] inside): the label
    value its estimator picks and the minimum and maximum of the generator's output under that label, which
    `restore` stretches to [0, 1] (test.py's `norm_range`). At the estimator's input size that is test.py itself;
    a larger image is restored at full size, every tile stretched by the same range."""
    assert model.release is not None
    size = model.release.classifier.input_size
    small = image.float().to(model.conv_refin.weight.device) * 2 - 1
    if tuple(small.shape[-2:]) != (size, size):
        small = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        label = model.release.label_values(small)
        _, clean = model(small, label)
    flat = clean.flatten(1)
    return {"label": label, "output_range": (flat.min(1).values, flat.max(1).values)}


def restore(
    model: DIDMDN,
    image: Tensor,
    label: int | Tensor | None = None,
    output_range: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Derain images in [0, 1] with `label` (by default the one `choose_density` picks); the clean image in [0, 1]:
    stretched from `output_range` where the release's estimator gave one, else mapped from the network's [-1, 1]."""
    if label is None:
        prepared = choose_density(model, image)
        label, output_range = prepared["label"], prepared.get("output_range")
    _, clean = model(image * 2 - 1, label)
    if output_range is None:
        return (clean + 1) / 2
    low, high = (bound.to(clean).view(-1, 1, 1, 1) for bound in output_range)
    return ((clean - low) / (high - low).clamp_min(1e-12)).clamp(0, 1)


def with_release_companions(path: Path, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """A DID-MDN generator from the release's folder layout (`ROOT/pre_trained/netG_epoch_9.pth`, any name) with
    the density estimator test.py loads beside it (`ROOT/residual_heavy/netG_epoch_6.pth` and
    `ROOT/classification/netG_epoch_9.pth`) added under "release."; any other state dict as it is. Both
    companions or neither: one alone is a CheckpointError, as is a companion that is not the release's network."""
    from ..checkpoint import read_weights  # the companions are plain state dicts of the release's networks

    if detect_config(state_dict) != {} or any(key.startswith("release.") for key in state_dict):
        return state_dict
    root = Path(path).resolve().parent.parent
    found = {prefix: root / name for prefix, name in RELEASE_COMPANIONS.items() if (root / name).is_file()}
    if not found:
        return state_dict
    if len(found) < len(RELEASE_COMPANIONS):
        missing = [str(root / name) for prefix, name in RELEASE_COMPANIONS.items() if prefix not in found]
        raise CheckpointError(
            f"{path}: the DID-MDN release's density estimator is incomplete: {', '.join(missing)} is missing "
            f"(test.py needs both residual_heavy/netG_epoch_6.pth and classification/netG_epoch_9.pth)"
        )
    merged = dict(state_dict)
    for prefix, companion in found.items():
        companion_state, _ = read_weights(companion)
        merged.update({prefix + key: value for key, value in companion_state.items()})
    return merged


PRESETS: dict[str, dict] = {
    "with-classifier": dict(classifier_size=512),
}


def detect_config(state_dict: dict[str, Tensor]) -> dict | None:
    """DID-MDN hyper-parameters read off a state dict (only the classifier varies), or None if it is not one."""
    required = ("conv_refin.weight", "conv1010.weight", "refineclean1.weight", "dense2.dense_block1.conv2.weight")
    if not all(key in state_dict for key in required):
        return None
    config = {}
    for prefix, (size_key, hidden_key) in {
        "classifier.": ("classifier_size", "classifier_hidden"),
        "release.classifier.": ("release_estimator_size", "release_estimator_hidden"),
    }.items():
        dense = state_dict.get(f"{prefix}dense_classifier.weight")
        if dense is not None:
            config.update({size_key: _classifier_size(dense), hidden_key: dense.shape[0]})
    return config


def _classifier_size(dense: Tensor) -> int:
    """The input side of a classifier from its first dense layer: any side from 7*cells to 7*cells+6 pools to the
    same grid; the multiple of 8 among them (512 for the release's 73x73 grid) is the one training used."""
    cells = round((dense.shape[1] / CLASSIFIER_CHANNELS) ** 0.5)
    return -(-CLASSIFIER_POOL * cells // 8) * 8


def training_loss(task: str) -> LossFn:
    """L1 between the clean estimate and the target in [-1, 1], plus cross-entropy of the density classifier's
    logits against the labels when the network carries the classifier.

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


def training_forward(network: DIDMDN, degraded: Tensor, labels: Tensor) -> list[Tensor]:
    """In training: conditioned on the true labels, on images in [-1, 1], with the classifier's logits."""
    return network(degraded * 2 - 1, labels, with_density_logits=True)


register(
    Architecture(
        name="did-mdn",
        display_name="DID-MDN",
        build=DIDMDN,
        detect=detect_config,
        restore=restore,
        loss=training_loss,
        training_forward=training_forward,
        needs_density_labels=True,
        prepare=choose_density,
        presets=PRESETS,
        release_tasks=("derain",),
        size_multiple=SIZE_MULTIPLE,
        description="DID-MDN (Zhang and Patel, CVPR 2018), density-aware multi-stream dense deraining",
    )
)
