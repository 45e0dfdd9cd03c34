"""HEIC and AVIF photos, as phones write them: read (pillow-heif for HEIF, Pillow's own plugin for AVIF), restored
and written back in their format with their EXIF and ICC profile, or as JPEG with a line that says so where this
system cannot encode the format; and without pillow-heif, left out of a folder with a note."""

import io

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, ImageCms, features

import mprnet.io
from mprnet.cli import main
from mprnet.errors import ImageError
from mprnet.io import image_files, read_image, write_image

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
MAKER = 0x010F  # the EXIF tag of the camera's maker


def smooth_photo(width: int = 48, height: int = 32) -> np.ndarray:
    """An 8-bit RGB gradient: what a lossy codec keeps within a few levels."""
    x, y = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    return (np.stack([x, y, (x + y) / 2], axis=2) * 200 + 20).astype(np.uint8)


def phone_file(path, file_format: str, values: np.ndarray | None = None):
    """A photo as a phone writes it: `file_format` with an EXIF maker tag and an sRGB profile."""
    if file_format == "HEIF":
        pytest.importorskip("pillow_heif").register_heif_opener()
    elif not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    exif = Image.Exif()
    exif[MAKER] = "PhoneMaker"
    values = smooth_photo() if values is None else values
    Image.fromarray(values).save(path, format=file_format, quality=95, exif=exif.tobytes(), icc_profile=SRGB)
    return path


def assert_phone_photo(path, file_format: str, expected: np.ndarray) -> None:
    image = read_image(path)
    assert image.format == file_format
    assert image.icc_profile == SRGB
    exif = Image.Exif()
    exif.load(image.exif)
    assert exif[MAKER] == "PhoneMaker"
    assert image.pixels.shape == expected.shape
    assert np.abs(image.pixels - expected).mean() < 0.02


@pytest.mark.parametrize("file_format, suffix", [("HEIF", ".heic"), ("AVIF", ".avif")])
def test_a_phone_photo_round_trips_with_its_exif_and_profile(tmp_path, file_format, suffix):
    source = phone_file(tmp_path / f"phone{suffix}", file_format)
    assert_phone_photo(source, file_format, smooth_photo() / 255)
    image = read_image(source)
    copy = write_image(tmp_path / f"copy{suffix}", image)
    with Image.open(copy) as written:
        assert written.format == file_format
    assert_phone_photo(copy, file_format, image.pixels)


def test_a_folder_with_a_heic_photo_is_restored_into_heic(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    phone_file(folder / "IMG_0001.HEIC", "HEIF")
    Image.fromarray(smooth_photo()).save(folder / "scan.png")
    assert image_files(folder) == [folder / "IMG_0001.HEIC", folder / "scan.png"]
    code = main(["restore", str(folder), "-o", str(tmp_path / "out"), "--method", "dct", "--sigma", "10"])
    assert code == 0, capsys.readouterr().err
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["IMG_0001.HEIC", "scan.png"]
    restored = tmp_path / "out" / "IMG_0001.HEIC"
    assert_phone_photo(restored, "HEIF", read_image(folder / "IMG_0001.HEIC").pixels)


def test_where_heif_cannot_be_written_the_photo_becomes_a_jpeg_and_a_line_says_so(tmp_path, monkeypatch, capsys):
    source = phone_file(tmp_path / "IMG_0002.heic", "HEIF")
    monkeypatch.setattr(mprnet.io, "cannot_write", lambda file_format: "no HEIF encoder in this build")
    code = main(["restore", str(source), "-o", str(tmp_path / "out"), "--method", "dct", "--sigma", "10"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (
        f"{source}: HEIF cannot be written here (no HEIF encoder in this build): written as JPEG, IMG_0002.jpg" in err
    )
    written = tmp_path / "out" / "IMG_0002.jpg"
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["IMG_0002.jpg"]
    with Image.open(written) as jpeg:
        assert jpeg.format == "JPEG" and jpeg.info["icc_profile"] == SRGB
        assert jpeg.getexif()[MAKER] == "PhoneMaker"
    with pytest.raises(ImageError, match=r"cannot write HEIF here \(no HEIF encoder in this build\)"):
        write_image(tmp_path / "again.heic", read_image(source))


def test_the_heif_decoder_is_offered_only_to_files_that_say_heif(tmp_path, monkeypatch):
    pytest.importorskip("pillow_heif")

    def refuse(*_args, **_kwargs):
        raise AssertionError("Ghostscript was started")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", refuse)
    eps = io.BytesIO()
    Image.new("RGB", (16, 16)).save(eps, format="EPS")
    (tmp_path / "fake.heic").write_bytes(eps.getvalue())
    with pytest.raises(ImageError, match="EPS is not an image format this program reads"):
        read_image(tmp_path / "fake.heic")
    Image.fromarray(smooth_photo()).save(tmp_path / "really-a-png.heic", format="PNG")
    assert read_image(tmp_path / "really-a-png.heic").format == "PNG"
    (tmp_path / "damaged.heic").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    with pytest.raises(ImageError, match="a HEIF file that pillow-heif cannot decode"):
        read_image(tmp_path / "damaged.heic")


def test_without_pillow_heif_a_folder_scan_notes_the_heic_it_leaves_out(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(mprnet.io, "HEIF_INSTALLED", False)
    monkeypatch.setattr(mprnet.io, "IMAGE_SUFFIXES", mprnet.io.IMAGE_SUFFIXES - mprnet.io.HEIF_SUFFIXES)
    (tmp_path / "IMG_0003.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(16))
    with caplog.at_level("WARNING", logger="mprnet.io"):
        assert image_files(tmp_path) == []
    assert [record.getMessage() for record in caplog.records] == [
        f"{tmp_path / 'IMG_0003.heic'}: skipped, HEIF photos are not read (install pillow-heif, or convert it to "
        "JPEG or PNG)"
    ]
    with pytest.raises(ImageError, match="HEIF is not an image format this program reads"):
        read_image(tmp_path / "IMG_0003.heic")
