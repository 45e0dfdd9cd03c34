"""Write the bundled models' cards (src/mprnet/weights/<name>.md) from what was measured: each file's metadata
(architecture, training recipe, hardware), its training log (docs/training/<name>_log.jsonl), the study's scores
(docs/study/results.csv, written by `mprnet study --out docs/study`) and a note per model
(docs/results/card_notes.json).

    python scripts/write_model_cards.py
"""

from __future__ import annotations

import json
from pathlib import Path

from mprnet.checkpoint import bundled_models, load_model
from mprnet.complexity import count_parameters
from mprnet.models.registry import create_model, get_architecture
from mprnet.study.experiments import passthrough_conditions, synthetic_conditions
from mprnet.study.report import mean_scores, read_scores_csv
from mprnet.train.config import load_config, recipe

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "docs" / "study"
LOGS = ROOT / "docs" / "training"
NOTES = ROOT / "docs" / "results" / "card_notes.json"

TRAINING_DATA = {
    "denoise": (
        "blind Gaussian noise, sigma uniform in 0-50 (0-255 scale), with 20% Poisson-Gaussian sensor noise "
        "(variance a*x + b); validation at sigma 25"
    ),
    "deblur": (
        "camera-shake kernels (random trajectories in the manner of Boracchi and Foi, 2012), 7-31 px, then "
        "Gaussian noise of 1% (sigma 2.55); validation on the same kind of blur"
    ),
    "derain": (
        "synthetic rain-streak layers, light (Rain100L-like) or heavy (Rain100H-like, several layers) with "
        "equal probability; validation on the same mixture, Y-channel PSNR"
    ),
}


def validation_curve(name: str) -> list[tuple[int, float]]:
    path = LOGS / f"{name}_log.jsonl"
    if not path.exists():
        return []
    points = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if "validation" in entry:
            points[entry["validation"]["step"]] = entry["validation"]["psnr"]
    return sorted(points.items())


def architecture_line(model) -> str:
    architecture = get_architecture(model.architecture)
    presets = [f"{architecture.name}-{name}" for name in architecture.presets]
    preset = next((name for name in presets if create_model(name).hparams == model.hparams), None)
    if preset:
        return f"{architecture.description}; the configuration of preset `{preset}`"
    return f"{architecture.description}; {', '.join(f'{key}={value}' for key, value in model.hparams.items())}"


def recipe_line(name: str, architecture: str, task: str, metadata: dict) -> str:
    """The loss (from the trainer's own description of it), optimizer and schedule the model was trained with."""
    if "recipe" in metadata:
        settings = json.loads(metadata["recipe"])
    else:  # weights packaged before their recipe was recorded: the bundled config as it was then (no clean share,
        # the schedule over the time budget)
        settings = {**recipe(load_config(f"bundled-{name}")), "clean_share": 0.0, "schedule_follows_budget": True}
    loss = " ".join(get_architecture(architecture).loss.__doc__.split(":", 1)[-1].split()).rstrip(".")
    parts = [
        loss[0].upper() + loss[1:],
        f"{settings['optimizer'].capitalize()} (betas {'/'.join(map(str, settings['betas']))}"
        + (f", weight decay {settings['weight_decay']:g}" if settings["weight_decay"] else "")
        + ")",
    ]
    schedule = f"lr {settings['lr']:g}"
    if settings["warmup_steps"]:
        schedule += f" after {settings['warmup_steps']} warm-up steps"
    schedule += {
        "cosine": f", cosine decay to {settings['lr_min']:g}",
        "poly": f", polynomial decay (power {settings['poly_power']:g}) to {settings['lr_min']:g}",
        "step": f", times {settings['step_gamma']:g} every {settings['step_every']} steps",
    }[settings["schedule"]]
    if settings["time_budget_s"] and settings.get("schedule_follows_budget", True):
        schedule += " over a fixed time budget"
    elif "schedule" in metadata:
        schedule += f" over a plan of {json.loads(metadata['schedule'])['plan']['steps']} steps"
    parts.append(schedule)
    if settings["grad_clip"]:
        parts.append(f"gradients clipped at norm {settings['grad_clip']:g}")
    if settings.get("clean_share"):
        parts.append(f"{settings['clean_share']:.0%} of the inputs left clean")
    patch = metadata.get("patch_size")
    parts.append(f"{metadata.get('batch_size')} patches of {patch}x{patch} per step; {seen_line(metadata)}")
    return "; ".join(parts)


def seen_line(metadata: dict) -> str:
    """How much training the model has had over all its runs."""
    if "seen" not in metadata:
        return f"{metadata.get('steps')} steps in all"
    seen = json.loads(metadata["seen"])
    return f"{seen['steps']} steps and {seen['patches']:,} patches over {seen['runs']} run(s)"


def quality_table(task: str, method: str) -> str:
    """The study's mean scores on every condition of the task; this model's rows in bold."""
    conditions = [c for c in synthetic_conditions() + passthrough_conditions() if c.task == task]
    means = mean_scores(read_scores_csv(STUDY / "results.csv"))
    rows = ["| condition | method | PSNR (dB) | SSIM | s / image (2-core CPU) |", "|---|---|---|---|---|"]
    for condition in conditions:
        for (slug, name), score in means.items():
            if slug == condition.slug:
                bold = "**" if name == method else ""
                rows.append(
                    f"| {condition.title} | {bold}{name}{bold} | {bold}{score.psnr:.2f}{bold} | "
                    f"{score.ssim:.4f} | {score.seconds:.2f} |"
                )
    return "\n".join(rows)


def card(name: str, path: Path, notes: str) -> str:
    model = load_model(path)
    metadata = model.metadata
    task = metadata["task"]
    curve = ", ".join(f"{step}: {psnr:.2f}" for step, psnr in validation_curve(name)) or "not recorded"
    return f"""# Bundled model `{name}`

{metadata.get("summary", "")}

- Architecture: {architecture_line(model)}; {count_parameters(model) / 1e6:.2f} M parameters, stored in fp16
  ({path.stat().st_size / 1e6:.1f} MB).
- Training data: BSDS432 (432 clean photos, `../shared/data/train/bsds432`) with on-the-fly synthetic degradation:
  {TRAINING_DATA[task]}. Never trained on the validation photos (McMaster18).
- Recipe: {recipe_line(name, model.architecture, task, metadata)}.
- Hardware and time: {metadata.get("hardware")}; {metadata.get("wall_time")}.
- Reproduce: `{metadata.get("command")}`, then `python scripts/package_weights.py OUT/..._best.safetensors {name} ...`.
- Validation PSNR (centre crops of 256x256 of McMaster18: 6 in the first run, 18 since) by step: {curve}.

## Measured by the study (McMaster18, centre crops of 256x256, 18 photos, seeded degradations)

`mprnet study`, whose report is in `docs/study/report.md`. Non-blind baselines are given the true
sigma or kernel; deraining is scored on the Y channel; "clean photos" rows give the PSNR of a model's output against
its undegraded input.

{quality_table(task, get_architecture(model.architecture).title)}

## What this model is and is not

{notes}
"""


def main() -> None:
    notes = json.loads(NOTES.read_text())
    for name, path in bundled_models().items():
        path.with_suffix(".md").write_text(card(name, path, notes.get(name, "")))
        print(f"wrote {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
