"""Figures a person can look at: grids of labelled images (degraded | restored | clean, or one crop per method)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Cell = tuple[np.ndarray, str]
_LABEL_HEIGHT = 22
_GAP = 4


def _font(size: int = 15) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "Arial.ttf", "LiberationSans-Regular.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def to_uint8(image: np.ndarray) -> np.ndarray:
    image = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.rint(image[..., :3] * 255).astype(np.uint8)


def image_grid(rows: list[list[Cell]], title: str | None = None) -> Image.Image:
    """Rows of (image, label) cells, each label written on a band under its image; cells of a column share a width."""
    font = _font()
    widths = [max(cell[0].shape[1] for cell in column) for column in zip(*rows)]
    heights = [max(cell[0].shape[0] for cell in row) for row in rows]
    top = _LABEL_HEIGHT + _GAP if title else 0
    canvas = Image.new(
        "RGB",
        (sum(widths) + _GAP * (len(widths) + 1), top + sum(h + _LABEL_HEIGHT + _GAP for h in heights) + _GAP),
        "white",
    )
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((_GAP, _GAP), title, fill="black", font=font)
    y = top + _GAP
    for row, height in zip(rows, heights):
        x = _GAP
        for (image, label), width in zip(row, widths):
            canvas.paste(Image.fromarray(to_uint8(image)), (x, y))
            draw.text((x + 2, y + height + 3), label, fill="black", font=font)
            x += width + _GAP
        y += height + _LABEL_HEIGHT + _GAP
    return canvas


def save_figure(figure: Image.Image, path: str | Path) -> Path:
    from .io import ImageData, write_image

    pixels = np.asarray(figure, dtype=np.float32) / 255
    return write_image(path, ImageData(pixels=pixels, bit_depth=8, format="PNG"))
