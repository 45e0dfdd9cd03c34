"""Write the bundled models' cards (src/mprnet/weights/<name>.md) from what was measured: each file's metadata,
its training log (docs/training/<name>_log.jsonl) and the quality benchmark (docs/results/bundled_quality.json).

    python scripts/write_model_cards.py
"""
from __future__ import annotations

import json
from pathlib import Path

from mprnet.checkpoint import bundled_models, read_weights
from mprnet.complexity import count_parameters
from mprnet.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[1]
QUALITY = ROOT / "docs" / "results" / "bundled_quality.json"
LOGS = ROOT / "docs" / "training"

#: Which benchmark conditions belong on each card, and what the card must say plainly.
CONDITIONS = {
    "denoise": ["denoise sigma 10", "denoise sigma 20", "denoise sigma 40", "clean photo through denoise"],
    "deblur": ["deblur shake <=31 px, 1% noise", "clean photo through deblur"],
    "derain": ["derain light", "derain heavy", "clean photo through derain"],
}
TRAINING = {
    "denoise": "blind Gaussian noise, sigma uniform in 0-50 (0-255 scale), with 20% Poisson-Gaussian sensor noise "
               "(variance a*x + b); validation at sigma 25",
    "deblur": "camera-shake kernels (random trajectories in the manner of Boracchi and Foi, 2012), 7-31 px, then "
              "Gaussian noise of 1% (sigma 2.55); validation on the same kind of blur",
    "derain": "synthetic rain-streak layers, light (Rain100L-like) or heavy (Rain100H-like, several layers) with "
              "equal probability; validation on the same mixture, Y-channel PSNR",
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


def quality_table(name: str, results: dict) -> str:
    rows = ["| condition | method | PSNR (dB) | SSIM | s / image (2-core CPU) |", "|---|---|---|---|---|"]
    for condition in CONDITIONS[name]:
        for method, figures in results.get(condition, {}).items():
            rows.append(f"| {condition} | {method} | {figures['psnr']:.2f} | {figures['ssim']:.4f} | "
                        f"{figures['seconds']:.2f} |")
    return "\n".join(rows)


def card(name: str, path: Path, quality: dict, notes: str) -> str:
    _, metadata = read_weights(path)
    model = load_model(path)
    curve = validation_curve(name)
    curve_text = ", ".join(f"{step}: {psnr:.2f}" for step, psnr in curve) or "not recorded"
    config = json.loads(metadata["config"])
    crop = quality.get("crop")
    return f"""# Bundled model `{name}`

{metadata.get('summary', '')}

- Architecture: MPRNet (Zamir et al., CVPR 2021), exact published network; configuration
  n_feat={config['n_feat']}, scale_unetfeats={config['scale_unetfeats']},
  scale_orsnetfeats={config['scale_orsnetfeats']}, num_cab={config['num_cab']} (the published deraining width),
  {count_parameters(model) / 1e6:.2f} M parameters, stored in fp16 ({path.stat().st_size / 1e6:.1f} MB).
- Training data: BSDS432 (432 clean photos, `../shared/data/train/bsds432`) with on-the-fly synthetic degradation:
  {TRAINING[name]}. Never trained on the validation photos (McMaster18).
- Recipe: Charbonnier loss summed over the three stages{'' if name == 'denoise' else ' + 0.05 x edge loss'},
  Adam (0.9, 0.999), lr 4e-4 after 300 warm-up steps, cosine decay to 1e-6 over a fixed time
  budget, gradient clipping at 1, bf16 autocast, channels-last; {metadata.get('batch_size')} patches of
  {metadata.get('patch_size')}x{metadata.get('patch_size')} per step; {metadata.get('steps')} steps in all.
- Hardware and time: {metadata.get('hardware')}; {metadata.get('wall_time')}.
- Reproduce: `{metadata.get('command')}` (config `bundled-{name}`), then
  `python scripts/package_weights.py OUT/{name}_best.safetensors {name} ...`.
- Validation PSNR (6 centre crops of 256x256 of McMaster18) by step: {curve_text}.

## Measured on McMaster18 ({'centre crops of ' + str(crop) + 'x' + str(crop) if crop else 'whole images'}, 18 photos, seeded degradations)

`python benchmarks/bundled_quality.py --crop {crop}`; baselines given the true sigma or kernel where they are
non-blind; derain figures on the Y channel.

{quality_table(name, quality.get('results', {}))}

## What this model is and is not

{notes}
"""


def main() -> None:
    quality = json.loads(QUALITY.read_text()) if QUALITY.exists() else {}
    notes = json.loads((ROOT / "docs" / "results" / "card_notes.json").read_text())
    for name, path in bundled_models().items():
        if name in CONDITIONS:
            path.with_suffix(".md").write_text(card(name, path, quality, notes.get(name, "")))
            print(f"wrote {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
