"""The networks. Importing this package imports every network file, and each registers its `Architecture`
(as timm does); the order here is the order of listings, MPRNet first."""

# isort: off
from . import mprnet, nafnet, mimo_unet, srn, did_mdn  # noqa: F401  (importing registers, in this order)

# isort: on
from .registry import Architecture, architectures, create_model, get_architecture, list_models, register

__all__ = ["Architecture", "architectures", "create_model", "get_architecture", "list_models", "register"]
