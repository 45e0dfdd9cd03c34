import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import mprnet
from mprnet.errors import MprnetError
from mprnet.losses import charbonnier, edge_loss, laplacian
from mprnet.models.mprnet import training_loss as mprnet_loss
from mprnet.tasks import TASK_NAMES
from mprnet.train import Trainer, learning_rate, load_config, train
from mprnet.train.loop import training_memory_format
from mprnet.train.validation import validate, validation_pairs

TINY = {"name": "mprnet", "n_feat": 8, "scale_unetfeats": 4, "scale_orsnetfeats": 4, "num_cab": 1}


def _paired_folder(root: Path, count: int = 2, size: int = 32, sigma: float = 0.1) -> Path:
    rng = np.random.default_rng(0)
    for folder in ("input", "target"):
        (root / folder).mkdir(parents=True)
    for index in range(count):
        clean = rng.random((size, size, 3)) * 0.5 + np.linspace(0, 0.5, size)[None, :, None]
        noisy = np.clip(clean + sigma * rng.standard_normal(clean.shape), 0, 1)
        Image.fromarray(np.uint8(clean * 255)).save(root / "target" / f"{index}.png")
        Image.fromarray(np.uint8(noisy * 255)).save(root / "input" / f"{index}.png")
    return root


def _config(tmp_path: Path, data: Path, **settings) -> Path:
    values = {
        "task": "denoise",
        "model": TINY,
        "data": {"paired_dir": str(data), "workers": 0},
        "steps": 6,
        "batch_size": 2,
        "patch_size": 32,
        "lr": 1e-3,
        "warmup_steps": 2,
        "precision": "fp32",
        "checkpoint_every": 3,
        "log_every": 1,
        "out_dir": str(tmp_path / "run"),
    }
    values.update(settings)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _weights(path: Path) -> dict:
    return mprnet.load_model(path).state_dict()


def test_learning_rate_warms_up_then_decays_to_the_minimum(tmp_path):
    config = load_config(_config(tmp_path, tmp_path, steps=100, warmup_steps=10, lr=1e-3, lr_min=1e-6))
    rates = [learning_rate(config, step) for step in range(101)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))
    assert rates[100] == pytest.approx(1e-6)
    assert learning_rate(config, 20, time_share=1.0) == pytest.approx(1e-6)


def test_losses_follow_the_recipe():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 16, 16)
    assert float(charbonnier(target, target)) == pytest.approx(1e-3)
    flat = torch.full((1, 3, 16, 16), 0.5)
    assert laplacian(flat)[..., 4:-4, 4:-4].abs().max() < 1e-6  # away from the padded border
    outputs = [target + 0.1, target, target]
    assert float(mprnet_loss("denoise")(outputs, target)) == pytest.approx(
        float(charbonnier(target + 0.1, target)) + 2e-3, rel=1e-5
    )
    deblur = mprnet_loss("deblur")(outputs, target)
    assert deblur > mprnet_loss("denoise")(outputs, target)
    shift = edge_loss(target + 0.1, target)
    assert float(shift) < float(edge_loss(target * 1.5, target))  # a constant shift leaves edges almost unchanged


@pytest.mark.slow  # 6-7 s of training: make test-slow and CI run it
def test_a_tiny_network_overfits_two_pairs(tmp_path):
    data = _paired_folder(tmp_path / "pairs")
    config = load_config(
        _config(
            tmp_path,
            data,
            steps=80,
            lr=2e-3,
            warmup_steps=5,
            val={"dir": str(data), "count": 2, "crop": 32, "every": 80},
        )
    )
    torch.manual_seed(0)
    trainer = Trainer(config)
    before = validate(trainer.model, trainer.validation, "denoise", torch.device("cpu"), "fp32")["psnr"]
    summary = trainer.run()
    assert summary["history"][-1]["psnr"] > before + 3
    exported = mprnet.load_model(Path(config.out_dir) / "best.safetensors")
    assert exported.metadata["task"] == "denoise" and json.loads(exported.metadata["steps"]) == 80
    log = [json.loads(line) for line in (Path(config.out_dir) / "log.jsonl").read_text().splitlines()]
    assert log[0]["start"]["step"] == 0 and log[0]["start"]["config"]["lr"] == config.lr
    assert log[0]["start"]["layout"] == trainer.layout and log[0]["start"]["precision"] == trainer.precision
    assert {"loss", "lr", "patches_per_s"} <= set(log[1]) and any("validation" in entry for entry in log)


