"""Mutated bytes of valid image files and checkpoints, fed to the image reader, the model loader, the command line
and the HTTP endpoint: every outcome is a result or one of the project's own errors, never another exception.

Bounded for the suite (MPRNET_FUZZ_EXAMPLES examples per target, default 40); `python benchmarks/fuzz.py` runs
thousands.
"""

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mprnet  # noqa: E402
from mprnet.cli import main  # noqa: E402
from mprnet.errors import MprnetError  # noqa: E402
from mprnet.io import read_image  # noqa: E402

EXAMPLES = int(os.environ.get("MPRNET_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize="MPRNET_FUZZ_EXAMPLES" not in os.environ,  # the suite's examples are the same every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RNG = np.random.default_rng(5)


def _image_bytes(file_format: str, **options) -> bytes:
    values = RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    frames = [Image.fromarray(values), Image.fromarray(255 - values)]
    buffer = io.BytesIO()
    if file_format == "GIF":
        frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=[40, 60], loop=0)
    else:
        frames[0].save(buffer, format=file_format, **options)
    return buffer.getvalue()


IMAGES = {
    ".png": _image_bytes("PNG"),
    ".jpg": _image_bytes("JPEG", quality=90),
    ".tif": _image_bytes("TIFF"),
    ".webp": _image_bytes("WEBP"),
    ".gif": _image_bytes("GIF"),
}


def _tiny_network():
    torch.manual_seed(0)
    return mprnet.create_model("mprnet", n_feat=4, scale_unetfeats=2, scale_orsnetfeats=2, num_cab=1)


def _checkpoint_bytes(suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"tiny{suffix}"
        if suffix == ".safetensors":
            mprnet.save_weights(_tiny_network(), path, task="denoise")
        else:
            torch.save({"state_dict": _tiny_network().state_dict(), "epoch": 3}, path)
        return path.read_bytes()


CHECKPOINTS = {".safetensors": _checkpoint_bytes(".safetensors"), ".pth": _checkpoint_bytes(".pth")}


@st.composite
def mutated(draw, seeds: dict[str, bytes]):
    """(suffix, bytes): a valid file with a few bytes flipped, a range cut out, random bytes put in, or cut short."""
    suffix = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[suffix])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        where = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[where] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[where : where + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=32))
        else:
            del data[where:]
    return suffix, bytes(data)


def _written(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@FUZZ
@given(sample=mutated(IMAGES))
def test_the_image_reader_returns_pixels_or_an_image_error(tmp_path, sample):
    suffix, data = sample
    try:
        image = read_image(_written(tmp_path, f"fuzz{suffix}", data))
    except MprnetError:
        return
    assert image.pixels.dtype == np.float32 and image.pixels.ndim == 3
    assert all(frame.shape == image.pixels.shape for frame in image.frames)


@FUZZ
@given(sample=mutated(CHECKPOINTS))
def test_the_model_loader_returns_a_network_or_a_checkpoint_error(tmp_path, sample):
    suffix, data = sample
    try:
        model = mprnet.load_model(_written(tmp_path, f"fuzz{suffix}", data))
    except MprnetError:
        return
    assert model.architecture == "mprnet" and not model.training


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return mprnet.save_weights(_tiny_network(), tmp_path_factory.mktemp("fuzz") / "tiny.safetensors", task="denoise")


@FUZZ
@given(image=mutated(IMAGES), checkpoint=st.one_of(st.none(), mutated(CHECKPOINTS)))
def test_the_command_line_exits_with_a_status_never_a_traceback(tmp_path, weights, image, checkpoint):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    source = _written(folder, f"fuzz{image[0]}", image[1])
    model = weights if checkpoint is None else _written(folder, f"fuzz{checkpoint[0]}", checkpoint[1])
    code = main(["restore", str(source), "--weights", str(model), "--device", "cpu", "-o", str(folder / "out")])
    assert code in (0, 1)
    assert (folder / "out" / source.name).exists() == (code == 0)


@pytest.fixture(scope="module")
def client(weights):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from mprnet.serve import Settings, create_app
    from mprnet.serve.server import serving

    app = create_app(Settings(models={"denoise": weights}, tile=0, example_size=16, baselines=False))
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


@FUZZ
@given(image=mutated(IMAGES))
def test_the_http_endpoint_answers_a_result_or_a_client_error(client, image):
    suffix, data = image
    answer = client.post(
        "/api/restore", files={"image": (f"fuzz{suffix}", data, "application/octet-stream")}, data={"task": "denoise"}
    )
    assert answer.status_code in (200, 400, 413, 422), answer.text
    if answer.status_code != 200:
        assert answer.headers["content-type"] == "application/json" and answer.json()["error"]
