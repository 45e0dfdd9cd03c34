"""The study's outputs: tables (Markdown, CSV, HTML), crop grids like the article's figures, cost-versus-quality
scatter plots drawn with Pillow, and one self-contained HTML report with every image embedded as base64 PNG."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean

import numpy as np
from PIL import Image, ImageDraw

from ..figures import _font, image_grid
from ..files import atomic_path
from ..io import read_rgb
from .experiments import Condition, Method, Score

CROP_SIZE = (256, 144)  # width, height: the article's crops
_PLOT_SIZE = (720, 460)
_PLOT_MARGIN = (70, 48, 30, 50)  # left, top, right, bottom
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
#: The network every other method is compared with, in the article and in the "difference to MPRNet" column.
REFERENCE = "MPRNet"
#: The hex digits of a sha256 that a table shows (the sources list and results.csv give all 64).
SHORT_HASH = 12
#: What a finished study leaves in its folder besides cache/ (which a rerun continues from).
REPORT_FILES = ("report.html", "report.md", "results.csv", "complexity.csv")
REPORT_FOLDERS = ("figures", "plots")
_COST_COLUMNS = {
    "model": "model",
    "parameters_M": "params (M)",
    "GMACs_256x256": "GMACs 256x256",
    "GMACs_1280x720": "GMACs 1280x720",
}


def finished_outputs(out: Path) -> list[str]:
    """The report files and figure folders of an earlier study in `out`, which a new one would replace."""
    files = [name for name in REPORT_FILES if (out / name).exists()]
    folders = [f"{name}/" for name in REPORT_FOLDERS if (out / name).is_dir() and any((out / name).iterdir())]
    return files + folders


# ---- tables ------------------------------------------------------------------------------------------------------


def score_table(scores: list[Score], condition: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a condition's table: one row per image and a mean row, one 'PSNR / SSIM' cell per method."""
    mine = [score for score in scores if score.condition == condition]
    methods = list(dict.fromkeys(score.method for score in mine))
    images = list(dict.fromkeys(score.image for score in mine))
    found = {(score.image, score.method): score for score in mine}
    rows = [[image] + [_cell(found.get((image, method))) for method in methods] for image in images]
    means = mean_scores(mine)
    return ["image", *methods], [*rows, ["mean"] + [_cell(means[condition, method]) for method in methods]]


