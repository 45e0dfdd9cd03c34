"""Noise as a camera makes it, after Brooks et al., "Unprocessing Images for Learned Raw Denoising" (CVPR 2019):
the sRGB photo is taken back to the sensor's linear raw mosaic, shot and read noise are added there, and the
mosaic is processed forward again (demosaicking, white balance, colour correction, gamma, tone curve, JPEG).

The noise then grows with brightness, differs between colours and is correlated between neighbouring pixels and
channels, as in real photos (SIDD). Only the noise goes through the camera: the result is the clean photo plus
the difference the pipeline makes between the noisy and the noiseless mosaic, so that the clean content keeps
its sharpness and a model learns to remove noise, not to undo demosaicking.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from .base import Degradation, Range, check_range, draw

# XYZ (D65) to camera matrices of real cameras, from Adobe DNG Converter as dcraw's adobe_coeff lists them
# (times 10000): Canon EOS 5D Mark II, Sony ILCE-7R, Sony DSC-RX100 II-IV, Panasonic DMC-LX7, Samsung NX1,
# Pentax K-5: full-frame, one-inch and small sensors.
XYZ_TO_CAMERA = (
    np.array(
        [
            [4716, 603, -830, -7798, 15474, 2480, -1496, 1937, 6651],
            [4913, -541, -202, -6130, 13513, 2906, -1564, 2151, 7183],
            [6596, -2079, -562, -4782, 13016, 1933, -970, 1581, 5181],
            [10148, -3743, -991, -2837, 11366, 1659, -701, 1893, 4899],
            [10686, -4042, -1052, -3595, 13238, 276, -464, 1259, 5931],
            [8713, -2833, -743, -4342, 11900, 2772, -722, 1543, 6247],
        ],
        dtype=np.float64,
    ).reshape(-1, 3, 3)
    / 10000.0
)
# Linear sRGB to XYZ (D65), IEC 61966-2-1.
SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
# Read noise follows shot noise across ISO on a line in log space (Brooks et al., fitted to real sensors):
# log(read) = SLOPE * log(shot) + INTERCEPT + N(0, SPREAD).
READ_SLOPE, READ_INTERCEPT, READ_SPREAD = 2.18, 1.20, 0.26
GAMMA = 2.2
# Above this grey level white-balance gains below 1 are eased towards 1 when unprocessing, so that highlights
# that were clipped in the photo stay clipped instead of turning grey.
HIGHLIGHT_START = 0.9
# The channel of each site of the RGGB mosaic: (row % 2, col % 2) -> 0 red, 1 green, 2 blue.
RGGB = np.array([[0, 1], [1, 2]])
_GREEN_KERNEL = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4.0
_RED_BLUE_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4.0


class CameraNoise(Degradation):
    """Real-camera noise: per image a camera (colour matrix mixed from real cameras'), white-balance gains,
    shot noise drawn log-uniformly from shot_range and read noise from the log-linear relation, a Bayer phase
    and, with probability jpeg_share, a JPEG quality from jpeg_quality. Every one of them is a parameter."""

    task = "denoise"
    param_type = "camera"

    def __init__(
        self,
        shot_range: Range = (2e-4, 2e-2),
        jpeg_share: float = 0.3,
        jpeg_quality: Range = (75, 95),
        red_gain: Range = (1.9, 2.4),
        blue_gain: Range = (1.5, 1.9),
    ):
        self.shot = check_range("shot_range", shot_range, 1e-8, 1.0)
        self.jpeg_share = check_range("jpeg_share", jpeg_share, 0.0, 1.0)[0]
        self.jpeg_quality = check_range("jpeg_quality", jpeg_quality, 1, 100)
        self.red_gain = check_range("red_gain", red_gain, 0.1, 10.0)
        self.blue_gain = check_range("blue_gain", blue_gain, 0.1, 10.0)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
        log_shot = draw((float(np.log(self.shot[0])), float(np.log(self.shot[1]))), rng)
        log_read = READ_SLOPE * log_shot + READ_INTERCEPT + READ_SPREAD * float(rng.standard_normal())
        jpeg = rng.random() < self.jpeg_share
        return {
            "type": self.param_type,
            "rgb_to_camera": random_rgb_to_camera(rng).tolist(),
            "brightness_gain": 1.0 / float(np.clip(rng.normal(0.8, 0.1), 0.5, 1.1)),
            "red_gain": draw(self.red_gain, rng),
            "blue_gain": draw(self.blue_gain, rng),
            "shot": float(np.exp(log_shot)),
            "read": float(np.exp(log_read)),
            "bayer_offset": [int(rng.integers(2)), int(rng.integers(2))],
            "jpeg_quality": round(draw(self.jpeg_quality, rng)) if jpeg else None,
        }

    def apply(self, clean: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
        # float32 throughout: twice as fast, and the noise is far above its rounding.
        rgb_to_camera = np.asarray(params["rgb_to_camera"], dtype=np.float32)
        gains = np.float32(params["brightness_gain"]) * np.array(
            [params["red_gain"], 1.0, params["blue_gain"]], dtype=np.float32
        )
        sites = bayer_sites(clean.shape[:2], params["bayer_offset"])
        grey = clean.shape[-1] < 3
        colour = np.repeat(clean[..., :1], 3, axis=-1) if grey else clean[..., :3]
        raw = mosaic(unprocess(np.clip(colour, 0.0, 1.0).astype(np.float32), rgb_to_camera, gains), sites)
        noisy_raw = add_sensor_noise(raw, params["shot"], params["read"], rng)
        camera_to_rgb = np.linalg.inv(rgb_to_camera).astype(np.float32)
        difference = process(noisy_raw, sites, camera_to_rgb, gains) - process(raw, sites, camera_to_rgb, gains)
        noisy = clean.astype(np.float32)
        if grey:
            noisy[..., :1] += difference.mean(axis=-1, keepdims=True)
        else:
            noisy[..., :3] += difference
        noisy = np.clip(noisy, 0.0, 1.0).astype(np.float32)
        return noisy if params["jpeg_quality"] is None else jpeg_round_trip(noisy, params["jpeg_quality"])


def random_rgb_to_camera(rng: np.random.Generator) -> np.ndarray:
    """A linear sRGB to camera matrix: a random convex mix of the real cameras' XYZ to camera matrices, times
    sRGB to XYZ, each row scaled to sum 1 (so that white stays white before white balance)."""
    weights = rng.random(len(XYZ_TO_CAMERA))
    xyz_to_camera = np.tensordot(weights / weights.sum(), XYZ_TO_CAMERA, axes=1)
    rgb_to_camera = xyz_to_camera @ SRGB_TO_XYZ
    return rgb_to_camera / rgb_to_camera.sum(axis=1, keepdims=True)


def unprocess(image: np.ndarray, rgb_to_camera: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """An sRGB H x W x 3 image in [0, 1] as the camera's linear colours before white balance."""
    untoned = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * image) / 3.0)  # the inverse of the tone curve 3x^2 - 2x^3
    camera = srgb_to_linear(untoned) @ rgb_to_camera.T
    grey = camera.mean(axis=-1, keepdims=True)
    highlight = (np.maximum(grey - HIGHLIGHT_START, 0.0) / (1.0 - HIGHLIGHT_START)) ** 2
    inverse = 1.0 / gains
    eased = np.maximum(highlight + (1.0 - highlight) * inverse, inverse)  # gains >= 1 invert as they are
    return np.clip(camera * eased, 0.0, 1.0)


