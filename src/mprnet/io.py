"""Reading and writing images as people have them, without losing what the pixels do not say.

`read_image` returns an `ImageData`: pixels as float32 H x W x C in [0, 1] (C = 1 gray, 2 gray + alpha, 3 RGB,
4 RGBA; alpha always last) plus what writing back faithfully needs: bit depth, format, ICC profile, EXIF (its
orientation already applied to the pixels), JPEG subsampling. `write_image` writes one atomically: a temporary file
in the same folder, then a rename, so an interrupted run never leaves a half-written image.

Palette images become RGB(A), bilevel images gray, CMYK images RGB (through their ICC profile when they carry one).
Animated GIF, PNG and WebP files keep every frame (`ImageData.frames`), with each frame's duration and the loop
count; a multi-page TIFF is refused rather than cut to its first page. 16-bit PNG and TIFF stay 16-bit; Pillow
holds 16-bit colour only as 8-bit, so those are decoded twice (high bytes, then low bytes) by the same Pillow
decoder, and written by our own PNG encoder or by tifffile. TIFFs Pillow would misread (32-bit integers, signed or
floating-point samples, planar colour) are read by tifffile, scaled by the range of their sample type, and written
back in that type.

A file is offered only to the decoders of the formats of `IMAGE_SUFFIXES`, whatever its name: none reaches
Ghostscript (EPS) or another decoder this program does not mean to run. HEIF photos (phones) are read with
pillow-heif where it is installed, whose decoder is registered and offered only to files whose first bytes say
HEIF; HEIF and AVIF photos are written back in their format where this system can encode it, else as JPEG.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import io
import logging
import os
import struct
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, ImageSequence, JpegImagePlugin

from .errors import DataError, ImageError
from .files import atomic_path

_log = logging.getLogger("mprnet.io")

DEFAULT_MAX_PIXELS = 100_000_000
MIN_SIDE = 8
JPEG_QUALITY = 95
#: Formats written back as they came; an image read from any other format is written as PNG.
WRITABLE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif"}
#: Formats whose animations are read and written frame by frame.
ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP"})
IMAGE_SUFFIXES = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".tif",
        ".tiff",
        ".webp",
        ".bmp",
        ".gif",
        ".ppm",
        ".pgm",
        ".pnm",
        ".pbm",
        ".tga",
        ".qoi",
        ".avif",
    ]
)
#: HEIF photos (phones), read only where pillow-heif is installed; elsewhere a folder scan says it leaves them out.
HEIF_SUFFIXES = frozenset({".heic", ".heif"})
HEIF_INSTALLED = importlib.util.find_spec("pillow_heif") is not None
if HEIF_INSTALLED:
    IMAGE_SUFFIXES |= HEIF_SUFFIXES
#: Phone formats and their suffixes: written back as they came where this system can encode them, else as JPEG.
PHONE_FORMATS = {"HEIF": ".heic", "AVIF": ".avif"}
_PHONE_SUFFIXES = {".heic": "HEIF", ".heif": "HEIF", ".avif": "AVIF"}
#: Pillow's names of the formats of IMAGE_SUFFIXES, the only decoders a file is offered to.
READABLE_FORMATS = tuple(
    sorted(
        {name for suffix, name in Image.registered_extensions().items() if suffix in IMAGE_SUFFIXES} & set(Image.OPEN)
    )
)
#: Formats Pillow has no decoder for, told by their first bytes.
_FOREIGN_SIGNATURES = {b"%PDF": "PDF"}
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_TIFF_SIGNATURES = frozenset({b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"})
_EIGHT_BIT_ONLY = {"JPEG", "WEBP", "BMP", "GIF", "HEIF", "AVIF"}
#: Channel counts a format cannot hold (Pillow writes no gray + alpha JPEG or BMP, and drops a BMP's alpha; HEIF
#: and AVIF encoders turn gray + alpha into RGBA).
_CHANNELS_NOT_HELD = {
    "JPEG": {2: "gray + alpha", 4: "RGB + alpha"},
    "BMP": {2: "gray + alpha", 4: "RGB + alpha"},
    "HEIF": {2: "gray + alpha"},
    "AVIF": {2: "gray + alpha"},
}
_PLANAR_SEPARATE = 2
#: tifffile's photometric interpretations read, with the channels they may have (alpha included).
_TIFFFILE_COLOURS = {1: (1, 2), 2: (3, 4)}  # MINISBLACK, RGB
_EXIF_ORIENTATION = 0x0112
_MODES_BY_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


class PixelLimitError(ImageError):
    """An image with more pixels than the reader was allowed (a guard against decompression bombs)."""


@dataclasses.dataclass
class ImageData:
    """Pixels in [0, 1] and the facts about their file needed to write them back the same way."""

    pixels: np.ndarray
    bit_depth: int = 8
    format: str = "PNG"
    icc_profile: bytes | None = None
    exif: bytes | None = None
    jpeg_subsampling: int | None = None
    #: An animation's frames after the first (`pixels`), each shaped like it; empty for a still image.
    frames: tuple[np.ndarray, ...] = ()
    #: Display time of every frame in milliseconds (animations only).
    durations: tuple[int, ...] = ()
    #: How often an animation repeats (0: forever); None: it plays once.
    loop: int | None = None
    #: With bit_depth, the type of the samples a TIFF is written with: "uint", "int" (signed) or "float".
    sample_format: str = "uint"

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] in (2, 4)

    def map_frames(self, function: Callable[[np.ndarray], np.ndarray]) -> ImageData:
        """The same image with `function` applied to the pixels of every frame."""
        return dataclasses.replace(
            self, pixels=function(self.pixels), frames=tuple(function(frame) for frame in self.frames)
        )


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageData:
    """Read an image file; `ImageError` (naming the file) if it is not a readable image or is too large or small."""
    path = Path(path)
    return _read_named(path, str(path), max_pixels)


def read_image_bytes(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageData:
    """Read an image file's content (an upload, say) held in memory, as `read_image` reads the file, with the same
    checks and decoders; `ImageError` naming it `name`."""
    return _read_named(bytes(data), name, max_pixels)


#: An image file: its path, or its content in memory.
Source = Path | bytes


def _read_named(source: Source, name: str, max_pixels: int) -> ImageData:
    _allow_pillow_up_to(max_pixels)
    try:
        with quiet_decoders():
            return _read(source, max_pixels)
    except PixelLimitError as error:
        raise PixelLimitError(f"{name}: {error}") from None
    except ImageError as error:
        raise ImageError(f"{name}: {error}") from None
    except Image.DecompressionBombError:
        raise PixelLimitError(f"{name}: the image has more pixels than the limit of {max_pixels:,}") from None
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a folder, not an image file") from None
    except MemoryError:
        raise
    except Exception as error:  # Pillow raises many types (OSError, SyntaxError, struct.error...) on damaged files
        raise ImageError(f"{name}: not a readable image ({_describe(error, source)})") from None


def _read(source: Source, max_pixels: int) -> ImageData:
    tiff = _read_tiff_samples(source, max_pixels) if _is_tiff(source) else None
    if tiff is not None:
        return tiff
    with open_raster(source) as image:
        frames = _frame_count(image)
        _check_size(image.size, max_pixels, frames)
        return _decode_animation(image) if frames > 1 else _decode(source, image)


def open_raster(source: str | os.PathLike | bytes) -> ImageFile.ImageFile:
    """Pillow's lazily decoded image of a file (its path, or its content), offered only to the decoders of
    READABLE_FORMATS; ImageError naming the format of a file of another known one, Pillow's UnidentifiedImageError
    for the rest."""
    source = source if isinstance(source, bytes) else Path(source)
    heif = _says_heif(source) and HEIF_INSTALLED and _heif_plugin()
    try:
        return Image.open(_opened(source), formats=(*READABLE_FORMATS, "HEIF") if heif else READABLE_FORMATS)
    except Image.UnidentifiedImageError:
        if heif:
            raise ImageError("not a readable image: a HEIF file that pillow-heif cannot decode (damaged?)") from None
        foreign = _foreign_format(_head(source, 16))
        if foreign is None:
            raise
        raise ImageError(f"not a readable image: {foreign} is not an image format this program reads") from None


def _says_heif(source: Source) -> bool:
    """Whether the file's first bytes are those of a HEIF file (an ISO box `ftyp` naming a HEIF brand)."""
    try:
        prefix = _head(source, 12)
    except OSError:
        return False  # the decoders' own attempt reports it
    return prefix[4:8] == b"ftyp" and prefix[8:12] in _HEIF_BRANDS