@pytest.mark.parametrize(
    ("device", "precision", "native_bf16", "expected"),
    [
        ("cuda", "bf16", False, torch.channels_last),
        ("cpu", "bf16", True, torch.channels_last),
        ("cpu", "bf16", False, torch.contiguous_format),
        ("cpu", "fp32", True, torch.contiguous_format),
    ],
)
def test_training_layout_follows_what_the_processor_has(monkeypatch, device, precision, native_bf16, expected):
    monkeypatch.setattr("mprnet.train.loop.cpu_has_fast_bf16", lambda: native_bf16)
    assert training_memory_format(torch.device(device), precision) == expected


def test_kill_and_resume_ends_with_the_same_weights(tmp_path, monkeypatch):
    data = _paired_folder(tmp_path / "pairs")
    whole = load_config(_config(tmp_path / "a", data))
    train(whole)
    reference = _weights(Path(whole.out_dir) / "last.safetensors")

    interrupted = load_config(_config(tmp_path / "b", data))
    original = Trainer._after_step

    def crash_after_checkpoint(self, *args):
        original(self, *args)
        if self.step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_after_step", crash_after_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted)
    monkeypatch.setattr(Trainer, "_after_step", original)
    assert torch.load(Path(interrupted.out_dir) / "last.pt", weights_only=True)["step"] == 3
    train(interrupted, resume=True)
    resumed = _weights(Path(interrupted.out_dir) / "last.safetensors")
    assert all(torch.equal(resumed[key], reference[key]) for key in reference)


@pytest.mark.slow
def test_two_processes_under_torchrun_equal_one_process_with_the_combined_batch(tmp_path):
    data = _paired_folder(tmp_path / "pairs", count=4)
    single = load_config(_config(tmp_path / "one", data, steps=4, batch_size=2))
    train(single)
    config = _config(tmp_path / "two", data, steps=4, batch_size=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(mprnet.__file__).parents[1])}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "mprnet",
            "train",
            str(config),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    one = _weights(Path(single.out_dir) / "last.safetensors")
    two = _weights(tmp_path / "two" / "run" / "last.safetensors")
    # Equal up to float rounding, amplified a little by Adam: far below one step's update (lr = 1e-3), which is what
    # a different split of the data would change.
    assert max(float((one[key] - two[key]).abs().max()) for key in one) < 1e-4


