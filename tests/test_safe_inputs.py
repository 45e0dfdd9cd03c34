"""Files that are not what their names say, or that ask for more than they hold: EPS and PDF named as photos,
kernels whose headers claim gigabytes, 32-bit and floating-point TIFFs, images their suffix's format cannot hold.
Each is read faithfully or refused with one line, on the command line, through the API and on the server, and no
decoder outside the project's raster formats ever runs."""

import io
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

import mprnet.io
from mprnet.baselines import load_kernel
from mprnet.baselines.deconv import MAX_KERNEL_SIDE
from mprnet.cli import main
from mprnet.errors import BaselineError, ImageError, MprnetError
from mprnet.io import ImageData, image_files, output_format, pil_to_pixels, read_image, write_image

tifffile = pytest.importorskip("tifffile")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402

from test_fuzz import FUZZ, mutated  # noqa: E402

RNG = np.random.default_rng(7)
U32_TOP = 2**32 - 1


def eps_bytes(mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (16, 16), 128 if mode == "L" else (10, 20, 30)).save(buffer, format="EPS")
    return buffer.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
FOREIGN = "not a readable image: {} is not an image format this program reads"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)


def npy_header_only(shape, descr: str = "<f8") -> bytes:
    """A .npy file whose header claims `shape`, followed by a few bytes of data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + bytes(64)


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def png_bytes(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")
    return buffer.getvalue()


def tiff_bytes(values: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, values, metadata=None, **options)
    return buffer.getvalue()


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def no_ghostscript(monkeypatch):
    """Every test fails if Pillow would start Ghostscript."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("Ghostscript was started")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", refuse)


def restore_cli(source: Path, out: Path, *options: str) -> int:
    return main(["restore", str(source), "--method", "dct", "--sigma", "10", "-o", str(out), *options])


def assert_one_line_refusal(capsys, code: int, words: str) -> None:
    captured = capsys.readouterr()
    assert code == 1
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], captured.err
    assert "Traceback" not in captured.err


# 4. Only the project's raster formats are decoded, whatever the file's name.


@pytest.mark.parametrize(
    "data, name, words",
    [
        (eps_bytes("L"), "gray.png", FOREIGN.format("EPS")),
        (eps_bytes("RGB"), "colour.png", FOREIGN.format("EPS")),
        (PDF, "scan.jpg", FOREIGN.format("PDF")),
        (HEIC, "phone.jpg", FOREIGN.format("HEIF")),
    ],
)
def test_foreign_formats_named_as_photos_are_refused_by_name(tmp_path, monkeypatch, data, name, words):
    monkeypatch.setattr(mprnet.io, "HEIF_INSTALLED", False)  # HEIF is foreign without pillow-heif (see test_heif)
    with pytest.raises(ImageError) as refused:
        read_image(written(tmp_path / name, data))
    assert str(refused.value) == f"{tmp_path / name}: {words}"


def test_an_eps_file_on_the_command_line_is_one_line_and_nothing_is_written(tmp_path, capsys):
    source = written(tmp_path / "photo.png", eps_bytes("RGB"))
    code = restore_cli(source, tmp_path / "out")
    assert_one_line_refusal(capsys, code, f"photo.png: {FOREIGN.format('EPS')}")
    assert not (tmp_path / "out" / "photo.png").exists()


def test_an_eps_kernel_is_refused_by_name(tmp_path):
    with pytest.raises(BaselineError, match=f"k.png: {FOREIGN.format('EPS')}"):
        load_kernel(written(tmp_path / "k.png", eps_bytes("L")))


# 5. Kernels are bounded by their headers, before anything is decoded.


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("huge.npy", npy_header_only((100_000, 100_000)), f"100000x100000 pixels; at most {MAX_KERNEL_SIDE}"),
        ("wide.npy", npy_header_only((3, MAX_KERNEL_SIDE + 1)), f"at most {MAX_KERNEL_SIDE} per side"),
        ("flat.npy", npy_header_only((9,)), "Expected a 2-D blur kernel"),
        ("text.npy", npy_bytes(np.array([["a", "b"], ["c", "d"]])), "<U1 values; a kernel holds real numbers"),
        ("objects.npy", npy_bytes(np.array([[1, None]], dtype=object), True), "object values"),
        ("complex.npy", npy_bytes(np.ones((3, 3), np.complex64)), "complex64 values"),
        ("cut.npy", npy_bytes(np.ones((5, 5)))[:-16], "Could not read the kernel file"),
        ("junk.npy", b"not numpy at all", "Could not read the kernel file"),
        ("big.png", png_bytes(np.zeros((4000, 3000), np.uint8)), f"3000x4000 pixels; at most {MAX_KERNEL_SIDE}"),
    ],
)
def test_kernel_files_are_checked_before_they_are_loaded(tmp_path, name, data, words):
    with pytest.raises(BaselineError) as refused:
        load_kernel(written(tmp_path / name, data))
    message = str(refused.value)
    assert words in message and "\n" not in message
    assert str(tmp_path / name) in message