@functools.cache
def _heif_plugin() -> bool:
    """Register pillow-heif's decoder and encoder with Pillow (once), where it is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


@functools.cache
def cannot_write(file_format: str) -> str | None:
    """Why this system cannot encode a phone format (HEIF, AVIF), or None where it can: tried once, on a small
    image."""
    if file_format == "HEIF" and not (HEIF_INSTALLED and _heif_plugin()):
        return "pillow-heif is not installed"
    if file_format not in Image.SAVE:
        return f"this Pillow has no {file_format} encoder"
    try:
        Image.new("RGB", (16, 16)).save(io.BytesIO(), format=file_format)
    except Exception as error:  # whatever the encoder raises: it cannot be used here
        return f"its {file_format} encoder failed: {error}"
    return None


def _opened(source: Source) -> BinaryIO | Path:
    """What a decoder reads: the path itself (the decoder opens and closes it), or the content as a file."""
    return io.BytesIO(source) if isinstance(source, bytes) else source


def _head(source: Source, size: int) -> bytes:
    if isinstance(source, bytes):
        return source[:size]
    with source.open("rb") as file:
        return file.read(size)


def _foreign_format(prefix: bytes) -> str | None:
    """The format of a file no allowed decoder took, from its first bytes (Pillow's own checks of the formats it
    knows, which look no further than those); None if unknown."""
    if prefix[4:8] == b"ftyp" and prefix[8:12] in _HEIF_BRANDS and not HEIF_INSTALLED:
        return "HEIF"
    for signature, name in _FOREIGN_SIGNATURES.items():
        if prefix.startswith(signature):
            return name
    for name in Image.ID:
        accept = Image.OPEN[name][1]
        if name not in READABLE_FORMATS and accept is not None and accept(prefix):
            return name
    return None


@contextlib.contextmanager
def quiet_decoders() -> Iterator[None]:
    """Keep the decoders' own warnings (Pillow's decompression bomb warning, which our pixel limit replaces; odd
    tags) off the terminal: a file is read, or refused with one message."""
    tifffile_log = logging.getLogger("tifffile")
    tifffile_log.addFilter(_drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tifffile_log.removeFilter(_drop)


def _drop(_record: logging.LogRecord) -> bool:
    return False


def _is_tiff(source: Source) -> bool:
    return _head(source, 4) in _TIFF_SIGNATURES


def _read_tiff_samples(source: Source, max_pixels: int) -> ImageData | None:
    """A TIFF whose samples Pillow would misread, read by tifffile and scaled by the range of its sample type
    (ICC profile kept; its EXIF, which in a TIFF holds the layout tags, is not); None for the others."""
    import tifffile

    with tifffile.TiffFile(_opened(source)) as tiff:
        page = tiff.pages.first
        if not _pillow_misreads(page):
            return None
        _check_pages(len(tiff.pages))
        _check_size((page.imagewidth, page.imagelength), max_pixels)
        values = _samples_last(page)
        icc_profile = page.iccprofile
    pixels, sample_format = _scaled(values)
    return ImageData(pixels, 8 * values.dtype.itemsize, "TIFF", icc_profile, sample_format=sample_format)


def _pillow_misreads(page) -> bool:
    """Pillow holds 8 and 16-bit unsigned samples faithfully, and only those; it mixes up planar colour."""
    return page.dtype is not None and (page.dtype.name not in ("bool", "uint8", "uint16") or _planar_colour(page))


def _planar_colour(page) -> bool:
    return page.planarconfig == _PLANAR_SEPARATE and page.samplesperpixel > 1


def _samples_last(page) -> np.ndarray:
    """The page's samples as H x W x C, C = 1 to 4 (gray or RGB, then alpha); ImageError for other layouts."""
    photometric, kind = page.photometric, page.dtype.name
    if photometric not in _TIFFFILE_COLOURS:
        what = getattr(photometric, "name", photometric)
        raise ImageError(f"a TIFF of {kind} samples in {what} colour, which this program does not read")
    values = page.asarray()
    if _planar_colour(page):
        values = np.moveaxis(values, 0, -1)
    values = values[..., None] if values.ndim == 2 else values
    low, high = _TIFFFILE_COLOURS[photometric]
    if values.ndim != 3 or not low <= values.shape[2] <= high:
        raise ImageError(f"a TIFF of {kind} samples shaped {values.shape}, which this program does not read")
    return values


