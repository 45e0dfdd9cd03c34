"""A toy network in its own file, registered as a new architecture would be: nothing in the package names it, and
`test_new_network.py` trains, restores, evaluates and studies it with no other edit."""

import torch
from torch import Tensor, nn

from mprnet.losses import charbonnier
from mprnet.models.registry import Architecture, register


class ToyDenoiser(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.toy_head = nn.Conv2d(3, width, 3, padding=1)
        self.toy_tail = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, image: Tensor) -> Tensor:
        return image + self.toy_tail(torch.relu(self.toy_head(image)))


def detect_config(state_dict: dict[str, Tensor]) -> dict | None:
    if "toy_head.weight" not in state_dict:
        return None
    return {"width": state_dict["toy_head.weight"].shape[0]}


TOY = register(
    Architecture(
        name="toy",
        display_name="Toy",
        build=ToyDenoiser,
        detect=detect_config,
        restore=lambda model, image: model(image),
        loss=lambda task: charbonnier,
        presets={"wide": {"width": 8}},
        release_tasks=("denoise",),
        description="a two-layer residual denoiser for tests",
    )
)
