"""mprnet: MPRNet blind image restoration (deblurring, denoising, deraining), training, evaluation and study."""
__version__ = "0.1.0"

from .checkpoint import bundled_models, load_model, save_weights  # noqa: E402
from .errors import CheckpointError, ImageError, MprnetError  # noqa: E402
from .api import restore  # noqa: E402
from .models.registry import create_model  # noqa: E402

__all__ = ["__version__", "bundled_models", "load_model", "save_weights", "create_model", "restore",
           "CheckpointError", "ImageError", "MprnetError"]