def _scaled(values: np.ndarray) -> tuple[np.ndarray, str]:
    """Samples as float32 in [0, 1], integers divided by their type's maximum, and their sample format."""
    if values.dtype.kind == "f":
        low, high = float(np.min(values)), float(np.max(values))
        if not (np.isfinite(values).all() and low >= 0 and high <= 1):
            raise ImageError(
                f"a floating-point TIFF with values from {low:g} to {high:g}; only values in 0..1 are read as light"
            )
        return values.astype(np.float32), "float"
    if values.dtype.kind == "i" and values.min() < 0:
        raise ImageError(f"a signed-integer TIFF with negative values (down to {values.min()}); they are not light")
    pixels = (values / np.iinfo(values.dtype).max).astype(np.float32)
    return pixels, "int" if values.dtype.kind == "i" else "uint"


def _describe(error: Exception, source: Source) -> str:
    if source == b"" or (isinstance(source, Path) and source.is_file() and source.stat().st_size == 0):
        return "the file is empty"
    message = str(error) if isinstance(source, bytes) else str(error).replace(str(source), "").strip(" '\"")
    return message or type(error).__name__


def _allow_pillow_up_to(max_pixels: int) -> None:
    # Pillow's own bomb check is global and fixed; ours (per call) replaces it, so Pillow's may only rise.
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _frame_count(image: Image.Image) -> int:
    """Frames that will be decoded: every frame of an animation, 1 for a still image; multi-page TIFF refused."""
    count = getattr(image, "n_frames", 1)
    if image.format == "TIFF":
        _check_pages(count)
    return count if image.format in ANIMATED_FORMATS else 1


