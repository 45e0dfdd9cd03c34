"""Training: the published recipes, resumable, mixed precision, distributed through torchrun."""

from .config import TrainConfig, load_config
from .loop import Trainer, learning_rate, train

__all__ = ["TrainConfig", "load_config", "Trainer", "learning_rate", "train"]
