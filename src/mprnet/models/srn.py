"""SRN-DeblurNet (Tao et al., CVPR 2018): a scale-recurrent encoder-decoder for motion deblurring, in PyTorch.

The same encoder-decoder runs at 1/4, 1/2 and full resolution; each scale sees the blurry image and the
previous scale's estimate upsampled (the coarsest sees the blurry image twice), and in the ConvLSTM variant a
convolutional LSTM at the bottleneck carries its state from scale to scale. Layer sizes are those of the
authors' TensorFlow model (5x5 convolutions, 32/64/128 channels, three residual blocks per encoder and
decoder stage, 4x4 transposed convolutions, a 3x3 ConvLSTM of 128 features with forget bias 1), and so are its
operations: ReLU after every convolution but each residual block's second and the last (slim's default),
TensorFlow's "SAME" padding (1 before and 2 after a stride-2 5x5 convolution) and TensorFlow 1's bilinear
resizing (`tf.image.resize_images`, no half-pixel offset: halving keeps every other pixel). Module names mirror
the TensorFlow scopes (enc1_1, enc1_2.conv1, ..., dec1_0), so the released TensorFlow checkpoints convert one to
one (`mprnet.tf_checkpoint`) and give the authors' results.

The released ConvLSTM model works on one channel: a colour image goes through it one channel at a time
(the channels are folded into the batch), as the authors' test script does. The colour model has no LSTM.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ImageError
from ..losses import resized_like
from .registry import Architecture, LossFn, register

LEVELS = 3
#: Height and width must be multiples of this: the coarsest scale (1/4) is halved twice by the encoder.
SIZE_MULTIPLE = 4 * 2 ** (LEVELS - 1)
FORGET_BIAS = 1.0


class SameConv2d(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME" pads it (more after than before where the total is odd), then,
    with `relu`, rectified (slim.conv2d's default activation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, relu: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        padding: list[int] = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
            total = max((-(-size // self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - size, 0)
            padding += [total // 2, total - total // 2]
        out = super().forward(F.pad(x, padding))
        return F.relu(out) if self.relu else out


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, relu: bool = False) -> SameConv2d:
    return SameConv2d(in_channels, out_channels, kernel_size, stride, relu)


class UpConv(nn.ConvTranspose2d):
    """slim.conv2d_transpose(4x4, stride 2, "SAME"), ReLU included: twice the size, the same alignment."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 4, stride=2, padding=1)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        return F.relu(super().forward(x, output_size))


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity shortcut (the authors' ResnetBlock)."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv1 = conv(channels, channels, kernel_size, relu=True)
        self.conv2 = conv(channels, channels, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x)) + x


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM: one convolution of [input, hidden] gives the input, candidate, forget and output gates."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels * 2, channels * 4, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        cell, hidden = state
        gate_in, candidate, forget, gate_out = self.conv(torch.cat([x, hidden], 1)).chunk(4, 1)
        cell = cell * torch.sigmoid(forget + FORGET_BIAS) + torch.sigmoid(gate_in) * torch.tanh(candidate)
        hidden = torch.tanh(cell) * torch.sigmoid(gate_out)
        return hidden, (cell, hidden)