def _check_pages(count: int) -> None:
    if count > 1:
        raise ImageError(f"a multi-page TIFF ({count} pages); only single-page TIFF files are restored")


def _check_size(size: tuple[int, int], max_pixels: int, frames: int = 1) -> None:
    width, height = size
    if width * height * frames > max_pixels:
        what = f"{width}x{height}" + (f" x {frames} frames" if frames > 1 else "")
        raise PixelLimitError(
            f"the image is {what} = {width * height * frames:,} pixels, more than the limit of {max_pixels:,}"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"the image is {width}x{height} pixels; at least {MIN_SIDE} per side is needed")


def _decode(source: Source, image: ImageFile.ImageFile) -> ImageData:
    file_format = image.format or "PNG"
    colour_16_bit = _holds_16_bit_colour(image)  # before anything that loads the image and drops its tiles
    icc_profile = image.info.get("icc_profile") or None
    subsampling = JpegImagePlugin.get_sampling(image) if file_format == "JPEG" else None
    if colour_16_bit:
        pixels, bit_depth = _read_16_bit_colour(source), 16
    else:
        upright = ImageOps.exif_transpose(image)
        if upright.mode == "CMYK":
            upright, icc_profile = _cmyk_to_rgb(upright, icc_profile)
        pixels, bit_depth = pil_to_pixels(upright)
    exif = _exif_without_orientation(image)  # after transposing: it edits the image's own EXIF
    return ImageData(pixels, bit_depth, file_format, icc_profile, exif, subsampling if subsampling != -1 else None)


