"""A small network that tells what is wrong with a patch of a photo: clean, noisy, blurred or rainy, and how much
noise it holds. It looks at full-resolution patches (blur and noise live at full resolution) and pools the
statistics of its features over the patch, so that it judges texture, not content.

Not a restoration network: it is not in the registry; `mprnet.diagnose` loads and runs it.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

#: What the classifier tells apart, in the order of its outputs: a clean photo, then the tasks that fix the rest.
CLASSES = ("clean", "denoise", "deblur", "derain")
#: The side of the patches it is trained on and looks at.
PATCH = 96
#: Its noise-level output is the noise's standard deviation (0-255 scale) divided by this.
SIGMA_SCALE = 50.0


class DegradationClassifier(nn.Module):
    """Five 3x3 convolutions (three of stride 2), then the mean and standard deviation of each feature over the
    patch, then two linear layers: len(CLASSES) logits and a noise level. `width` sets the width of every layer:
    the convolutions have 1, 1.5, 2, 3 and 3 times `width` channels, the hidden linear layer 2 times. About 190 k
    parameters at the bundled width of 32."""

    def __init__(self, width: int = 32):
        super().__init__()
        if width < 2 or width % 2:
            raise ValueError(f"width must be an even number of 2 or more, found {width}")
        self.width = width
        channels = [3, width, width * 3 // 2, 2 * width, 3 * width, 3 * width]
        strides = [1, 2, 2, 2, 1]
        layers: list[nn.Module] = []
        for (inputs, outputs), stride in zip(itertools.pairwise(channels), strides):
            layers += [nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        hidden = 2 * width
        self.head = nn.Sequential(
            nn.Linear(2 * channels[-1], hidden), nn.ReLU(inplace=True), nn.Linear(hidden, len(CLASSES) + 1)
        )

    def forward(self, patches: Tensor) -> tuple[Tensor, Tensor]:
        """N x 3 x H x W patches in [0, 1] -> (N x len(CLASSES) logits, N noise levels on the 0-255 scale)."""
        features = self.features(patches - 0.5)
        pooled = torch.cat([features.mean((2, 3)), features.std((2, 3))], dim=1)
        output = self.head(pooled)
        return output[:, : len(CLASSES)], output[:, len(CLASSES)] * SIGMA_SCALE