class SRNDeblurNet(nn.Module):
    """`forward` returns the estimates of the three scales, `[quarter, half, full]`; the last is the result.

    `channels` is what the network itself reads (1 for the released ConvLSTM and gray models, 3 for colour);
    an input with a multiple of that many channels is processed channel group by channel group.
    """

    def __init__(self, channels: int = 1, lstm: bool = True, width: int = 32, kernel_size: int = 5, num_res: int = 3):
        super().__init__()
        self.channels = channels
        widths = (width, width * 2, width * 4)
        for stage, (in_width, out_width) in enumerate(zip((channels * 2, *widths[:2]), widths), start=1):
            stride = 1 if stage == 1 else 2
            setattr(self, f"enc{stage}_1", conv(in_width, out_width, kernel_size, stride=stride, relu=True))
            for block in range(2, num_res + 2):
                setattr(self, f"enc{stage}_{block}", ResBlock(out_width, kernel_size))
        self.lstm = ConvLSTMCell(widths[2]) if lstm else None
        for stage, out_width in zip((3, 2, 1), widths[::-1]):
            for block in range(num_res, 0, -1):
                setattr(self, f"dec{stage}_{block}", ResBlock(out_width, kernel_size))
            if stage > 1:
                setattr(self, f"dec{stage - 1}_{num_res + 1}", UpConv(out_width, widths[stage - 2]))
        self.dec1_0 = conv(width, channels, kernel_size)
        self.encoder_stages = [[f"enc{stage}_{block}" for block in range(1, num_res + 2)] for stage in (1, 2, 3)]
        self.decoder_stages = [[f"dec{stage}_{block}" for block in range(num_res, 0, -1)] for stage in (3, 2, 1)]
        self.upsamplers = [f"dec{stage}_{num_res + 1}" for stage in (2, 1)]

    def _run(self, names: list[str], x: Tensor) -> Tensor:
        for name in names:
            x = getattr(self, name)(x)
        return x

    def forward(self, image: Tensor) -> list[Tensor]:
        batch, channels, height, width = image.shape
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ImageError(
                f"SRN needs height and width that are multiples of {SIZE_MULTIPLE}, got "
                f"{height}x{width}; pad the image first (mprnet.infer does it for you)"
            )
        if channels % self.channels:
            raise ImageError(f"this SRN reads {self.channels}-channel images, got {channels} channels")
        folded = image.reshape(batch * channels // self.channels, self.channels, height, width)
        estimates = self._scales(folded)
        return [estimate.reshape(batch, channels, *estimate.shape[-2:]) for estimate in estimates]

    def _scales(self, blurry: Tensor) -> list[Tensor]:
        height, width = blurry.shape[-2:]
        estimate, state, estimates = blurry, None, []
        for level in range(LEVELS - 1, -1, -1):
            size = (height // 2**level, width // 2**level)  # exact: sizes are multiples of SIZE_MULTIPLE
            previous = resize_to(estimate.detach(), size)  # the authors stop gradients between scales
            estimate, state = self._encode_decode(torch.cat([resize_to(blurry, size), previous], 1), state)
            estimates.append(estimate)
        return estimates

    def _encode_decode(self, x: Tensor, state: tuple[Tensor, Tensor] | None):
        skip1 = self._run(self.encoder_stages[0], x)
        skip2 = self._run(self.encoder_stages[1], skip1)
        x = self._run(self.encoder_stages[2], skip2)
        if self.lstm is not None:
            x, state = self.lstm(x, self._lstm_state(state, x))
        x = self._run(self.decoder_stages[0], x)
        x = self._run(self.decoder_stages[1], getattr(self, self.upsamplers[0])(x) + skip2)
        x = self._run(self.decoder_stages[2], getattr(self, self.upsamplers[1])(x) + skip1)
        return self.dec1_0(x), state

    @staticmethod
    def _lstm_state(state: tuple[Tensor, Tensor] | None, features: Tensor) -> tuple[Tensor, Tensor]:
        """Zeros at the coarsest scale; the previous scale's state resized to these features afterwards."""
        if state is None:
            zeros = torch.zeros_like(features)
            return zeros, zeros
        cell, hidden = state
        return resize_to(cell, features.shape[-2:]), resize_to(hidden, features.shape[-2:])


def resize_to(x: Tensor, size: tuple[int, ...]) -> Tensor:
    """Bilinear resize to `size` (H, W) as TensorFlow 1's `tf.image.resize_images` does it: output pixel i reads
    input coordinate i * in / out (no half-pixel offset), the upper neighbour clamped at the edge. Width first,
    then height, as TensorFlow's kernel interpolates."""
    return _resize_axis(_resize_axis(x, size[1], -1), size[0], -2)


def _resize_axis(x: Tensor, size: int, dim: int) -> Tensor:
    length = x.shape[dim]
    if length == size:
        return x
    coordinates = torch.arange(size, device=x.device, dtype=torch.float32) * (length / size)
    lower = coordinates.floor().long().clamp(max=length - 1)
    upper = (lower + 1).clamp(max=length - 1)
    weight = (coordinates - lower).to(x.dtype)
    weight = weight.view(-1, 1) if dim == -2 else weight
    below, above = x.index_select(dim, lower), x.index_select(dim, upper)
    return below + (above - below) * weight


PRESETS: dict[str, dict] = {
    "lstm": dict(channels=1, lstm=True),
    "gray": dict(channels=1, lstm=False),
    "color": dict(channels=3, lstm=False),
}


def detect_config(state_dict: dict[str, Tensor]) -> dict | None:
    """SRN hyper-parameters read off a state dict, or None if it is not an SRN."""
    if not all(key in state_dict for key in ("enc1_1.weight", "enc1_2.conv1.weight", "dec1_0.weight")):
        return None
    first = state_dict["enc1_1.weight"]
    num_res = len({key.split(".")[0] for key in state_dict if key.startswith("enc1_") and ".conv1." in key})
    return dict(
        channels=state_dict["dec1_0.weight"].shape[0],
        lstm="lstm.conv.weight" in state_dict,
        width=first.shape[0],
        kernel_size=first.shape[-1],
        num_res=num_res,
    )


def training_loss(task: str) -> LossFn:
    """The mean squared error at each of the three scales, summed (the authors' multi-scale Euclidean loss)."""

    def loss(outputs: list[Tensor], target: Tensor) -> Tensor:
        # sum() of tensors is a tensor (there are three outputs), not its start value 0
        return cast(Tensor, sum(F.mse_loss(output, resized_like(target, output)) for output in outputs))

    return loss


register(
    Architecture(
        name="srn",
        display_name="SRN",
        build=SRNDeblurNet,
        detect=detect_config,
        restore=lambda model, image: model(image)[-1],
        loss=training_loss,
        presets=PRESETS,
        release_tasks=("deblur",),
        size_multiple=SIZE_MULTIPLE,
        description="SRN-DeblurNet (Tao et al., CVPR 2018), scale-recurrent network; its TF checkpoints load",
    )
)