def _decode_animation(image: Image.Image) -> ImageData:
    """Every frame as Pillow composes it (RGBA, alpha dropped when no frame uses it), durations and loop count."""
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        frames.append(np.asarray(frame.convert("RGBA"), dtype=np.float32) / 255)
        durations.append(int(frame.info.get("duration", 0) or 0))
    if all(frame[..., 3].min() == 1 for frame in frames):
        frames = [frame[..., :3] for frame in frames]
    loop = image.info.get("loop")
    assert image.format is not None  # only an image of one of ANIMATED_FORMATS has frames counted (_frame_count)
    return ImageData(
        frames[0],
        8,
        image.format,
        image.info.get("icc_profile") or None,
        frames=tuple(frames[1:]),
        durations=tuple(durations),
        loop=None if loop is None else int(loop),
    )


def _exif_without_orientation(image: Image.Image) -> bytes | None:
    exif = image.getexif()
    if not exif:
        return None
    exif.pop(_EXIF_ORIENTATION, None)
    return exif.tobytes()


def _cmyk_to_rgb(image: Image.Image, icc_profile: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Through the image's own CMYK profile into sRGB when it has one; Pillow's naive formula otherwise."""
    if icc_profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
            assert converted is not None  # a new image: None only comes back when converting in place
            return converted, srgb.tobytes()
        except (ImageCms.PyCMSError, OSError):
            pass
    return image.convert("RGB"), None


def pil_to_pixels(image: Image.Image) -> tuple[np.ndarray, int]:
    """A decoded Pillow image as float32 H x W x C in [0, 1] and the bit depth it came in (8, 16 or 32 for float)."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image).astype(np.float32)
        if image.mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            # "I" holds 16-bit gray, or 32-bit integers that Pillow has already wrapped or cut
            raise ImageError(
                f"a 32-bit integer image (values from {values.min():.0f} to {values.max():.0f}), which Pillow does "
                "not hold faithfully; read the file with mprnet.io.read_image"
            )
        return (np.clip(values, 0, 65535) / 65535)[..., None], 16
    if image.mode == "F":
        return np.clip(np.asarray(image, dtype=np.float32), 0, 1)[..., None], 32
    image = image.convert(_working_mode(image))
    pixels = np.asarray(image, dtype=np.float32) / 255
    return (pixels[..., None] if pixels.ndim == 2 else pixels), 8


def _working_mode(image: Image.Image) -> str:
    if image.mode in _MODES_BY_CHANNELS.values():
        return image.mode
    if image.mode == "1":
        return "L"
    if image.mode in ("P", "PA"):
        return "RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB"
    return "RGBA" if "A" in image.getbands() else "RGB"


def _holds_16_bit_colour(image: ImageFile.ImageFile) -> bool:
    return (
        image.mode in ("RGB", "RGBA")
        and bool(image.tile)
        and _rawmode(image.tile[0]).endswith((";16B", ";16L", ";16N"))
    )


def _rawmode(tile) -> str:
    return tile.args[0] if isinstance(tile.args, tuple) else tile.args


def _with_rawmode(tile, rawmode: str):
    args = (rawmode, *tile.args[1:]) if isinstance(tile.args, tuple) else rawmode
    return tile._replace(args=args)


def _read_16_bit_colour(source: Source) -> np.ndarray:
    """Decode twice: the file's own rawmode unpacks each sample's high byte, the opposite byte order its low byte."""
    halves = []
    for take_low_byte in (False, True):
        with open_raster(source) as image:
            if take_low_byte:
                image.tile = [_with_rawmode(tile, _opposite_byte_order(_rawmode(tile))) for tile in image.tile]
            image.load()
            halves.append(np.asarray(ImageOps.exif_transpose(image)).astype(np.uint16))
    return ((halves[0] << 8) | halves[1]).astype(np.float32) / 65535


def _opposite_byte_order(rawmode: str) -> str:
    order = rawmode[-1]
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    return rawmode[:-1] + ("B" if order == "L" else "L")


def output_suffix(input_path: str | os.PathLike) -> str:
    """The suffix an output keeps: the input's when that format can be written, else `.png` (`.jpg` for a phone
    photo whose format this system cannot encode)."""
    suffix = Path(input_path).suffix
    file_format = _suffix_format(suffix)
    if file_format in PHONE_FORMATS:
        return suffix if cannot_write(file_format) is None else ".jpg"
    return suffix if file_format in WRITABLE_FORMATS else ".png"


def _suffix_format(suffix: str) -> str | None:
    return _PHONE_SUFFIXES.get(suffix.lower()) or Image.registered_extensions().get(suffix.lower())


def output_format(path: str | os.PathLike, image: ImageData) -> tuple[str, str | None]:
    """The format to write `image` in at `path`, decided before the work: the one its suffix names when that holds
    the image, else the format the image came in (PNG if that cannot hold it either), with a note saying so."""
    path = Path(path)
    named = _format_for(path)
    problem = not_held(named, image)
    if problem is None:
        return named, _phone_fallback(image, named, path)
    chosen = image.format if image.format in WRITABLE_FORMATS and not_held(image.format, image) is None else "PNG"
    return chosen, f"{problem}: written as {chosen}, keeping the name {path.name}"


def _phone_fallback(image: ImageData, written: str, path: Path) -> str | None:
    """The note for a phone photo written in another format because this system cannot encode its own."""
    why = cannot_write(image.format) if image.format in PHONE_FORMATS and written != image.format else None
    return None if why is None else f"{image.format} cannot be written here ({why}): written as {written}, {path.name}"


def not_held(file_format: str, image: ImageData) -> str | None:
    """Why `file_format` cannot hold `image`, or None if it can."""
    if image.frames and file_format not in ANIMATED_FORMATS:
        return f"an animation ({1 + len(image.frames)} frames) can be written as GIF, PNG or WebP, not {file_format}"
    channels = _CHANNELS_NOT_HELD.get(file_format, {}).get(image.pixels.shape[2])
    if channels:
        return f"an image in {channels} cannot be written as {file_format}"
    return None


def is_image_name(path: str | os.PathLike) -> bool:
    """Whether the file name has the suffix of a photograph format (what a folder scan picks up)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image file as float32 H x W x 3 in [0, 1]: gray is repeated, alpha dropped; ImageError if unreadable."""
    return to_rgb(read_image(path).pixels)


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """H x W x C pixels (C = 1 to 4: gray, gray + alpha, RGB, RGBA) as float32 H x W x 3: gray is repeated, alpha
    dropped."""
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"expected an H x W x C image with C in 1..4, found shape {pixels.shape}")
    colour = pixels[..., :3] if pixels.shape[2] >= 3 else pixels[..., :1]
    return np.ascontiguousarray(np.broadcast_to(colour, (*colour.shape[:2], 3)), dtype=np.float32)