def process(raw: np.ndarray, sites: np.ndarray, camera_to_rgb: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """A linear H x W raw mosaic as an sRGB H x W x 3 image: white balance, bilinear demosaicking, colour
    correction, gamma and tone curve."""
    balanced = np.clip(raw * gains[sites], 0.0, 1.0)
    camera = demosaic(balanced, sites)
    gamma = linear_to_srgb(np.clip(camera @ camera_to_rgb.T, 0.0, 1.0))
    return 3.0 * gamma**2 - 2.0 * gamma**3


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """Gamma-encoded values in [0, 1] as linear light (gamma 2.2)."""
    return np.maximum(image, 1e-8) ** GAMMA


def linear_to_srgb(light: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] gamma-encoded (gamma 1 / 2.2)."""
    return np.maximum(light, 1e-8) ** (1.0 / GAMMA)


def bayer_sites(shape: tuple[int, int], offset: tuple[int, int] | list[int]) -> np.ndarray:
    """The H x W map of the colour (0 red, 1 green, 2 blue) each pixel of an RGGB mosaic shifted by `offset`
    (rows, columns) records."""
    rows = (np.arange(shape[0]) + offset[0]) % 2
    cols = (np.arange(shape[1]) + offset[1]) % 2
    return RGGB[rows[:, None], cols[None, :]]


def mosaic(image: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """The H x W mosaic of an H x W x 3 image: at each pixel, the colour its site records."""
    return np.take_along_axis(image, sites[..., None], axis=-1)[..., 0]


def demosaic(raw: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """Bilinear demosaicking: each missing colour is the mean of its nearest recorded neighbours. The edges are
    mirrored without repeating the border pixel, which keeps the mosaic's pattern."""
    channels = []
    for colour, kernel in ((0, _RED_BLUE_KERNEL), (1, _GREEN_KERNEL), (2, _RED_BLUE_KERNEL)):
        recorded = np.where(sites == colour, raw, 0.0)
        channels.append(ndimage.correlate(recorded, kernel, mode="mirror"))
    return np.stack(channels, axis=-1)


def add_sensor_noise(raw: np.ndarray, shot: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """The raw signal x plus noise of variance shot * x + read: photon (shot) noise, in its Gaussian
    approximation, and read noise."""
    deviation = np.sqrt(shot * np.maximum(raw, 0.0) + read).astype(raw.dtype, copy=False)
    return raw + deviation * rng.standard_normal(raw.shape, dtype=np.float32)


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """The image (float in [0, 1], 1 or 3 channels or more: the first three are compressed) through a JPEG file
    of the given quality, colour kept at full resolution (4:4:4): the quantisation of the coefficients is what
    blocks and rings, chroma subsampling would only teach a model to guess colour detail."""
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    colour = pixels[..., :3] if pixels.shape[-1] >= 3 else pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(colour).save(buffer, format="JPEG", quality=int(quality), subsampling=0)
    decoded = np.asarray(Image.open(buffer), dtype=np.float32) / 255.0
    result = image.copy()
    if pixels.shape[-1] >= 3:
        result[..., :3] = decoded
    else:
        result[..., 0] = decoded
    return result
