"""`mprnet.restore`: one call for numpy arrays, Pillow images and torch tensors, each returned as it came.

Everything (this API, the CLI, the web server) restores through `restore_pixels`, with a restorer from
`mprnet.restorers`: float32 H x W x C in [0, 1] with 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels.
Gray is replicated to RGB, restored and brought back to gray as the mean of the channels; alpha is never touched.
Loaded networks are cached, so repeated calls are cheap.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from .errors import ImageError, MprnetError, RestoreError
from .infer import DEFAULT_PRECISION
from .io import pil_to_pixels, pixels_to_pil
from .restorers import Restorer, get_restorer

#: Float images above this are taken for 0-255 data passed as float by mistake (a little above 1 is just noise).
_FLOAT_CEILING = 1.5
_INTEGER_TOPS = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def restore(
    image: Any,
    task: str | None = None,
    model: str | os.PathLike | nn.Module | None = None,
    method: str | None = None,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
    tile: int | None = None,
    overlap: int = 32,
    backend: str = "torch",
    **known,
) -> Any:
    """Restore a numpy array (uint8, uint16 or float in [0, 1]; H x W or H x W x C), a Pillow image or a torch tensor
    (C x H x W or N x C x H x W), returning the same type, dtype and shape.

    `model` is a bundled model's name, a weights file or a network; without it, the bundled model for `task`.
    `method` picks a classic method instead of a network (or names the architecture the network must be);
    `known` passes `sigma` or `kernel` to non-blind methods. `backend` runs the network's pass: torch, onnxruntime,
    openvino, openvino-int8 or auto (`mprnet.backends`).
    """
    restorer = get_restorer(task, model, method, device, precision, tile, overlap, backend)
    _check_known(restorer, known)
    if isinstance(image, np.ndarray):
        return _restore_array(image, restorer, known)
    if isinstance(image, Image.Image):
        return _restore_pil(image, restorer, known)
    if isinstance(image, torch.Tensor):
        return _restore_tensor(image, restorer, known)
    raise ImageError(f"expected a numpy array, a PIL image or a torch tensor, found a {type(image).__name__}")


def _check_known(restorer: Restorer, known: dict) -> None:
    """MprnetError for a known value (sigma, kernel) the restorer would ignore: a network is blind."""
    given = [name for name in ("sigma", "kernel") if known.get(name) is not None]
    if given and restorer.kind == "network":
        raise MprnetError(
            f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for the classic non-blind methods "
            f"(method=...); the network is blind"
        )


def restore_pixels(pixels: np.ndarray, restorer: Restorer, **known) -> np.ndarray:
    """Restore float32 H x W x C pixels in [0, 1] (C = 1, 2, 3 or 4, alpha last); gray goes through RGB."""
    has_alpha = pixels.shape[2] in (2, 4)
    colour = pixels[..., :-1] if has_alpha else pixels
    gray = colour.shape[2] == 1
    rgb = np.repeat(colour, 3, axis=2) if gray else colour
    restored = np.asarray(restorer(np.ascontiguousarray(rgb, dtype=np.float32), **known), dtype=np.float32)
    if not np.isfinite(restored).all():  # would be written as garbage
        raise RestoreError("the restorer returned NaN or infinite values; nothing was written")
    if gray:
        restored = restored.mean(axis=2, keepdims=True)
    return np.concatenate([restored, pixels[..., -1:]], axis=2) if has_alpha else restored


def _restore_array(array: np.ndarray, restorer: Restorer, known: dict) -> np.ndarray:
    pixels = array_to_pixels(array)
    return pixels_to_array(restore_pixels(pixels, restorer, **known), like=array)


def array_to_pixels(array: np.ndarray) -> np.ndarray:
    """A numpy image (H x W or H x W x C; uint8, uint16 or float in [0, 1]) as float32 H x W x C in [0, 1]."""
    pixels = array[..., None] if array.ndim == 2 else array
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"expected an H x W or H x W x C image with C in 1..4, found shape {tuple(array.shape)}")
    if array.dtype in _INTEGER_TOPS:
        return pixels.astype(np.float32) / _INTEGER_TOPS[array.dtype]
    if not np.issubdtype(array.dtype, np.floating):
        raise ImageError(f"expected uint8, uint16 or float pixels, found {array.dtype}")
    if not np.isfinite(pixels).all():
        raise ImageError("the image holds NaN or infinite values")
    if pixels.size and pixels.max() > _FLOAT_CEILING:
        raise ImageError(
            f"float images must hold values in [0, 1], found values up to {pixels.max():g} (pass 0-255 data as uint8)"
        )
    return np.clip(pixels, 0, 1).astype(np.float32)


def pixels_to_array(pixels: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Float32 H x W x C pixels in [0, 1] back to the dtype and shape of `like`."""
    if like.dtype in _INTEGER_TOPS:
        top = _INTEGER_TOPS[like.dtype]
        values = np.rint(np.clip(pixels, 0, 1) * top).astype(like.dtype)
    else:
        values = pixels.astype(like.dtype)
    return values.reshape(like.shape)


def _restore_pil(image: Image.Image, restorer: Restorer, known: dict) -> Image.Image:
    """Same mode back, except palette images, which come back RGB(A): restoration leaves the palette."""
    image.load()
    pixels, bit_depth = pil_to_pixels(image)
    restored = pixels_to_pil(restore_pixels(pixels, restorer, **known), bit_depth)
    if restored.mode != image.mode and image.mode not in ("P", "PA"):
        restored = restored.convert(image.mode)
    if "icc_profile" in image.info:
        restored.info["icc_profile"] = image.info["icc_profile"]
    return restored


def _restore_tensor(tensor: torch.Tensor, restorer: Restorer, known: dict) -> torch.Tensor:
    if tensor.ndim not in (3, 4) or tensor.shape[-3] not in (1, 2, 3, 4):
        raise ImageError(
            f"expected a C x H x W or N x C x H x W tensor with C in 1..4, found shape {tuple(tensor.shape)}"
        )
    if tensor.ndim == 3:
        return _restore_tensor(tensor[None], restorer, known)[0]
    working = tensor.detach().cpu()
    if working.is_floating_point():
        working = working.float()
    restored = [_restore_array(image.permute(1, 2, 0).numpy(), restorer, known) for image in working]
    return torch.stack([torch.from_numpy(image).permute(2, 0, 1) for image in restored]).to(tensor.device, tensor.dtype)