#: ITU-R BT.601 luma, as black-and-white conversions weigh red, green and blue.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """An H x W x 3 RGB image as float32 H x W x 1 black and white (its luma)."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageError(f"expected an H x W x 3 RGB image, found shape {pixels.shape}")
    return (pixels.astype(np.float32) @ LUMA_WEIGHTS)[..., None]


def is_gray(pixels: np.ndarray) -> bool:
    """Whether H x W x C pixels are black and white: one channel, or every channel the first one (as restorers get
    a gray photo, repeated in RGB by `to_rgb`)."""
    return bool(np.all(pixels == pixels[..., :1]))


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside a folder, sorted by name, a warning logged for each entry that looks like
    a photo but is left out (`scan_note`); DataError if there is no such folder."""
    if not Path(folder).is_dir():
        raise DataError(
            f"Expected a folder of images, found {'a file' if Path(folder).exists() else 'nothing'} at {folder}."
        )
    entries = sorted(Path(folder).iterdir())
    for entry in entries:
        note = scan_note(entry)
        if note:
            _log.warning(note)
    return [path for path in entries if path.is_file() and is_image_name(path)]


def scan_note(path: Path) -> str | None:
    """Why a folder scan leaves out an entry a user would expect it to read (a link to nothing, an HEIF photo
    without pillow-heif), or None."""
    if path.is_symlink() and not path.exists():
        return f"{path}: skipped, a link to {os.readlink(path)}, which does not exist"
    if path.suffix.lower() in HEIF_SUFFIXES - IMAGE_SUFFIXES:
        return f"{path}: skipped, HEIF photos are not read (install pillow-heif, or convert it to JPEG or PNG)"
    return None


def write_image(path: str | os.PathLike, image: ImageData, file_format: str | None = None) -> Path:
    """Write `image` atomically in `file_format` (default: the one its suffix names; `output_format` picks one
    that holds the image), keeping bit depth (where the format allows), alpha, ICC profile and EXIF. Returns the
    path."""
    path = Path(path)
    file_format = file_format or _format_for(path)
    problem = not_held(file_format, image) or (cannot_write(file_format) if file_format in PHONE_FORMATS else None)
    if problem:
        raise ImageError(f"{path}: {problem}")
    prepare_folder(path.parent)
    try:
        with atomic_path(path) as temporary:
            _encode(temporary, file_format, _samples_for(file_format, image))
    except OSError as error:
        raise ImageError(f"{path}: cannot write ({error.strerror or error})") from None
    return path


def prepare_folder(folder: str | os.PathLike) -> None:
    """Create `folder` if needed; `ImageError` if images cannot be written there."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImageError(f"{folder}: cannot write images here ({error.strerror or error})") from None
    if not os.access(folder, os.W_OK):
        raise ImageError(f"{folder}: cannot write images here (permission denied)")


