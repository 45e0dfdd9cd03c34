"""mprnet: MPRNet blind image restoration (deblurring, denoising, deraining), training, evaluation and study."""

__version__ = "0.1.0"

from .api import restore
from .checkpoint import bundled_models, load_model, save_weights
from .errors import CheckpointError, ImageError, MprnetError
from .models.registry import ModelInfo, create_model, describe

__all__ = [
    "__version__",
    "bundled_models",
    "load_model",
    "save_weights",
    "create_model",
    "describe",
    "ModelInfo",
    "restore",
    "CheckpointError",
    "ImageError",
    "MprnetError",
]
