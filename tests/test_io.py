"""Image files as people have them: every kind read faithfully and written back the same way; bad files refused."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin

from mprnet.errors import ImageError
from mprnet.io import ImageData, is_image_name, output_suffix, read_image, write_image

tifffile = pytest.importorskip("tifffile")

RNG = np.random.default_rng(0)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
ORIENTATION, MAKE = 0x0112, 0x010F


def random_u8(*shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def random_u16(*shape):
    return RNG.integers(0, 65536, shape, dtype=np.uint16)


def as_u16(pixels):
    return np.rint(pixels * 65535).astype(np.uint16)


def as_u8(pixels):
    return np.rint(pixels * 255).astype(np.uint8)


def png_16_bit_unfiltered(values: np.ndarray) -> bytes:
    """A 16-bit RGB PNG made by hand (filter 0), independent of the package's own encoder."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width, _ = values.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_8_bit_rgb_png_round_trip_is_exact(tmp_path):
    values = random_u8(12, 17, 3)
    Image.fromarray(values).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (12, 17, 3)
    assert (image.bit_depth, image.format) == (8, "PNG")
    write_image(tmp_path / "b.png", image)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), values)


def test_16_bit_gray_png_stays_16_bit(tmp_path):
    values = random_u16(10, 9)
    Image.fromarray(values).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png")
    assert image.bit_depth == 16 and image.pixels.shape == (10, 9, 1)
    assert np.array_equal(as_u16(image.pixels[..., 0]), values)
    write_image(tmp_path / "out.png", image)
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode.startswith("I")
        assert np.array_equal(np.asarray(written).astype(np.uint16), values)


def test_16_bit_rgb_png_made_elsewhere_is_read_exactly(tmp_path):
    values = random_u16(11, 13, 3)
    (tmp_path / "c16.png").write_bytes(png_16_bit_unfiltered(values))
    image = read_image(tmp_path / "c16.png")
    assert image.bit_depth == 16
    assert np.array_equal(as_u16(image.pixels), values)


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png_round_trip_is_exact_and_readable_by_pillow(tmp_path, channels):
    values = random_u16(9, 14, channels)
    write_image(tmp_path / "c16.png", ImageData(values / 65535, bit_depth=16, icc_profile=SRGB))
    with Image.open(tmp_path / "c16.png") as written:  # Pillow's own path sees the high bytes
        assert np.array_equal(np.asarray(written), (values >> 8).astype(np.uint8))
        assert written.info["icc_profile"] == SRGB
    assert np.array_equal(as_u16(read_image(tmp_path / "c16.png").pixels), values)


@pytest.mark.parametrize(
    "channels,options",
    [(3, {}), (3, {"compression": "zlib"}), (4, {"extrasamples": ["unassalpha"]}), (3, {"tile": (16, 16)})],
)
def test_16_bit_tiff_round_trip_is_exact(tmp_path, channels, options):
    values = random_u16(20, 24, channels)
    tifffile.imwrite(tmp_path / "in.tif", values, photometric="rgb", **options)
    image = read_image(tmp_path / "in.tif")
    assert (image.bit_depth, image.format) == (16, "TIFF")
    assert np.array_equal(as_u16(image.pixels), values)
    write_image(tmp_path / "out.tif", image)
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), values)


def test_8_bit_tiff_keeps_icc_profile(tmp_path):
    values = random_u8(10, 10, 3)
    Image.fromarray(values).save(tmp_path / "in.tiff", icc_profile=SRGB)
    image = read_image(tmp_path / "in.tiff")
    write_image(tmp_path / "out.tiff", image)
    with Image.open(tmp_path / "out.tiff") as written:
        assert written.info["icc_profile"] == SRGB
        assert np.array_equal(np.asarray(written), values)


def _jpeg_with_orientation(path, subsampling):
    values = np.zeros((20, 30, 3), np.uint8)  # 30 wide, 20 high; a white block at the top-left corner
    values[:5, :5] = 255
    exif = Image.Exif()
    exif[ORIENTATION], exif[MAKE] = 6, "TestCam"
    Image.fromarray(values).save(path, exif=exif.tobytes(), quality=98, subsampling=subsampling, icc_profile=SRGB)


@pytest.mark.parametrize("subsampling", [0, 2])
def test_jpeg_orientation_applied_exif_and_quality_kept(tmp_path, subsampling):
    _jpeg_with_orientation(tmp_path / "in.jpg", subsampling)
    image = read_image(tmp_path / "in.jpg")
    assert image.pixels.shape == (30, 20, 3)  # orientation 6: turned 90 degrees clockwise
    assert image.pixels[:5, -5:].mean() > 0.9 and image.pixels[-5:, :5].mean() < 0.1
    write_image(tmp_path / "out.jpg", image)
    with Image.open(tmp_path / "out.jpg") as written:
        exif = written.getexif()
        assert written.size == (20, 30)
        assert exif.get(ORIENTATION) in (None, 1) and exif.get(MAKE) == "TestCam"
        assert written.info["icc_profile"] == SRGB
        assert JpegImagePlugin.get_sampling(written) == subsampling
        error = np.abs(np.asarray(written, np.float32) / 255 - image.pixels).mean()
    assert error < 0.02  # quality 95


