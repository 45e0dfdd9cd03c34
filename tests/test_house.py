"""The package's structure (issue 38): `import mprnet` stays light, the library names its parameters (not the command
line's flags), a misspelt keyword is an error, the batch engine runs without the command line, uploads are read
from bytes with the file reader's checks, and the classifier's width is the width of every layer."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet.batch import BatchJob, restore_batch
from mprnet.errors import ImageError, MprnetError, UsageError
from mprnet.infer import Engine
from mprnet.io import read_image, read_image_bytes
from mprnet.models.degradation_classifier import DegradationClassifier


def test_import_mprnet_loads_neither_scipy_stats_nor_scikit_image():
    code = "import sys, mprnet; print(sorted(m for m in ('scipy.stats', 'skimage') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_classic_methods_still_load_what_they_use():
    from mprnet.baselines import deblur_blind, get_baseline

    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    assert get_baseline("wavelet")(image, sigma=10).shape == image.shape
    assert callable(deblur_blind)


def test_a_misspelt_keyword_is_an_error_not_ignored(tiny_checkpoint):
    image = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(MprnetError, match="unknown keyword argument sigmaa"):
        mprnet.restore(image, model=tiny_checkpoint, device="cpu", tile=0, sigmaa=3)
    engine = Engine(mprnet.load_model(tiny_checkpoint), device="cpu", tile=0)
    assert engine(image, sigma=5).shape == image.shape  # known values of classic methods pass, as before


def test_library_messages_name_the_parameter_not_the_flag(tiny_checkpoint):
    with pytest.raises(MprnetError) as refused:
        Engine(mprnet.load_model(tiny_checkpoint), device="cpu", tile=4)
    assert "tile=4 is too small" in str(refused.value) and "--" not in str(refused.value)


def test_engine_leaves_the_thread_count_alone(tiny_checkpoint):
    threads = torch.get_num_threads()
    with pytest.raises(TypeError):
        Engine(mprnet.load_model(tiny_checkpoint), device="cpu", threads=threads + 1)  # type: ignore[call-arg]
    assert torch.get_num_threads() == threads


def _photo(path, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_the_batch_engine_runs_without_the_command_line(tmp_path, capsys):
    _photo(tmp_path / "a.png")
    _photo(tmp_path / "b.png", seed=1)
    job = BatchJob(inputs=(str(tmp_path / "a.png"), str(tmp_path / "b.png")), output=tmp_path / "out", method="msdct")
    with pytest.raises(UsageError, match=r"method='msdct' needs sigma$"):
        restore_batch(lambda: job)
    done = restore_batch(lambda: BatchJob(**{**job.__dict__, "sigma": 10.0}))
    assert (done.restored, done.skipped, done.failed) == (2, 0, 0)
    assert read_image(tmp_path / "out" / "a.png").pixels.shape == (24, 32, 3)
    again = restore_batch(lambda: BatchJob(**{**job.__dict__, "sigma": 10.0}))
    assert (again.restored, again.skipped) == (0, 2)  # existing outputs are left alone without overwrite


def test_an_image_read_from_bytes_is_the_file_read_from_disk(tmp_path):
    path = _photo(tmp_path / "a.png")
    from_disk, from_bytes = read_image(path), read_image_bytes(path.read_bytes(), "image")
    assert np.array_equal(from_disk.pixels, from_bytes.pixels) and from_disk.format == from_bytes.format
    with pytest.raises(ImageError, match=r"^image: not a readable image: EPS is not an image format"):
        read_image_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n", "image")


def test_the_classifier_width_sets_every_layer():
    def widths(network):
        return [m.out_features if isinstance(m, torch.nn.Linear) else m.out_channels for m in _layers(network)]

    assert widths(DegradationClassifier(32)) == [32, 48, 64, 96, 96, 64, 5]  # the bundled classifier's layers
    assert widths(DegradationClassifier(16)) == [16, 24, 32, 48, 48, 32, 5]


def _layers(network):
    return [m for m in network.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def test_a_bundled_models_name_is_no_configuration():
    with pytest.raises(ValueError, match=r"no configuration is named 'deblur'.*load_model\('deblur'\)"):
        mprnet.create_model("deblur")
    info = mprnet.describe(mprnet.load_model("deblur"))
    assert (info.architecture, info.task, info.title) == ("mprnet", "deblur", "MPRNet")
    assert info.hparams["n_feat"] == 40 and info.metadata["name"] == "deblur"
    assert mprnet.describe(mprnet.create_model("mprnet-deblur")).hparams["n_feat"] == 96


def test_how_a_network_runs_stays_out_of_its_weights(tmp_path):
    import json

    from safetensors.torch import save_file

    from mprnet.checkpoint import read_metadata, read_weights

    tiny = dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
    model = mprnet.create_model("mprnet", **tiny, batch_patches=False)
    assert "batch_patches" not in mprnet.describe(model).hparams
    path = mprnet.save_weights(model, tmp_path / "tiny.safetensors")
    assert "batch_patches" not in json.loads(read_metadata(path)["config"])
    state_dict, metadata = read_weights(path)
    old = {**metadata, "config": json.dumps({**json.loads(metadata["config"]), "batch_patches": True})}
    save_file(state_dict, tmp_path / "old.safetensors", metadata=old)  # as files made before run options were kept out
    assert mprnet.describe(mprnet.load_model(tmp_path / "old.safetensors")).hparams == mprnet.describe(model).hparams
