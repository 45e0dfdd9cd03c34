"""Regression vectors that need no stored weights: tiny networks whose every tensor is made from a formula (a sine
of the element index), run on images made the same way. `tests/data/formula_vectors.pt` holds only their
configurations, input shapes, labels and outputs (a few hundred kB where the seeded-random reference files took
11 MB). They were computed by this implementation in the commit where it matched the reference implementations'
files to 1e-5; those independent checks still run wherever `../shared/golden` is present.

    python tests/formula.py    # writes tests/data/formula_vectors.pt (only after the reference checks pass)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

import mprnet

DATA = Path(__file__).parent / "data"
VECTORS = DATA / "formula_vectors.pt"
#: name -> (architecture, configuration, input shapes, density labels or None): the tiny networks of the vectors.
CASES = {
    "mprnet": ("mprnet", json.loads((DATA / "tiny_config.json").read_text()), [(1, 3, 64, 64), (1, 3, 32, 48)], None),
    "mimo-unet": ("mimo-unet", {"num_res": 1}, [(1, 3, 64, 64), (1, 3, 32, 48)], None),
    "did-mdn": ("did-mdn", {}, [(1, 3, 64, 64), (1, 3, 32, 32)], [0, 2]),
}


#: The variance of kernel entries times their fan-in, and the spread of vectors about their initial value: chosen
#: so that outputs stay near the input's range (at a gain of 1 MPRNet's first stage ends near 60 on a [0, 1]
#: image) and that a tenth more in almost any tensor moves an output by more than the tests' 1e-5 (fewer tensors
#: are that inert than with the reference files' seeded random weights: 12 of 76 sampled in MPRNet against 19,
#: none of 76 in MIMO-UNet against 1, 15 of 71 in DID-MDN against 18).
GAIN, SPREAD = 0.5, 0.3
#: The constants layers start vectors at (zero biases and shifts, PReLU slopes, norm scales), kept as the formula's
#: centre; randomly initialised vectors are centred on 0.
INITIAL_VALUES = (0.0, 0.25, 1.0)


def _wave(count: int, phase: float) -> torch.Tensor:
    """Values spread evenly over [-1, 1] without pattern, from a sine of the element index (the fractional part of
    a large multiple of it): a kernel's entries must not cancel, as those of a slow sine would on smooth images."""
    index = torch.arange(count, dtype=torch.float64)
    return torch.frac(torch.sin(index * 12.9898 + phase * 78.233).abs() * 43758.5453) * 2 - 1


def formula_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict with every floating tensor made from a formula (`_wave`): matrices and kernels of
    variance GAIN / fan-in, vectors their initial value where it is a constant (norm scales, zero biases, PReLU
    slopes) plus SPREAD times the wave, running variances 1 to 1.5."""
    formula = {}
    for position, (key, value) in enumerate(model.state_dict().items()):
        if not value.is_floating_point():
            formula[key] = value.clone()
            continue
        wave = _wave(value.numel(), position).reshape(value.shape)
        if key.endswith("running_var"):
            made = 1 + 0.5 * wave**2
        elif value.dim() >= 2:
            made = wave * math.sqrt(3 * GAIN / value[0].numel())
        else:
            start = float(value.flatten()[0])
            constant = start in INITIAL_VALUES and bool((value == start).all())
            made = (start if constant else 0.0) + SPREAD * wave
        formula[key] = made.to(value.dtype)
    return formula


def formula_image(shape: tuple[int, ...], phase: float = 0.0) -> torch.Tensor:
    """An image in [0.1, 0.9] with structure at several scales, from a formula."""
    count = math.prod(shape)
    index = torch.arange(count, dtype=torch.float64)
    wave = torch.sin(index * 0.0131 + phase) * torch.cos(index * 0.000731 + 2 * phase) + 0.3 * _wave(count, phase)
    return (0.5 + 0.4 * wave / 1.3).reshape(shape).float()


def formula_network(name: str) -> torch.nn.Module:
    architecture, config, _shapes, _labels = CASES[name]
    model = mprnet.create_model(architecture, **config).eval()
    model.load_state_dict(formula_state_dict(model))
    return model


def formula_weights(name: str) -> dict[str, torch.Tensor]:
    """The formula network's state dict as a checkpoint file holds it: a tensor that layers share (MPRNet's one
    PReLU) repeated, in its own storage, under each of its names."""
    return {key: value.clone() for key, value in formula_network(name).state_dict().items()}


def formula_cases(name: str) -> list[tuple[torch.Tensor, int | None]]:
    """The (image, label) inputs of a network's vectors."""
    _architecture, _config, shapes, labels = CASES[name]
    return [
        (formula_image(shape, index), None if labels is None else labels[index]) for index, shape in enumerate(shapes)
    ]


def outputs_of(model: torch.nn.Module, image: torch.Tensor, label: int | None) -> list[torch.Tensor]:
    with torch.no_grad():
        outputs = model(image) if label is None else model(image, label)
    return [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)


def stored_outputs(name: str) -> list[list[torch.Tensor]]:
    return torch.load(VECTORS, weights_only=True)[name]


def main() -> None:
    vectors = {
        name: [outputs_of(formula_network(name), image, label) for image, label in formula_cases(name)]
        for name in CASES
    }
    torch.save(vectors, VECTORS)
    print(f"wrote {VECTORS} ({VECTORS.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