def test_gray_stays_one_channel(tmp_path):
    values = random_u8(9, 12)
    Image.fromarray(values).save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.pixels.shape == (9, 12, 1) and not image.has_alpha
    write_image(tmp_path / "out.png", image)
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "L" and np.array_equal(np.asarray(written), values)


@pytest.mark.parametrize("mode,channels", [("RGBA", 4), ("LA", 2)])
def test_alpha_is_kept_last(tmp_path, mode, channels):
    values = random_u8(8, 10, channels)
    Image.fromarray(values, mode=mode).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.has_alpha and np.array_equal(as_u8(image.pixels[..., -1]), values[..., -1])
    write_image(tmp_path / "out.png", image)
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == mode and np.array_equal(np.asarray(written), values)


def test_palette_becomes_rgb_and_transparent_palette_rgba(tmp_path):
    palette = Image.fromarray(random_u8(10, 10, 3)).quantize(8)
    palette.save(tmp_path / "p.png")
    palette.save(tmp_path / "pt.png", transparency=0)
    plain, transparent = read_image(tmp_path / "p.png"), read_image(tmp_path / "pt.png")
    assert plain.pixels.shape == (10, 10, 3) and transparent.pixels.shape == (10, 10, 4)
    expected = np.asarray(palette.convert("RGB"))
    assert np.array_equal(as_u8(plain.pixels), expected)
    assert set(np.unique(transparent.pixels[..., 3])) <= {0.0, 1.0}


def test_bilevel_becomes_gray(tmp_path):
    Image.fromarray(random_u8(10, 10) > 127).save(tmp_path / "b.png")
    image = read_image(tmp_path / "b.png")
    assert image.pixels.shape == (10, 10, 1) and set(np.unique(image.pixels)) <= {0.0, 1.0}


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (12, 12), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)  # pure red ink mix
    image = read_image(tmp_path / "c.jpg")
    assert image.pixels.shape == (12, 12, 3)
    assert np.allclose(image.pixels.mean(axis=(0, 1)), [1, 0, 0], atol=0.05)
    write_image(tmp_path / "out.jpg", image)
    with Image.open(tmp_path / "out.jpg") as written:
        assert written.mode == "RGB"


def test_png_keeps_icc_profile(tmp_path):
    Image.fromarray(random_u8(8, 8, 3)).save(tmp_path / "a.png", icc_profile=SRGB)
    image = read_image(tmp_path / "a.png")
    assert image.icc_profile == SRGB
    write_image(tmp_path / "out.png", image)
    with Image.open(tmp_path / "out.png") as written:
        assert written.info["icc_profile"] == SRGB


def _png_bytes():
    buffer = io.BytesIO()
    Image.fromarray(random_u8(64, 64, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"", "empty"),
        (b"hello, I am a text file\n", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20, "not a readable image"),
        (_png_bytes()[:400], "not a readable image"),  # truncated
    ],
)
def test_bad_files_raise_image_error_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=expected) as caught:
        read_image(path)
    assert str(path) in str(caught.value)


def test_missing_file_and_folder_raise_image_error(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "absent.png")
    with pytest.raises(ImageError, match="folder"):
        read_image(tmp_path)


def test_pixel_limit_refuses_large_images_and_can_be_raised(tmp_path):
    Image.fromarray(random_u8(40, 50, 3)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="limit of 1,000"):
        read_image(tmp_path / "big.png", max_pixels=1000)
    assert read_image(tmp_path / "big.png", max_pixels=2000).pixels.shape == (40, 50, 3)