def test_non_finite_losses_skip_steps_then_stop_the_run(tmp_path, monkeypatch):
    data = _paired_folder(tmp_path / "pairs")
    config = load_config(_config(tmp_path, data, max_bad_steps=3))
    trainer = Trainer(config)
    monkeypatch.setattr(trainer.objective, "loss_fn", lambda outputs, target: outputs[0].sum() * float("nan"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.warns(UserWarning, match="non-finite loss"), pytest.raises(MprnetError, match="not finite for 3 steps"):
        trainer.run()
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_validation_pairs_from_clean_photos_are_seeded(tmp_path):
    data = _paired_folder(tmp_path / "pairs")
    config = load_config(
        _config(tmp_path, data, val={"dir": str(data / "target"), "level": 25, "count": 2, "crop": 16})
    )
    first, second = validation_pairs(config), validation_pairs(config)
    assert len(first) == 2 and first[0][0].shape == (16, 16, 3)
    assert np.array_equal(first[0][0], second[0][0]) and not np.array_equal(first[0][0], first[0][1])


def test_a_share_of_synthetic_inputs_is_left_clean(tmp_path):
    from mprnet.train.objectives import training_patches

    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        Image.fromarray(np.random.default_rng(index).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
            photos / f"{index}.png"
        )
    config = load_config(_config(tmp_path, photos, patch_size=16))
    config.data = type(config.data)(clean_dir=str(photos), level=25, clean_share=0.5, workers=0)
    pairs = [training_patches(config, 40)[index] for index in range(40)]
    unchanged = sum(bool(torch.equal(degraded, clean)) for degraded, clean in pairs)
    assert 8 <= unchanged <= 32


def test_a_share_of_synthetic_pairs_is_black_and_white_with_the_same_noise_in_every_channel(tmp_path):
    from mprnet.train.objectives import training_patches

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(photos / "0.png")
    config = load_config(_config(tmp_path, photos, patch_size=16))
    config.data = type(config.data)(clean_dir=str(photos), level=25, gray_share=0.5, workers=0)
    pairs = [training_patches(config, 40)[index] for index in range(40)]
    gray = [bool(torch.equal(clean[0], clean[1]) and torch.equal(clean[1], clean[2])) for _, clean in pairs]
    assert 8 <= sum(gray) <= 32
    for (degraded, clean), black_and_white in zip(pairs, gray):
        assert degraded.shape == clean.shape == (3, 16, 16) and not torch.equal(degraded, clean)
        assert torch.equal(degraded[0], degraded[2]) == black_and_white  # gray noise, not colour noise on gray


@pytest.mark.parametrize(
    "content,message",
    [
        ("steps: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("data: {clean_dir: x}\nstepz: 3\n", "unknown setting"),
        ("steps: 3\n", "clean_dir"),
        ("data: {clean_dir: x, clean_share: 1.0}\n", "clean_share"),
        ("data: {clean_dir: x, gray_share: 1.5}\n", "gray_share"),
        ("task: diagnose\npatch_size: 96\ndata: {clean_dir: x, level: 25}\n", "remove data.level"),
        ("task: diagnose\ndata: {clean_dir: x}\n", "set patch_size: 96"),
        ("task: diagnose\npatch_size: 96\ndata: {paired_dir: x}\n", "remove data.paired_dir"),
    ],
)
def test_bad_configs_get_clear_messages(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(MprnetError, match=message):
        load_config(path)


def test_cli_train_and_resume_errors(tmp_path, capsys):
    from mprnet.cli import main

    data = _paired_folder(tmp_path / "pairs")
    config = _config(tmp_path, data, steps=2)
    assert main(["train", str(config), "--set", "checkpoint_every=1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 2
    assert main(["train", str(config), "--set", f"out_dir={tmp_path / 'empty'}", "--resume"]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 1


def test_every_bundled_config_loads_with_the_task_its_name_says():
    names = sorted(path.stem for path in (Path(mprnet.__file__).parent / "train" / "configs").glob("*.yaml"))
    assert {"bundled-denoise", "bundled-deblur", "bundled-derain", "classifier", "denoise-tiny"} <= set(names)
    for name in names:
        said = ["diagnose"] if name == "classifier" else [task for task in TASK_NAMES if task in name.split("-")]
        assert [load_config(name).task] == said, name  # a name that says no task, or two, fails too


@pytest.mark.parametrize(
    "setting, message",
    [
        ("steps=abc", "steps must be a whole number, found 'abc'"),
        ("lr=abc", "lr must be a number, found 'abc'"),
        ("patch_size=abc", "patch_size must be a whole number"),
        ("steps=-1", "steps must be at least 1, found -1"),
        ("steps=0", "steps must be at least 1"),
        ("steps=2.5", "steps must be a whole number"),
        ("batch_size=true", "batch_size must be a whole number, found True"),
        ("lr=0", "lr must be above 0"),
        ("lr=.nan", "lr must be above 0"),
        ("betas=[0.9]", "betas must be a list of 2 numbers"),
        ("grad_clip=-1", "grad_clip must be above 0"),
        ("precision=fp8", "precision must be one of"),
        ("task=sharpen", "task must be one of"),
        ("data.workers=-1", "data.workers must be at least 0"),
        ("val.crop=abc", "crop must be a whole number"),
        ("device=bogus", "unknown device 'bogus'"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, capsys, setting, message):
    from mprnet.cli import main

    config = _config(tmp_path, _paired_folder(tmp_path / "pairs"), steps=2)
    assert main(["train", str(config), "--set", setting]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_missing_training_data_is_refused_before_anything_is_written(tmp_path, capsys):
    from mprnet.cli import main

    config = _config(tmp_path, tmp_path / "nowhere", steps=2)
    assert main(["train", str(config)]) == 1
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_validation_leaves_cpu_training_in_its_own_layout_and_mode(tmp_path):
    config = load_config(_config(tmp_path, _paired_folder(tmp_path / "pairs"), steps=2))
    config.val.dir = str(tmp_path / "pairs")
    trainer = Trainer(config)
    trainer.model.train()
    validate(trainer.model, trainer.validation, "denoise", trainer.device, "fp32")
    weights = [p for p in trainer.model.parameters() if p.ndim == 4]
    assert trainer.model.training and all(p.is_contiguous() for p in weights)


def _photo_folder(folder: Path, size: int = 128) -> Path:
    from mprnet.demo import sample_photos

    folder.mkdir(parents=True)
    for name, photo in sample_photos(size).items():
        Image.fromarray(np.round(photo * 255).astype(np.uint8)).save(folder / f"{name}.png")
    return folder


def test_the_degradation_classifier_trains_through_the_trainer(tmp_path, capsys):
    from mprnet.cli import main
    from mprnet.diagnose import load_classifier

    photos = _photo_folder(tmp_path / "photos")

    def run(out_dir: Path, *extra: str, **settings) -> dict:
        values = {"data.clean_dir": photos, "data.workers": 0, "val.dir": photos, "val.count": 96, "out_dir": out_dir}
        values |= settings
        arguments = [part for key, value in values.items() for part in ("--set", f"{key}={value}")]
        assert main(["train", "classifier", *arguments, *extra]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    run(tmp_path / "fresh", steps=40, batch_size=8, log_every=1, **{"val.every": 40})
    log = [json.loads(line) for line in (tmp_path / "fresh" / "log.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 40 and np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    assert {"accuracy", "sigma_error"} <= set(next(entry["validation"] for entry in log if "validation" in entry))

    tuned = run(tmp_path / "tuned", "--init-weights", "classifier", steps=2, batch_size=8, lr="1.0e-7")
    assert tuned["start_accuracy"] > 0.8 and tuned["val_accuracy"] > 0.8  # four classes: chance is 0.25
    network = load_classifier(tmp_path / "tuned" / "last.safetensors")  # the classifier's own loader reads the export
    assert sum(parameter.numel() for parameter in network.parameters()) < 300_000


@pytest.mark.slow
def test_init_weights_are_the_model_before_the_first_step(tmp_path):
    from mprnet.diagnose import load_classifier

    data = _paired_folder(tmp_path / "pairs")
    first = load_config(_config(tmp_path / "a", data, steps=2))
    train(first)
    exported = Path(first.out_dir) / "last.safetensors"
    continued = Trainer(load_config(_config(tmp_path / "b", data), {"init_weights": str(exported)}))
    assert all(torch.equal(value, _weights(exported)[key]) for key, value in continued.model.state_dict().items())
    assert json.loads(mprnet.load_model(exported).metadata["recipe"])["init_weights"] is None

    photos = _photo_folder(tmp_path / "photos")
    settings = {"init_weights": "classifier", "data.clean_dir": str(photos), "val.dir": None}
    tuned = Trainer(load_config("classifier", settings))
    bundled = load_classifier().state_dict()
    assert all(torch.equal(value, bundled[key]) for key, value in tuned.model.state_dict().items())


@pytest.mark.parametrize(
    "config, weights, message",
    [
        ("tiny", "wider", "the weights do not fit mprnet"),
        ("tiny", "classifier", "neither a weights file nor a bundled model"),
        ("classifier", "denoise", "no such file"),
        ("classifier", "wider", "not a degradation classifier's weights"),
    ],
)
def test_init_weights_that_do_not_fit_get_one_line(tmp_path, capsys, config, weights, message):
    from mprnet.cli import main

    data = _paired_folder(tmp_path / "pairs")
    if weights == "wider":
        wider = load_config(_config(tmp_path / "wider", data, steps=1, model={**TINY, "n_feat": 12}))
        train(wider)
        weights = str(Path(wider.out_dir) / "last.safetensors")
    path = _config(tmp_path, data) if config == "tiny" else "classifier"
    photos = _photo_folder(tmp_path / "photos")
    arguments = ["--set", f"data.clean_dir={photos}", "--set", f"out_dir={tmp_path / 'run'}"] * (path == "classifier")
    assert main(["train", str(path), "--init-weights", weights, *arguments]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # 6-7 s of training: make test-slow and CI run it
def test_the_classifier_script_trains_and_bundles_with_what_the_run_was(tmp_path):
    from safetensors import safe_open

    from mprnet.diagnose import load_classifier

    photos = _photo_folder(tmp_path / "photos")
    settings = {"data.clean_dir": photos, "data.workers": 0, "val.dir": photos, "val.count": 16, "val.every": 2}
    settings |= {"steps": 4, "batch_size": 4, "out_dir": tmp_path / "run"}
    out = tmp_path / "bundled.safetensors"
    arguments = [part for key, value in settings.items() for part in ("--set", f"{key}={value}")]
    script = Path(__file__).parents[1] / "scripts" / "train_classifier.py"
    done = subprocess.run([sys.executable, script, *arguments, "--out", out], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "held-out patch accuracy" in done.stdout and str(out) in done.stdout
    load_classifier(out)
    with safe_open(str(out), "pt") as weights:
        metadata = dict(weights.metadata())  # as save_weights writes it: text as it is, other values as JSON
    steps, examples = json.loads(metadata["steps"]), json.loads(metadata["examples"])
    assert steps in (2, 4) and examples == 4 * steps
    assert metadata["training_photos"] == str(photos) and 0 <= json.loads(metadata["held_out_patch_accuracy"]) <= 1
    assert "threads" in metadata["hardware"] and "--set" in metadata["command"]
    assert metadata["architecture"] == "degradation-classifier" and json.loads(metadata["config"])["width"] == 32

    missing = subprocess.run([sys.executable, script, "--from-run", tmp_path / "none"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such run folder" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.slow  # 6-7 s of training: make test-slow and CI run it
def test_a_run_from_trained_weights_ships_a_best_model_only_where_it_beats_them(tmp_path, capsys):
    from mprnet.cli import main

    data = _paired_folder(tmp_path / "pairs")
    validation = {"dir": str(data), "count": 2, "crop": 32, "every": 20}
    weak = load_config(_config(tmp_path / "weak", data, steps=2))
    train(weak)
    start = str(Path(weak.out_dir) / "last.safetensors")

    better = _config(tmp_path / "better", data, steps=60, lr=2e-3, warmup_steps=5, val=validation)
    assert main(["train", str(better), "--init-weights", start]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["beat_start"] and summary["best_psnr"] > summary["start_psnr"]
    run = tmp_path / "better" / "run"
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[1]["validation"]["step"] == 0 and log[1]["validation"]["start_weights"] == start
    assert log[-1]["start_weights"]["beaten"] and (run / "best.safetensors").exists()

    worse = _config(tmp_path / "worse", data, steps=20, lr=0.03, warmup_steps=0, val=validation)  # diverges
    assert main(["train", str(worse), "--init-weights", start]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert not summary["beat_start"] and summary["val_psnr"] < summary["start_psnr"] == summary["best_psnr"]
    assert "no validation beat the starting weights" in captured.err
    assert not (tmp_path / "worse" / "run" / "best.safetensors").exists()


def _logged_rates(run: Path) -> dict[int, float]:
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {entry["step"]: entry["lr"] for entry in log if "lr" in entry}


@pytest.mark.slow  # 6-7 s of training: make test-slow and CI run it
def test_a_run_split_in_two_follows_the_learning_rate_curve_of_one_run(tmp_path, monkeypatch):
    from mprnet.checkpoint import read_metadata

    data = _paired_folder(tmp_path / "pairs")
    plan = {"steps": 30, "warmup_steps": 5, "lr": 1e-3, "lr_min": 1e-5, "checkpoint_every": 1000}
    whole = load_config(_config(tmp_path / "whole", data, **plan))
    train(whole)

    slot = {"time_budget_s": 600, "schedule_follows_budget": False}
    first = load_config(_config(tmp_path / "first", data, **plan, **slot))
    with monkeypatch.context() as patch:  # the slot's clock runs out after step 12
        patch.setattr(Trainer, "time_share", lambda self: float(self.step >= 12))
        train(first)
    exported = Path(first.out_dir) / "last.safetensors"
    assert json.loads(read_metadata(exported)["schedule"])["position"] == 12

    second = load_config(_config(tmp_path / "second", data, **plan), {"init_weights": str(exported)})
    summary = train(second)
    assert summary["schedule"] == "continued at step 12 of the planned 30" and summary["step"] == 30
    split = _logged_rates(Path(first.out_dir)) | _logged_rates(Path(second.out_dir))
    assert sorted(split) == list(range(1, 31)) and split == _logged_rates(Path(whole.out_dir))
    assert summary["seen"] == {"steps": 30, "patches": 60, "runs": 2}
    assert json.loads(read_metadata(Path(second.out_dir) / "last.safetensors")["seen"])["runs"] == 2

    start = {"init_weights": str(exported)}
    budgeted = Trainer(load_config(_config(tmp_path / "budgeted", data, **plan, time_budget_s=600), start))
    assert budgeted.step == 0 and budgeted.schedule_note == "new schedule: it follows this run's time budget"
    replanned = Trainer(load_config(_config(tmp_path / "replanned", data, **{**plan, "lr": 5e-4}), start))
    assert replanned.step == 0 and replanned.schedule_note.endswith("(lr differ)")


def test_what_weights_have_seen_is_read_from_their_metadata():
    from mprnet.train.lineage import Seen

    assert Seen.of({"seen": json.dumps({"steps": 5, "patches": 80, "runs": 2})}) == Seen(5, 80, 2)
    assert Seen.of({"steps": "2781", "batch_size": "16"}) == Seen(2781, 44496, 1)  # exported before `seen`
    assert Seen.of({}) == Seen() and Seen(5, 80, 2).plus(3, 48) == Seen(8, 128, 3)


def test_a_network_that_fails_to_compile_trains_eagerly_with_a_warning(tmp_path, monkeypatch):
    class Uncompilable(torch.nn.Module):
        def __init__(self, network):
            super().__init__()
            self.network = network

        def forward(self, *inputs):
            raise RuntimeError("backend compiler failed\nand a long trace")

    monkeypatch.setattr(torch, "compile", Uncompilable)
    data = _paired_folder(tmp_path / "pairs")
    config = load_config(_config(tmp_path, data, steps=6, log_every=3), {"compile": True})
    with pytest.warns(UserWarning, match="torch.compile failed, training eagerly: backend compiler failed$"):
        summary = train(config)
    assert summary["step"] == 6
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log if "loss" in entry] == [3, 6]  # the loss is looked at every log_every