def _format_for(path: Path) -> str:
    file_format = _suffix_format(path.suffix)
    if file_format in PHONE_FORMATS:
        problem = cannot_write(file_format)
        if problem:
            raise ImageError(f"{path}: cannot write {file_format} here ({problem})")
        return file_format
    if file_format not in WRITABLE_FORMATS:
        known = ", ".join(sorted(set(WRITABLE_FORMATS.values())))
        raise ImageError(f"{path}: cannot write images with suffix {path.suffix!r}; use one of {known}")
    return file_format


def _samples_for(file_format: str, image: ImageData) -> ImageData:
    """The image with the sample type it is written in: any in TIFF, 8 or 16-bit unsigned in PNG, else 8-bit."""
    if file_format == "TIFF":
        return image
    bit_depth = 16 if image.bit_depth > 8 and file_format not in _EIGHT_BIT_ONLY else 8
    return dataclasses.replace(image, bit_depth=bit_depth, sample_format="uint")


def _encode(path: Path, file_format: str, image: ImageData) -> None:
    pixels = image.pixels
    samples = np.dtype(f"{image.sample_format}{image.bit_depth}")
    # 16-bit gray + alpha is left to 8 bits: Pillow (hence this package) cannot read it back.
    colour_16_bit = samples == np.uint16 and pixels.shape[2] >= 3
    if file_format == "TIFF" and (colour_16_bit or samples not in (np.uint8, np.uint16)):
        _write_tiff(path, _to_samples(pixels, samples), image.icc_profile)
    elif colour_16_bit and file_format == "PNG":
        _write_png_16(path, _to_samples(pixels, samples), image.icc_profile)
    elif image.frames or file_format == "GIF":  # Pillow keeps a GIF's transparency only through save_all
        first, *rest = (pixels_to_pil(frame) for frame in (pixels, *image.frames))
        first.save(path, format=file_format, save_all=True, append_images=rest, **_save_options(file_format, image))
    else:
        pixels_to_pil(pixels, image.bit_depth).save(path, format=file_format, **_save_options(file_format, image))