def test_pillow_decompression_bomb_becomes_image_error(tmp_path, monkeypatch):
    Image.fromarray(random_u8(40, 50, 3)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    monkeypatch.setattr("mprnet.io._allow_pillow_up_to", lambda max_pixels: None)
    with pytest.raises(ImageError, match="limit"):
        read_image(tmp_path / "big.png", max_pixels=10**6)


def test_too_small_image_is_refused(tmp_path):
    Image.new("RGB", (5, 5)).save(tmp_path / "tiny.png")
    with pytest.raises(ImageError, match="5x5"):
        read_image(tmp_path / "tiny.png")


def test_write_into_a_file_instead_of_a_folder_fails_cleanly(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageError, match="cannot write"):
        write_image(tmp_path / "file" / "out.png", ImageData(np.zeros((8, 8, 3), np.float32)))


def test_unknown_output_suffix_is_refused(tmp_path):
    with pytest.raises(ImageError, match="suffix"):
        write_image(tmp_path / "out.xyz", ImageData(np.zeros((8, 8, 3), np.float32)))


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")

    def half_write(path, file_format, image):
        path.write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mprnet.io._encode", half_write)
    with pytest.raises(ImageError, match="No space left"):
        write_image(target, ImageData(np.zeros((8, 8, 3), np.float32)))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"] and target.read_bytes() == b"previous"


def test_16_bit_into_jpeg_is_written_as_8_bit(tmp_path):
    write_image(tmp_path / "out.jpg", ImageData(random_u16(8, 8, 3) / 65535, bit_depth=16))
    with Image.open(tmp_path / "out.jpg") as written:
        assert written.mode == "RGB"


def test_output_suffix_and_image_names():
    assert output_suffix("photo.JPG") == ".JPG" and output_suffix("a.tiff") == ".tiff"
    assert output_suffix("anim.gif") == ".gif" and output_suffix("scan.ppm") == ".png"
    assert is_image_name("x.jpeg") and is_image_name("x.PNG") and not is_image_name("notes.txt")


def animation(path, frames=3, size=(20, 12), alpha=False, **options):
    """An animation whose frames differ, with distinct durations; returns the RGB(A) frames written."""
    mode = "RGBA" if alpha else "RGB"
    pictures = []
    for index in range(frames):
        values = random_u8(size[1], size[0], 4 if alpha else 3)
        if alpha:
            values[..., 3] = 255
            values[: 3 + index, :, 3] = 0
        pictures.append(Image.fromarray(values, mode))
    pictures[0].save(
        path, save_all=True, append_images=pictures[1:], duration=[40 + 30 * i for i in range(frames)], **options
    )
    return pictures


@pytest.mark.parametrize("name", ["anim.gif", "anim.png", "anim.webp"])
def test_animations_keep_every_frame_their_durations_and_loop(tmp_path, name):
    animation(tmp_path / name, loop=2)
    image = read_image(tmp_path / name)
    assert len(image.frames) == 2 and image.durations == (40, 70, 100) and image.loop == 2
    assert all(frame.shape == image.pixels.shape == (12, 20, 3) for frame in image.frames)
    brighter = image.map_frames(lambda pixels: np.clip(pixels + 0.1, 0, 1))
    written = write_image(tmp_path / "out" / name, brighter)
    again = read_image(written)
    assert len(again.frames) == 2 and again.durations == (40, 70, 100) and again.loop == 2
    tolerance = 0.2 if name.endswith(".gif") else 0.08  # GIF quantises to 256 colours, WebP is lossy
    for before, after in zip((brighter.pixels, *brighter.frames), (again.pixels, *again.frames), strict=True):
        assert np.abs(before - after).mean() < tolerance


def test_animated_gif_keeps_its_transparency_and_plays_once_without_a_loop(tmp_path):
    frames = animation(tmp_path / "a.gif", alpha=True, disposal=2)
    image = read_image(tmp_path / "a.gif")
    assert image.pixels.shape[2] == 4 and image.loop is None
    again = read_image(write_image(tmp_path / "out.gif", image))
    assert again.loop is None
    for frame, pixels in zip(frames, (again.pixels, *again.frames), strict=True):
        assert np.array_equal(np.asarray(frame)[..., 3] == 0, pixels[..., 3] == 0)


def test_a_still_palette_gif_stays_a_gif_with_its_transparency(tmp_path):
    palette = Image.fromarray(random_u8(10, 12, 3)).quantize(8)
    palette.save(tmp_path / "p.gif", transparency=0)
    image = read_image(tmp_path / "p.gif")
    assert image.format == "GIF" and image.frames == () and image.has_alpha
    written = write_image(tmp_path / "out" / "p.gif", image)
    with Image.open(written) as again:
        assert again.format == "GIF"
    assert np.array_equal(read_image(written).pixels, image.pixels)


def test_multi_page_tiff_is_refused_rather_than_cut(tmp_path):
    pages = [Image.fromarray(random_u8(10, 10, 3)) for _ in range(2)]
    pages[0].save(tmp_path / "pages.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(ImageError, match="multi-page TIFF"):
        read_image(tmp_path / "pages.tif")


def test_every_frame_counts_against_the_pixel_limit(tmp_path):
    animation(tmp_path / "a.gif", frames=4, size=(20, 10))
    with pytest.raises(ImageError, match="4 frames"):
        read_image(tmp_path / "a.gif", max_pixels=700)
    assert len(read_image(tmp_path / "a.gif", max_pixels=800).frames) == 3
