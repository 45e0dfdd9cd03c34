"""`run_study`: the whole study, from test photos to the report folder."""

from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

import numpy as np
import torch
from tqdm import tqdm

from .. import __version__
from ..checkpoint import load_model
from ..figures import save_figure
from ..infer import cpu_name
from ..io import image_files
from ..tasks import TASK_NAMES
from . import complexity, experiments, report
from .experiments import Condition, Method, Score

TITLE = "MPRNet study: quality and cost against its peers and classic methods"


@dataclass(frozen=True)
class StudySettings:
    out: Path
    data: tuple[Path, ...] = ()  # a folder of clean photos and/or paired test sets (GoPro, Rain100L/H)
    weights_dir: Path | None = None
    images: int | None = None  # photos per condition (None: all)
    crop: int | None = 256  # centre crop side (None: whole images)
    seed: int = 0
    tasks: tuple[str, ...] = TASK_NAMES
    costs: complexity.CostSettings | None = field(default_factory=complexity.CostSettings)  # None: no cost table
    cost_models: tuple[str, ...] | None = None  # None: every distinct configuration (list_models())
    figure_images: int = 4  # rows of each crop grid, as the article's figures (more than there are: every image)
    device: str = "cpu"
    # How the networks cut their inputs: tile None chooses from free memory, 0 restores whole images (as the
    # official test scripts do).
    tile: int | None = None
    overlap: int = 32
    command: str = "mprnet study"


def run_study(settings: StudySettings) -> Path:
    """Run every experiment (continuing from the cache), write the report folder, and return report.html."""
    out = Path(settings.out)
    photos, conditions = _inputs(settings)
    skipped: list[str] = []
    networks = experiments.find_networks(settings.weights_dir, skipped)
    methods = {
        task: experiments.methods_for(task, networks, settings.device, settings.tile, settings.overlap)
        for task in settings.tasks
    }
    cache = experiments.ResultCache(out / "cache")
    # (condition, its samples, the methods that run in it)
    plan = [
        (
            condition,
            experiments.make_samples(condition, photos, settings.seed, settings.images, settings.crop),
            experiments.methods_of(condition, methods[condition.task]),
        )
        for condition in conditions
    ]
    total = sum(len(samples) * sum(m.restorer is not None for m in runs) for _, samples, runs in plan)
    scores: list[Score] = []
    with tqdm(total=total, desc="experiments", unit="run", disable=None) as progress:
        for condition, samples, runs in plan:
            progress.set_postfix_str(condition.slug)
            scores += experiments.run_condition(condition, samples, runs, cache, progress)
    cost_rows = _costs(settings, out)
    return _write_report(settings, out, plan, methods, scores, cost_rows, cache, skipped)


def _inputs(settings: StudySettings) -> tuple[dict[str, np.ndarray], list[Condition]]:
    """Clean photos (the first photo folder in `data`, else the defaults) and the conditions; a paired set given in
    `data` replaces the synthetic conditions of its task."""
    photo_dirs = [folder for folder in settings.data if image_files(folder)]
    paired = [experiments.paired_condition(folder) for folder in settings.data if folder not in photo_dirs]
    replaced = {condition.task for condition in paired}
    conditions = (
        [c for c in experiments.synthetic_conditions() if c.task not in replaced]
        + paired
        + experiments.passthrough_conditions()
    )
    conditions = [c for c in conditions if c.task in settings.tasks]
    photos = experiments.study_photos(photo_dirs[0] if photo_dirs else None, settings.images, settings.crop)
    return photos, conditions


def _costs(settings: StudySettings, out: Path) -> list[dict]:
    if settings.costs is None:
        return []
    names = None if settings.cost_models is None else list(settings.cost_models)
    with tqdm(desc="complexity", unit="model", disable=None) as progress:
        return complexity.cost_table(out / "cache" / "complexity.json", settings.costs, names, progress=progress)