def _save_options(file_format: str, image: ImageData) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if image.icc_profile:
        options["icc_profile"] = image.icc_profile
    if image.exif and file_format in ("JPEG", "PNG", "TIFF", "WEBP", "HEIF", "AVIF"):
        options["exif"] = image.exif
    if file_format == "JPEG":
        options.update(quality=JPEG_QUALITY, subsampling=image.jpeg_subsampling or 0)
    elif file_format in ("WEBP", "HEIF", "AVIF"):
        options.update(quality=JPEG_QUALITY)
    elif file_format == "TIFF":
        options.update(compression="tiff_deflate")
    if image.frames:
        options["duration"] = list(image.durations)
        if image.loop is not None:
            options["loop"] = image.loop
        if file_format == "GIF":  # every frame is whole: clear the last one, so transparent pixels stay so
            options["disposal"] = 2
    return options


def _to_samples(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Pixels in [0, 1] as samples of `dtype`: floats as they are, integers scaled by the type's maximum."""
    clipped = np.clip(pixels, 0, 1)
    if dtype.kind == "f":
        return clipped.astype(dtype)
    if dtype.itemsize > 2:  # float32 cannot scale to 32-bit integers exactly
        clipped = clipped.astype(np.float64)
    return np.rint(clipped * np.iinfo(dtype).max).astype(dtype)


def pixels_to_pil(pixels: np.ndarray, bit_depth: int = 8) -> Image.Image:
    """Float32 H x W x C pixels in [0, 1] as a Pillow image: 16-bit gray `I;16`, float gray `F`, else 8-bit
    L/LA/RGB/RGBA (Pillow holds no 16-bit colour)."""
    if pixels.shape[2] == 1 and bit_depth == 16:
        return Image.fromarray(_to_samples(pixels[..., 0], np.dtype(np.uint16)))
    if pixels.shape[2] == 1 and bit_depth == 32:
        return Image.fromarray(np.clip(pixels[..., 0], 0, 1).astype(np.float32), mode="F")
    values = _to_samples(pixels, np.dtype(np.uint8))
    return Image.fromarray(values[..., 0] if values.shape[2] == 1 else values, mode=_MODES_BY_CHANNELS[values.shape[2]])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png_16(path: Path, values: np.ndarray, icc_profile: bytes | None) -> None:
    """A 16-bit RGB or RGBA PNG (Pillow cannot write these), rows with the 'Up' filter."""
    height, width, channels = values.shape
    colour_type = 6 if channels == 4 else 2
    rows = values.astype(">u2").reshape(height, width * channels).view(np.uint8)
    filtered = np.diff(rows, axis=0, prepend=np.zeros((1, rows.shape[1]), np.uint8))
    scanlines = np.concatenate([np.full((height, 1), 2, np.uint8), filtered], axis=1)
    chunks = [_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))]
    if icc_profile:
        chunks.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    chunks += [_png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)), _png_chunk(b"IEND", b"")]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))


def _write_tiff(path: Path, values: np.ndarray, icc_profile: bytes | None) -> None:
    import tifffile

    channels = values.shape[2]
    options: dict[str, Any] = {"extrasamples": ["unassalpha"]} if channels in (2, 4) else {}
    tifffile.imwrite(
        path,
        values if channels > 1 else values[..., 0],
        photometric="rgb" if channels >= 3 else "minisblack",
        planarconfig="contig",
        compression="zlib",
        iccprofile=icc_profile,
        metadata=None,
        **options,
    )


def png_bytes(pixels: np.ndarray) -> bytes:
    """Float32 H x W x C pixels in [0, 1] encoded as an 8-bit PNG, in memory."""
    buffer = io.BytesIO()
    pixels_to_pil(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