def summary_table(scores: list[Score], condition: str, methods: list[Method]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a condition's summary, one row per method that ran: mean PSNR and SSIM, the mean PSNR
    difference to MPRNet on the same images (negative: MPRNet is ahead), seconds per image, and the weights file
    with the start of its sha256."""
    mine = [score for score in scores if score.condition == condition]
    means = mean_scores(mine)
    header = ["method", "PSNR (dB)", "SSIM", f"difference to {REFERENCE} (dB)", "s / image", "weights (sha256)"]
    rows = [
        [
            method.name,
            f"{means[condition, method.name].psnr:.2f}",
            f"{means[condition, method.name].ssim:.4f}",
            _difference(mine, method.name),
            f"{means[condition, method.name].seconds:.3f}",
            f"{Path(method.source).name} ({method.sha256[:SHORT_HASH]})" if method.source else "-",
        ]
        for method in methods
        if (condition, method.name) in means
    ]
    return header, rows


def _difference(scores: list[Score], method: str) -> str:
    """The mean over the images both have of the method's PSNR minus MPRNet's."""
    psnr = {(score.image, score.method): score.psnr for score in scores}
    images = [image for image, name in psnr if name == method and (image, REFERENCE) in psnr]
    if method == REFERENCE or not images:
        return "reference" if method == REFERENCE else "-"
    return f"{fmean(psnr[image, method] - psnr[image, REFERENCE] for image in images):+.2f}"


def sources_table(methods: dict[str, list[Method]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the sources list: for every column of every task, what filled it and the full sha256."""
    rows = [
        [task, method.name, method.source_label, method.sha256 or "-"]
        for task, task_methods in methods.items()
        for method in task_methods
        if method.restorer is not None
    ]
    return ["task", "column", "filled by", "sha256"], rows


def mean_scores(scores: list[Score]) -> dict[tuple[str, str], Score]:
    """(condition, method) -> its mean PSNR, SSIM and seconds over the images, as a Score of image 'mean'."""
    groups: dict[tuple[str, str], list[Score]] = {}
    for score in scores:
        groups.setdefault((score.condition, score.method), []).append(score)
    return {
        (condition, method): Score(
            condition,
            "mean",
            method,
            fmean(s.psnr for s in group),
            fmean(s.ssim for s in group),
            fmean(s.seconds for s in group),
        )
        for (condition, method), group in groups.items()
    }


def _cell(score: Score | None) -> str:
    return "-" if score is None else f"{score.psnr:.2f} / {score.ssim:.4f}"


def cost_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the cost table; latency and memory columns as measured on this machine."""
    keys = list(_COST_COLUMNS) + sorted({key for row in rows for key in row if key.startswith(("ms_", "peak_"))})
    header = [
        _COST_COLUMNS.get(key, key.replace("ms_", "ms ").replace("peak_MiB_", "peak MiB ").replace("_", " "))
        for key in keys
    ]
    return header, [[_number(row.get(key)) for key in keys] for row in rows]


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_scores_csv(scores: list[Score], path: Path) -> Path:
    """One line per (condition, image, method) with full-precision PSNR, SSIM and seconds, and what the method ran:
    its weights file and their sha256 (for the input and the classic methods, what they are and no hash)."""
    return _write_csv(
        path,
        ["condition", "image", "method", "psnr", "ssim", "seconds", "source", "sha256"],
        [
            [s.condition, s.image, s.method, repr(s.psnr), repr(s.ssim), f"{s.seconds:.4f}", s.source, s.sha256]
            for s in scores
        ],
    )


def read_scores_csv(path: Path) -> list[Score]:
    """The scores that `write_scores_csv` wrote."""
    with Path(path).open(newline="") as file:
        return [
            Score(
                row["condition"],
                row["image"],
                row["method"],
                float(row["psnr"]),
                float(row["ssim"]),
                float(row["seconds"]),
                row.get("source", ""),
                row.get("sha256", ""),
            )
            for row in csv.DictReader(file)
        ]


def write_cost_csv(rows: list[dict], path: Path) -> Path:
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return _write_csv(path, keys, [[row.get(key, "") for key in keys] for row in rows])


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


# ---- figures -----------------------------------------------------------------------------------------------------


def crop_grid(condition: Condition, rows: list[list[tuple[Path, str]]]) -> Image.Image:
    """The same crop of every image of a row side by side, labelled, enlarged (nearest) to at least 256 px wide."""
    cells = [[(_crop(read_rgb(path)), label) for path, label in row] for row in rows]
    return image_grid(cells, title=condition.title)


def _crop(image: np.ndarray) -> np.ndarray:
    width, height = min(CROP_SIZE[0], image.shape[1]), min(CROP_SIZE[1], image.shape[0])
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    crop = image[top : top + height, left : left + width]
    zoom = max(1, CROP_SIZE[0] // width)
    return np.repeat(np.repeat(crop, zoom, axis=0), zoom, axis=1)


def scatter_plot(points: list[tuple[float, float, str]], x_label: str, y_label: str, title: str) -> Image.Image:
    """A labelled scatter plot with a logarithmic x axis (costs span decades) and a linear y axis."""
    width, height = _PLOT_SIZE
    left, top, right, bottom = _PLOT_MARGIN
    canvas = Image.new("RGB", _PLOT_SIZE, "white")
    draw = ImageDraw.Draw(canvas)
    font, small = _font(14), _font(12)
    xs = [math.log10(x) for x, _, _ in points]
    ys = [y for _, y, _ in points]
    x_low, x_high = math.floor(min(xs)), max(math.ceil(max(xs)), math.floor(min(xs)) + 1)
    y_low, y_high = math.floor(min(ys) - 0.5), math.ceil(max(ys) + 0.5)
    to_x = lambda value: left + (value - x_low) / (x_high - x_low) * (width - left - right)  # noqa: E731
    to_y = lambda value: height - bottom - (value - y_low) / (y_high - y_low) * (height - top - bottom)  # noqa: E731
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for decade in range(x_low, x_high + 1):
        x = to_x(decade)
        draw.line([x, height - bottom, x, height - bottom + 5], fill="black")
        draw.text((x - 14, height - bottom + 8), f"{10.0**decade:g}", fill="black", font=small)
    y_step = max(1, (y_high - y_low) // 6)
    for value in range(y_low, y_high + 1, y_step):
        y = to_y(value)
        draw.line([left - 5, y, left, y], fill="black")
        draw.text((left - 30, y - 7), f"{value}", fill="black", font=small)
    draw.text((left, 6), title, fill="black", font=font)
    draw.text(((width - left) // 2, height - 22), x_label, fill="black", font=font)
    draw.text((6, top - 18), y_label, fill="black", font=small)
    for index, ((_, y_value, label), x_value) in enumerate(zip(points, xs)):
        colour = _PALETTE[index % len(_PALETTE)]
        x, y = to_x(x_value), to_y(y_value)
        draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=colour)
        draw.text((x + 8, y - 8), label, fill=colour, font=small)
    return canvas


# ---- the report --------------------------------------------------------------------------------------------------


def data_uri(path: Path) -> str:
    """The image file inline, as a `data:` URI of its own type (PNG plots, JPEG crop grids)."""
    media_type = Image.MIME[Image.registered_extensions()[path.suffix.lower()]]
    return f"data:{media_type};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def html_report(
    title: str,
    sections: Sequence[tuple[str, str, Sequence[tuple[str, str | os.PathLike[str]]]]],
    facts: dict[str, str],
    notes: list[str],
) -> str:
    """A self-contained page: facts (command, versions, hardware, date), notes, then each section's
    (heading, HTML table, [(caption, figure path)])."""
    parts = [f"<h1>{html.escape(title)}</h1>", "<dl>"]
    parts += [f"<dt>{html.escape(key)}</dt><dd><code>{html.escape(value)}</code></dd>" for key, value in facts.items()]
    parts.append("</dl>")
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>")
    for heading, table, figures in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{table}")
        for caption, path in figures:
            parts.append(
                f'<figure><img alt="{html.escape(caption)}" src="{data_uri(Path(path))}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:110em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}th{background:#eee}"
        "img{max-width:100%}dt{font-weight:bold}figure{margin:1em 0}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
    )