def test_the_largest_kernel_is_still_read(tmp_path):
    side = MAX_KERNEL_SIDE
    assert load_kernel(written(tmp_path / "k.npy", npy_bytes(np.ones((side, side), np.float32)))).shape == (side, side)
    assert load_kernel(written(tmp_path / "k.png", png_bytes(np.full((side, 7), 9, np.uint8)))).shape == (side, 7)


def test_a_huge_kernel_on_the_command_line_is_one_line(tmp_path, capsys):
    source = written(tmp_path / "photo.png", png_bytes(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)))
    kernel = written(tmp_path / "k.npy", npy_header_only((100_000, 100_000)))
    code = main(["restore", str(source), "--method", "wiener", "--kernel", str(kernel), "-o", str(tmp_path / "out")])
    assert_one_line_refusal(capsys, code, f"at most {MAX_KERNEL_SIDE} per side")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# 6. 32-bit integer, signed and floating-point TIFFs, planar or not, are read by their sample type's range.


def test_32_bit_integer_tiff_is_read_by_its_range_and_written_back_as_it_was(tmp_path):
    values = np.full((12, 10), 40_000, np.uint32)
    values[0, :3] = (100_000, 4_000_000_000, U32_TOP)
    image = read_image(written(tmp_path / "a.tif", tiff_bytes(values)))
    assert (image.bit_depth, image.sample_format, image.pixels.shape) == (32, "uint", (12, 10, 1))
    np.testing.assert_allclose(image.pixels[..., 0], values / U32_TOP, rtol=1e-7)
    back = tifffile.imread(write_image(tmp_path / "b.tif", image))
    assert back.dtype == np.uint32
    assert back[1, 1] == 40_000 and back[0, 0] == 100_000 and back[0, 2] == U32_TOP
    np.testing.assert_allclose(back.astype(np.float64), values, rtol=1e-7)  # float32 pixels: 24 significant bits


def test_signed_tiff_keeps_its_type_and_negative_values_are_refused(tmp_path):
    values = RNG.integers(0, 32768, (10, 12), dtype=np.int16)
    image = read_image(written(tmp_path / "s.tif", tiff_bytes(values)))
    assert (image.bit_depth, image.sample_format) == (16, "int")
    back = tifffile.imread(write_image(tmp_path / "t.tif", image))
    assert back.dtype == np.int16 and np.array_equal(back, values)
    with pytest.raises(ImageError, match=r"n\.tif: a signed-integer TIFF with negative values \(down to -5\)"):
        read_image(written(tmp_path / "n.tif", tiff_bytes(np.full((10, 10), -5, np.int32))))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_float_tiff_is_read_and_written_back_exactly(tmp_path, channels):
    values = RNG.random((10, 12, channels), dtype=np.float32)
    options = {"photometric": "rgb"} if channels > 1 else {}
    if channels == 4:
        options["extrasamples"] = ["unassalpha"]
    image = read_image(written(tmp_path / "f.tif", tiff_bytes(values if channels > 1 else values[..., 0], **options)))
    assert (image.bit_depth, image.sample_format) == (32, "float")
    assert np.array_equal(image.pixels, values)
    back = tifffile.imread(write_image(tmp_path / "g.tif", image))
    assert back.dtype == np.float32 and np.array_equal(back.reshape(values.shape), values)


def test_float_tiff_outside_0_to_1_is_refused(tmp_path):
    bright = np.linspace(0, 300, 100, dtype=np.float32).reshape(10, 10)
    with pytest.raises(ImageError, match=r"floating-point TIFF with values from 0 to 300; only values in 0\.\.1"):
        read_image(written(tmp_path / "hdr.tif", tiff_bytes(bright)))


def test_planar_16_bit_tiff_stays_16_bit(tmp_path):
    values = RNG.integers(0, 65536, (3, 10, 12), dtype=np.uint16)
    options = {"photometric": "rgb", "planarconfig": "separate"}
    image = read_image(written(tmp_path / "p.tif", tiff_bytes(values, **options)))
    assert image.bit_depth == 16
    assert np.array_equal(np.rint(image.pixels * 65535).astype(np.uint16), np.moveaxis(values, 0, -1))


def test_32_bit_tiff_through_the_command_line_keeps_its_type(tmp_path, capsys):
    values = np.full((16, 16, 3), 3_000_000_000, np.uint32)
    source = written(tmp_path / "deep.tif", tiff_bytes(values, photometric="rgb"))
    assert restore_cli(source, tmp_path / "out") == 0, capsys.readouterr().err
    back = tifffile.imread(tmp_path / "out" / "deep.tif")
    assert back.dtype == np.uint32 and abs(float(back.mean()) - 3e9) < 3e7


