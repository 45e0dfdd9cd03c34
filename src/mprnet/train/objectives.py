"""What a run learns. The trainer (`loop.py`) owns the steps, the schedule, the arithmetic, the processes, the
checkpoints and the log; an objective gives it the network, the training items, the loss and the validation scores.
Two objectives exist: restoring a task's degradations with a registered network, and telling the degradations
apart (`task: diagnose`, the degradation classifier that `--task auto` uses).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..checkpoint import check_fit
from ..data import PairedPatches, SyntheticPairs, open_paired
from ..degrade import Identity, RandomChoice
from ..errors import CheckpointError, MprnetError
from ..models.registry import create_model, describe, resolve_preset
from ..tasks import make_degradation
from .config import DIAGNOSE, TrainConfig
from .validation import validate, validation_pairs

#: The `init_weights` name of the bundled degradation classifier.
BUNDLED_CLASSIFIER = "classifier"


class Objective(ABC):
    #: The validation score that picks the best model (higher is better), e.g. "psnr".
    score: str

    def __init__(self, config: TrainConfig):
        self.config = config

    @abstractmethod
    def build_model(self) -> nn.Module:
        """The freshly initialised network, carrying `.architecture` and `.hparams` (what its export records)."""

    @abstractmethod
    def start_weights(self, path: str) -> tuple[dict[str, Tensor], dict[str, str]]:
        """The state dict and metadata of the trained weights named by `init_weights` (a file, or a bundled
        model's name)."""

    @abstractmethod
    def training_items(self, total_items: int) -> Dataset:
        """Items of (network input, *targets), index-seeded, so that a resumed run sees the same ones."""

    @abstractmethod
    def forward(self, network: nn.Module, inputs: Tensor, *targets: Tensor) -> Any:
        """The network's training outputs for one batch (run under autocast)."""

    @abstractmethod
    def loss(self, outputs: Any, *targets: Tensor) -> Tensor:
        """The loss of float32 outputs against the batch's targets."""

    @abstractmethod
    def validation_set(self) -> Any:
        """What `validate` scores on, made once (the same in every run of the config)."""

    @abstractmethod
    def validate(self, model: nn.Module, validation: Any, device: torch.device, precision: str) -> dict[str, float]:
        """Scores of the model on the validation set, `score` among them."""


class Restoration(Objective):
    """A registered network learns to restore the config's task, with its architecture's published loss."""

    score = "psnr"

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        self.settings = dict(config.model)
        self.model_name = self.settings.pop("name", "mprnet")
        try:
            self.architecture = resolve_preset(self.model_name)[0]
        except ValueError as error:
            raise MprnetError(f"model: {error}") from None
        self.loss_fn = self.architecture.training_loss(config.task)
        self.with_labels = self.architecture.needs_density_labels
        multiple = self.architecture.size_multiple
        if config.patch_size % multiple:
            raise MprnetError(
                f"patch_size must be a multiple of {multiple} for {self.architecture.title}, found {config.patch_size}"
            )

    def build_model(self) -> nn.Module:
        try:
            model = create_model(self.model_name, **self.settings)
        except (ValueError, TypeError) as error:
            raise MprnetError(f"model: {error}") from None
        empty = [name for name, parameter in model.named_parameters() if parameter.numel() == 0]
        if empty:
            raise MprnetError(
                f"model: {self.model_name} with {self.settings} has layers of no weights ({', '.join(empty[:3])}): "
                "a width or channel count is 0"
            )
        return model

    def start_weights(self, path: str) -> tuple[dict[str, Tensor], dict[str, str]]:
        from ..checkpoint import load_model

        if path == BUNDLED_CLASSIFIER and not Path(path).exists():
            raise CheckpointError(
                f"init_weights {path}: the bundled classifier is for task {DIAGNOSE}, not {self.config.task}; "
                f"it is neither a weights file nor a bundled model of a {self.config.task} network"
            )
        model = load_model(path)
        return model.state_dict(), describe(model).metadata

    def training_items(self, total_items: int) -> Dataset:
        return training_patches(self.config, total_items, self.with_labels)

    def forward(self, network: nn.Module, inputs: Tensor, *targets: Tensor) -> Any:
        _clean, *labels = targets
        return self.architecture.training_forward(network, inputs, *labels)

    def loss(self, outputs: Any, *targets: Tensor) -> Tensor:
        return self.loss_fn(outputs, *targets)

    def validation_set(self) -> Any:
        return validation_pairs(self.config)

    def validate(self, model: nn.Module, validation: Any, device: torch.device, precision: str) -> dict[str, float]:
        return validate(model, validation, self.config.task, device, precision)


class Diagnosis(Objective):
    """The degradation classifier learns each training photo as clean, noisy, blurred or rainy (every level of every
    task, `classifier.training_degradations`) and the noise level, from fresh examples made for every item."""

    score = "accuracy"

    def __init__(self, config: TrainConfig):
        super().__init__(config)
        from .classifier import CLASSIFIER_NAME

        settings = dict(config.model)
        name = settings.pop("name", CLASSIFIER_NAME)
        if name != CLASSIFIER_NAME:
            raise MprnetError(f"model: task {DIAGNOSE} trains the {CLASSIFIER_NAME}, found model {name!r}")
        self.settings = settings

    def build_model(self) -> nn.Module:
        from .classifier import new_classifier

        try:
            return new_classifier(**self.settings)
        except (TypeError, ValueError) as error:
            raise MprnetError(f"model: {error}") from None

    def start_weights(self, path: str) -> tuple[dict[str, Tensor], dict[str, str]]:
        from ..checkpoint import read_metadata
        from ..diagnose import WEIGHTS, load_classifier

        if path != BUNDLED_CLASSIFIER and not Path(path).is_file():
            raise CheckpointError(
                f"init_weights {path}: no such file (or `{BUNDLED_CLASSIFIER}`: the bundled classifier)"
            )
        file = WEIGHTS if path == BUNDLED_CLASSIFIER else Path(path)
        return load_classifier(file).state_dict(), read_metadata(file)

    def training_items(self, total_items: int) -> Dataset:
        from .classifier import DegradationExamples

        assert self.config.data.clean_dir is not None  # check_recipe makes a diagnose config name clean photos
        return DegradationExamples(
            self.config.data.clean_dir, total_items, self.config.seed, gray_share=self.config.data.gray_share
        )

    def forward(self, network: nn.Module, inputs: Tensor, *targets: Tensor) -> Any:
        return network(inputs)

    def loss(self, outputs: Any, *targets: Tensor) -> Tensor:
        from .classifier import classifier_loss

        return classifier_loss(outputs, *targets)

    def validation_set(self) -> Any:
        from .classifier import DegradationExamples

        val = self.config.val
        assert val.dir is not None  # validation runs only where val.dir is set
        return DegradationExamples(val.dir, val.count, val.seed, gray_share=self.config.data.gray_share).tensors()

    def validate(self, model: nn.Module, validation: Any, device: torch.device, precision: str) -> dict[str, float]:
        from .classifier import classifier_scores

        return classifier_scores(model, validation, device, precision)


def training_patches(config: TrainConfig, total_items: int, with_labels: bool = False) -> Dataset:
    """A restoration run's training pairs: synthetic ones from clean photos, or patches of a paired folder."""
    if with_labels and (config.data.paired_dir or config.task != "derain" or config.data.clean_share):
        raise MprnetError(
            "this network trains on rain-density labels, which only synthetic rain records: "
            f"set task: derain and data.clean_dir, without data.clean_share (found task {config.task!r}"
            f"{' and data.paired_dir' if config.data.paired_dir else ''}"
            f"{' and data.clean_share' if config.data.clean_share else ''})"
        )
    if config.data.paired_dir:
        return PairedPatches(
            open_paired(config.data.paired_dir), config.patch_size, seed=config.seed, length=total_items
        )
    degradation = make_degradation(config.task, config.data.level)
    if config.data.clean_share:
        share = config.data.clean_share
        degradation = RandomChoice([degradation, Identity(config.task)], [1 - share, share])
    assert config.data.clean_dir is not None  # a config has clean_dir or paired_dir (load_config checks)
    return SyntheticPairs(
        config.data.clean_dir,
        degradation,
        config.patch_size,
        length=total_items,
        seed=config.seed,
        with_labels=with_labels,
        gray_share=config.data.gray_share,
    )


def objective_for(config: TrainConfig) -> Objective:
    return Diagnosis(config) if config.task == DIAGNOSE else Restoration(config)


def load_start(objective: Objective, model: nn.Module, path: str) -> dict[str, str]:
    """`model` with the weights of `path` (`init_weights`), and their metadata; a CheckpointError where they are
    another network's."""
    state, metadata = objective.start_weights(path)
    check_fit(model, state, f"init_weights {path}")
    model.load_state_dict(state)
    return metadata