def _write_report(
    settings: StudySettings,
    out: Path,
    plan,
    methods: dict[str, list[Method]],
    scores: list[Score],
    cost_rows: list[dict],
    cache: experiments.ResultCache,
    skipped: list[str],
) -> Path:
    notes = skipped + sorted({m.note for task_methods in methods.values() for m in task_methods if m.note})
    facts = _facts(settings)
    sections: list[tuple[str, str, list[tuple[str, Path]]]] = []  # (heading, HTML table, [(caption, figure)])
    markdown = [f"# {TITLE}\n", "".join(f"- {key}: `{value}`\n" for key, value in facts.items())]
    if cost_rows:
        header, rows = report.cost_table(cost_rows)
        notes += [note for note in [complexity.bf16_note()] if note]
        costs = settings.costs
        assert costs is not None  # there are cost rows only when costs were measured
        heading = (
            f"Complexity (MACs counted; latency the median of {costs.repeats} runs on a {costs.size}x"
            f"{costs.size} input after {costs.warmup} warm-up, peak memory of one such pass)"
        )
        sections.append((heading, report.html_table(header, rows), []))
        markdown.append(f"## {heading}\n\n{report.markdown_table(header, rows)}\n")
        report.write_cost_csv(cost_rows, out / "complexity.csv")
    for condition, samples, runs in plan:
        caption = f"{condition.title}: PSNR / SSIM ({condition.protocol.upper()} protocol), {len(samples)} images"
        summary = report.summary_table(scores, condition.slug, runs)
        per_image = report.score_table(scores, condition.slug)
        figure = _crop_figure(condition, samples[: settings.figure_images], runs, scores, cache, out)
        tables = "".join(report.html_table(*table) for table in (summary, per_image))
        sections.append((caption, tables, [(condition.title, figure)]))
        markdown.append(
            f"## {caption}\n\n{report.markdown_table(*summary)}\n\nPer image:\n\n{report.markdown_table(*per_image)}"
            f"\n\n![{condition.slug}](figures/{figure.name})\n"
        )
    for task in settings.tasks:
        plots = _plots(
            task, [c for c, _, _ in plan if c.task == task and not c.passthrough], methods[task], scores, out
        )
        if plots:
            sections.append((f"{task.capitalize()}: quality against cost", "", plots))
            markdown += [f"![{caption}](plots/{Path(path).name})\n" for caption, path in plots]
    sources = report.sources_table(methods)
    sections.append(("Sources: what filled each column", report.html_table(*sources), []))
    markdown.append(f"## Sources: what filled each column\n\n{report.markdown_table(*sources)}\n")
    if notes:
        markdown.append("## Notes\n\n" + "\n".join(f"- {note}" for note in notes) + "\n")
    report.write_scores_csv(scores, out / "results.csv")
    report.write_text(out / "report.md", "\n".join(markdown))
    return report.write_text(out / "report.html", report.html_report(TITLE, sections, facts, notes))


def _crop_figure(
    condition: Condition, samples, methods: list[Method], scores: list[Score], cache: experiments.ResultCache, out: Path
) -> Path:
    """One row per sample: the clean crop, then each method's, labelled with the method's PSNR on the whole image."""
    found = {(s.image, s.method): s for s in scores if s.condition == condition.slug}
    rows = []
    for sample in samples:
        row = [(cache.image_path(condition.slug, sample.name, "clean"), f"clean ({sample.name})")]
        for method in methods:
            score = found.get((sample.name, method.name))
            if score is not None:
                label = f"{method.name.split(' (')[0]} {score.psnr:.2f} dB"
                row.append((cache.image_path(condition.slug, sample.name, method.name), label))
        rows.append(row)
    # JPEG: crops of photographs, a third of the PNG's size (the scores come from the PNGs in cache/, not from this)
    return save_figure(report.crop_grid(condition, rows), out / "figures" / f"{condition.slug}.jpg")


def _plots(
    task: str, conditions: list[Condition], methods: list[Method], scores: list[Score], out: Path
) -> list[tuple[str, Path]]:
    """PSNR (mean over the task's conditions) against GMACs at 256x256 (networks) and seconds per image (all)."""
    slugs = {condition.slug for condition in conditions}
    by_method = {m.name: [s for s in scores if s.condition in slugs and s.method == m.name] for m in methods}
    restorers = [m for m in methods if m.identity != "input" and by_method[m.name]]
    plots = []
    timed = [
        (fmean(s.seconds for s in by_method[m.name]), fmean(s.psnr for s in by_method[m.name]), m.name.split(" (")[0])
        for m in restorers
    ]
    networks = [(m, m.source) for m in restorers if m.source]
    if networks:
        points = [
            (complexity.macs(load_model(source)) / 1e9, fmean(s.psnr for s in by_method[m.name]), m.name)
            for m, source in networks
        ]
        plots.append(
            (
                f"{task}: PSNR vs GMACs",
                save_figure(
                    report.scatter_plot(points, "GMACs at 256x256 (log)", "PSNR (dB)", f"{task}: mean PSNR vs MACs"),
                    out / "plots" / f"{task}-psnr-vs-gmacs.png",
                ),
            )
        )
    if timed:
        plots.append(
            (
                f"{task}: PSNR vs seconds",
                save_figure(
                    report.scatter_plot(
                        timed, "seconds per image on this machine (log)", "PSNR (dB)", f"{task}: mean PSNR vs latency"
                    ),
                    out / "plots" / f"{task}-psnr-vs-seconds.png",
                ),
            )
        )
    return plots


def _facts(settings: StudySettings) -> dict[str, str]:
    cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return {
        "command": settings.command,
        "mprnet": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "hardware": f"{cpu_name()}, {torch.get_num_threads()} threads; CUDA: {cuda}",
        "date": datetime.date.today().isoformat(),
        "seed": str(settings.seed),
        "images": f"{settings.images or 'all'} per condition, crop {settings.crop or 'none'}",
        "tiling": _tiling(settings),
    }


def _tiling(settings: StudySettings) -> str:
    if settings.tile is None:
        return f"tiles chosen from free memory, overlap {settings.overlap}"
    if settings.tile == 0:
        return "none: whole images"
    return f"{settings.tile} px tiles, overlap {settings.overlap}"