def test_pillow_32_bit_image_is_refused_rather_than_misread():
    wrapped = Image.fromarray(np.full((8, 8), -25_535, np.int32), mode="I")
    with pytest.raises(ImageError, match="32-bit integer image"):
        pil_to_pixels(wrapped)
    assert pil_to_pixels(Image.fromarray(np.full((8, 8), 40_000, np.int32), mode="I"))[1] == 16


# 7. The output format is decided from what the image is, before the work.


def rgba_png() -> bytes:
    return png_bytes(RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8))


def gray_alpha_png() -> bytes:
    return png_bytes(RNG.integers(0, 256, (16, 16, 2), dtype=np.uint8))


def animated_gif() -> bytes:
    frames = [Image.fromarray(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, data, written_as, note",
    [
        ("clear.jpg", rgba_png(), "PNG", "an image in RGB + alpha cannot be written as JPEG"),
        ("gray.bmp", gray_alpha_png(), "PNG", "an image in gray + alpha cannot be written as BMP"),
        ("anim.jpg", animated_gif(), "GIF", "an animation (3 frames) can be written as GIF, PNG or WebP, not JPEG"),
    ],
)
def test_an_image_its_suffix_cannot_hold_keeps_its_name_in_a_format_that_holds_it(
    tmp_path, capsys, name, data, written_as, note
):
    source = written(tmp_path / name, data)
    assert restore_cli(source, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert f"{source}: {note}: written as {written_as}, keeping the name {name}" in err
    with Image.open(tmp_path / "out" / name) as result:
        assert result.format == written_as
        assert getattr(result, "n_frames", 1) == (3 if written_as == "GIF" else 1)
    assert read_image(tmp_path / "out" / name).pixels.shape == read_image(source).pixels.shape


def test_output_format_keeps_the_suffix_format_when_it_holds_the_image():
    rgb = ImageData(np.zeros((8, 8, 3), np.float32), format="PNG")
    assert output_format("photo.jpg", rgb) == ("JPEG", None)
    rgba_tiff = ImageData(np.zeros((8, 8, 4), np.float32), format="TIFF")
    assert output_format("photo.bmp", rgba_tiff)[0] == "TIFF"
    rgba_jpeg_named = ImageData(np.zeros((8, 8, 4), np.float32), format="JPEG")
    assert output_format("photo.jpg", rgba_jpeg_named)[0] == "PNG"


def test_writing_an_image_into_a_format_that_cannot_hold_it_is_refused_before_writing(tmp_path):
    with pytest.raises(ImageError, match="gray \\+ alpha cannot be written as JPEG"):
        write_image(tmp_path / "a.jpg", ImageData(np.zeros((8, 8, 2), np.float32)))
    assert not list(tmp_path.iterdir())


# Messages: decoders' warnings stay off the terminal; a folder scan says what it leaves out.


def test_pillow_bomb_warning_does_not_leak_and_our_limit_still_holds(tmp_path, monkeypatch):
    source = written(tmp_path / "a.png", png_bytes(np.zeros((30, 40, 3), np.uint8)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1200 pixels: Pillow warns, below twice its limit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError, match="limit of 500"):
            read_image(source, max_pixels=500)
        assert read_image(source, max_pixels=2000).pixels.shape == (30, 40, 3)
    assert not caught


def test_tiff_tag_warnings_do_not_leak(tmp_path, capfd):
    for dtype in (np.uint8, np.float32):
        data = bytearray(tiff_bytes(np.zeros((10, 10), dtype), extratags=[(65000, "s", 0, "x" * 40, True)]))
        entry = data.find(struct.pack("<HH", 65000, 2))
        data[entry + 8 : entry + 12] = struct.pack("<I", len(data) + 1000)  # the tag's text lies past the end
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            read_image(written(tmp_path / f"tag-{dtype.__name__}.tif", bytes(data)))
        assert not caught
    assert capfd.readouterr().err == ""


def test_a_folder_scan_says_which_entries_it_leaves_out(tmp_path, monkeypatch, caplog):
    # as without pillow-heif
    monkeypatch.setattr(mprnet.io, "IMAGE_SUFFIXES", mprnet.io.IMAGE_SUFFIXES - mprnet.io.HEIF_SUFFIXES)
    written(tmp_path / "a.png", png_bytes(np.zeros((8, 8), np.uint8)))
    written(tmp_path / "phone.HEIC", HEIC)
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (tmp_path / "notes.txt").write_text("not a photo")
    with caplog.at_level("WARNING", logger="mprnet.io"):
        assert image_files(tmp_path) == [tmp_path / "a.png"]
    messages = sorted(record.getMessage() for record in caplog.records)
    assert messages == [
        f"{tmp_path / 'gone.jpg'}: skipped, a link to {tmp_path / 'deleted.jpg'}, which does not exist",
        f"{tmp_path / 'phone.HEIC'}: skipped, HEIF photos are not read (install pillow-heif, or convert it to "
        "JPEG or PNG)",
    ]


# Fuzz: kernel readers and the server's upload path.

KERNELS = {
    ".npy": npy_bytes(np.full((5, 5), 1 / 25)),
    ".png": png_bytes(np.full((5, 5), 200, np.uint8)),
}
TIFFS = {
    ".tif": tiff_bytes(RNG.random((12, 16, 3), dtype=np.float32), photometric="rgb"),
    ".tiff": tiff_bytes(RNG.integers(0, U32_TOP, (12, 16), dtype=np.uint32)),
    ".TIF": tiff_bytes(RNG.integers(0, 256, (3, 12, 16), dtype=np.uint8), photometric="rgb", planarconfig="separate"),
}


@FUZZ
@given(sample=mutated(KERNELS))
def test_the_kernel_reader_returns_a_kernel_or_one_of_our_errors(tmp_path, sample):
    suffix, data = sample
    try:
        kernel = load_kernel(written(tmp_path / f"fuzz{suffix}", data))
    except MprnetError as error:
        assert "\n" not in str(error)
        return
    assert kernel.ndim == 2 and max(kernel.shape) <= MAX_KERNEL_SIDE and np.isclose(kernel.sum(), 1)


@FUZZ
@given(sample=mutated(TIFFS))
def test_the_tiff_reader_returns_pixels_or_an_image_error(tmp_path, sample):
    suffix, data = sample
    try:
        image = read_image(written(tmp_path / f"fuzz{suffix}", data))
    except MprnetError:
        return
    assert image.pixels.dtype == np.float32 and image.pixels.ndim == 3
    assert image.pixels.min() >= 0 and image.pixels.max() <= 1


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    import mprnet
    from mprnet.serve import Settings, create_app
    from mprnet.serve.server import serving

    network = mprnet.create_model("mprnet", n_feat=4, scale_unetfeats=2, scale_orsnetfeats=2, num_cab=1)
    weights = mprnet.save_weights(network, tmp_path_factory.mktemp("safe") / "tiny.safetensors", task="deblur")
    app = create_app(Settings(models={"deblur": weights}, tile=0, example_size=16))
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def post(client, image: tuple[str, bytes], kernel: tuple[str, bytes] | None = None):
    files = {"image": (*image, "application/octet-stream")}
    if kernel is not None:
        files["kernel"] = (*kernel, "application/octet-stream")
    return client.post("/api/restore", files=files, data={"task": "deblur", "method": "wiener"})


def assert_refused(answer, words: str) -> None:
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]
    assert words in message and tempfile.gettempdir() not in message and "\n" not in message


PHOTO = png_bytes(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8))


def test_the_server_refuses_foreign_formats_and_huge_kernels_with_422(client):
    assert_refused(post(client, ("photo.png", eps_bytes("RGB"))), f"image: {FOREIGN.format('EPS')}")
    huge = ("k.npy", npy_header_only((100_000, 100_000)))
    assert_refused(post(client, ("photo.png", PHOTO), huge), f"at most {MAX_KERNEL_SIDE} per side")
    text = ("k.npy", npy_bytes(np.array([["a"]])))
    assert_refused(post(client, ("photo.png", PHOTO), text), "a kernel holds real numbers")
    big_image = ("k.png", png_bytes(np.zeros((1000, 1000), np.uint8)))
    assert_refused(post(client, ("photo.png", PHOTO), big_image), f"1000x1000 pixels; at most {MAX_KERNEL_SIDE}")
    assert_refused(post(client, ("photo.png", PHOTO), ("k.png", eps_bytes("L"))), "EPS is not an image format")
    assert post(client, ("photo.png", PHOTO), ("k.npy", KERNELS[".npy"])).status_code == 200


def test_the_server_restores_a_float_tiff_in_its_type(client):
    answer = post(client, ("deep.tif", TIFFS[".tif"]), ("k.npy", KERNELS[".npy"]))
    assert answer.status_code == 200, answer.text
    assert tifffile.imread(io.BytesIO(answer.content)).dtype == np.float32


@FUZZ
@given(image=mutated({**TIFFS, ".png": PHOTO}), kernel=mutated(KERNELS))
def test_the_server_answers_a_result_or_a_client_error_to_any_upload(client, image, kernel):
    answer = post(client, (f"fuzz{image[0]}", image[1]), (f"k{kernel[0]}", kernel[1]))
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code != 200:
        assert answer.headers["content-type"] == "application/json" and answer.json()["error"]
