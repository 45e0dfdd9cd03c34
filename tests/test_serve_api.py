"""The HTTP API, through a real HTTP client against uvicorn on loopback, with tiny random networks."""

import io
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
httpx = pytest.importorskip("httpx")

import mprnet  # noqa: E402
from mprnet.io import ImageData, read_image, write_image  # noqa: E402
from mprnet.serve import Settings, create_app  # noqa: E402
from mprnet.serve.jobs import can_isolate  # noqa: E402
from mprnet.serve.server import serving  # noqa: E402

TASKS = ("deblur", "denoise", "derain")
SIDE = 32


def tiny_settings(folder: Path, **overrides) -> Settings:
    """Settings serving a tiny random MPRNet for every task (fast on a CPU), examples of 32 px."""
    models = {}
    for task in TASKS:
        network = mprnet.create_model("mprnet", n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
        models[task] = mprnet.save_weights(
            network, folder / f"{task}.safetensors", task=task, summary=f"tiny random {task} network"
        )
    return Settings(**{"models": models, "tile": 0, "example_size": SIDE, **overrides})


def encode(pixels: np.ndarray, suffix: str = ".png", bit_depth: int = 8) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = write_image(Path(folder) / f"image{suffix}", ImageData(pixels, bit_depth=bit_depth))
        return path.read_bytes()


def decode(data: bytes, suffix: str) -> ImageData:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"result{suffix}"
        path.write_bytes(data)
        return read_image(path)


def random_pixels(channels: int = 3, side: int = SIDE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((side, side, channels), dtype=np.float32)


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return tiny_settings(tmp_path_factory.mktemp("serve-models"))


@pytest.fixture(scope="module")
def app(settings):
    return create_app(settings)


@pytest.fixture(scope="module")
def client(app):
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def post(client, data: bytes | None = None, name: str = "photo.png", **fields):
    files = {} if data is None else {"image": (name, data, "application/octet-stream")}
    files.update({key: value for key, value in fields.items() if isinstance(value, tuple)})
    form = {"task": "denoise", **{key: value for key, value in fields.items() if not isinstance(value, tuple)}}
    return client.post("/api/restore", files=files or None, data=form)


def assert_healthy(client) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def assert_error(answer, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    message = answer.json()["error"]
    assert words in message
    assert "Traceback" not in answer.text and "/tmp/" not in message


def test_health_models_page_and_openapi(client):
    assert client.get("/healthz").json() == {
        "status": "ok",
        "tasks": list(TASKS),
        "running": 0,
        "waiting": 0,
        "workers": 1,
        "queue_size": 8,
    }
    models = client.get("/api/models").json()
    assert models["bundled_models"] == mprnet.checkpoint.BUNDLED_MODELS_TRUTH  # the page shows it up front
    by_task = {task["name"]: task for task in models["tasks"]}
    assert list(by_task) == list(TASKS)
    assert by_task["denoise"]["methods"][0] == {
        "name": "mprnet",
        "title": "MPRNet",
        "kind": "network",
        "summary": "tiny random denoise network",
        "needs": [],
        "uses": [],
    }
    assert "dct" in [method["name"] for method in by_task["denoise"]["methods"]]
    assert models["limits"]["max_pixels"] == 16_000_000
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    schema = client.get("/openapi.json").json()
    form = schema["paths"]["/api/restore"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "$ref" in form or "properties" in form
    assert client.get("/docs").status_code == 404  # its scripts would come from a CDN


@pytest.mark.parametrize("task", TASKS)
def test_each_task_restores(client, task):
    answer = post(client, encode(random_pixels()), task=task)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["x-task"] == task and answer.headers["x-method"] == "mprnet"
    assert answer.headers["content-disposition"] == 'inline; filename="photo-restored.png"'
    assert decode(answer.content, ".png").pixels.shape == (SIDE, SIDE, 3)


@pytest.mark.parametrize(
    "channels, suffix, bit_depth, media_type",
    [
        (3, ".png", 8, "image/png"),
        (3, ".png", 16, "image/png"),
        (1, ".png", 8, "image/png"),
        (1, ".png", 16, "image/png"),
        (4, ".png", 8, "image/png"),
        (2, ".png", 8, "image/png"),
        (4, ".png", 16, "image/png"),
        (3, ".jpg", 8, "image/jpeg"),
        (3, ".tif", 16, "image/tiff"),
        (3, ".webp", 8, "image/webp"),
    ],
    ids=["rgb8", "rgb16", "gray8", "gray16", "rgba8", "gray-alpha8", "rgba16", "jpeg", "tiff16", "webp"],
)
def test_each_image_kind_comes_back_in_its_format(client, channels, suffix, bit_depth, media_type):
    sent = decode(encode(random_pixels(channels), suffix, bit_depth), suffix)
    answer = post(client, encode(random_pixels(channels), suffix, bit_depth), name=f"photo{suffix}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == media_type
    restored = decode(answer.content, suffix)
    assert restored.pixels.shape == sent.pixels.shape
    assert restored.bit_depth == sent.bit_depth
    if sent.has_alpha:
        np.testing.assert_array_equal(restored.pixels[..., -1], sent.pixels[..., -1])


def test_output_format_can_be_asked_for(client):
    answer = post(client, encode(random_pixels(), ".tif", 16), name="scan.tif", output_format="png")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert decode(answer.content, ".png").bit_depth == 16


def test_classic_method_with_its_noise_level(client):
    answer = post(client, encode(random_pixels()), method="dct", sigma="25")
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-method"] == "dct"
    assert_error(post(client, encode(random_pixels()), method="dct"), 422, "needs the noise level sigma")


def test_kernel_upload_for_non_blind_deblurring(client):
    kernel = io.BytesIO()
    np.save(kernel, np.full((3, 3), 1 / 9))
    answer = post(
        client,
        encode(random_pixels()),
        task="deblur",
        method="wiener",
        kernel=("kernel.npy", kernel.getvalue(), "application/octet-stream"),
    )
    assert answer.status_code == 200, answer.text


def test_reference_gives_psnr_and_ssim(client):
    clean = random_pixels(seed=1)
    noisy = np.clip(clean + np.random.default_rng(2).normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    answer = post(client, encode(noisy), reference=("clean.png", encode(clean), "image/png"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-protocol"] == "rgb"
    assert 15 < float(answer.headers["x-psnr-input"]) < 25
    assert 0 < float(answer.headers["x-ssim-output"]) <= 1
    same = post(client, encode(clean), reference=("clean.png", encode(clean), "image/png"))
    assert same.headers["x-psnr-input"] == "inf"
    wrong = post(client, encode(noisy), reference=("small.png", encode(random_pixels(side=16)), "image/png"))
    assert_error(wrong, 422, "reference: expected the image's size and channels 32x32x3, found 16x16x3")


def _png_header_of(width: int, height: int) -> bytes:
    """The start of a PNG announcing a huge image (pixel data cut short): refused before any pixel is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64)))


BAD_REQUESTS = {
    "no file": (lambda: {"data": None}, 400, "missing form field 'image'"),
    "empty file": (lambda: {"data": b""}, 422, "image: the uploaded file is empty"),
    "corrupt": (lambda: {"data": encode(random_pixels())[:200]}, 422, "image: not a readable image"),
    "not an image": (lambda: {"data": b"%PDF-1.4 not a picture at all"}, 422, "image: not a readable image"),
    "too large": (lambda: {"data": b"\0" * 3_000_000}, 413, "more than the limit of 2.0 MiB"),
    "too many pixels": (
        lambda: {"data": _png_header_of(5000, 4000)},
        422,
        "5000x4000 = 20,000,000 pixels, more than the limit of 16,000,000; the server's operator sets this limit",
    ),
    "too small": (lambda: {"data": encode(random_pixels(side=4))}, 422, "at least 8 per side"),
    "unknown task": (
        lambda: {"data": encode(random_pixels()), "task": "sharpen"},
        400,
        "unknown task 'sharpen'; this server offers deblur, denoise, derain",
    ),
    "unknown method": (
        lambda: {"data": encode(random_pixels()), "method": "magic"},
        400,
        "unknown method 'magic' for denoise; choose one of mprnet, dct",
    ),
    "bad sigma": (
        lambda: {"data": encode(random_pixels()), "method": "dct", "sigma": "loud"},
        400,
        "form field 'sigma'",
    ),
    "bad format": (
        lambda: {"data": encode(random_pixels()), "output_format": "xcf"},
        400,
        "unknown output_format 'xcf'",
    ),
}


@pytest.fixture(scope="module")
def small_upload_client(settings):
    with (
        serving(create_app(Settings(**{**vars(settings), "max_upload_bytes": 2 * 2**20}))) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_input_gets_a_clear_json_error(small_upload_client, case):
    make, status, words = BAD_REQUESTS[case]
    fields = make()
    assert_error(post(small_upload_client, fields.pop("data"), **fields), status, words)
    assert_healthy(small_upload_client)


def test_no_error_names_an_option_only_the_operator_has(small_upload_client):
    answer = post(small_upload_client, _png_header_of(5000, 4000))
    assert answer.status_code == 422 and "--" not in answer.json()["error"]


def test_every_frame_of_an_animated_gif_is_restored(client):
    from PIL import Image

    frames = [Image.fromarray(np.uint8(random_pixels(seed=seed) * 255)) for seed in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=[60, 90, 120], loop=0)
    answer = post(client, buffer.getvalue(), name="anim.gif")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/gif"
    with Image.open(io.BytesIO(answer.content)) as restored:
        assert restored.n_frames == 3 and restored.info["loop"] == 0
        durations = []
        for index in range(3):
            restored.seek(index)
            durations.append(restored.info["duration"])
        assert durations == [60, 90, 120]
    refused = post(client, buffer.getvalue(), name="anim.gif", output_format="jpeg")
    assert_error(refused, 422, "an animation (3 frames) can be written as GIF, PNG or WebP, not JPEG")


def test_chunked_upload_without_length_is_refused(client):
    answer = client.post(
        "/api/restore", content=iter([b"--x\r\n"]), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert_error(answer, 411, "Content-Length")
    assert_healthy(client)


def test_unknown_path_is_json_404(client):
    assert_error(client.get("/api/nothing"), 404, "Not Found")


def test_internal_failure_is_a_500_without_trace(app, client):
    class Broken:
        name, title, task, kind, summary, needs, uses = "mprnet", "MPRNet", "denoise", "network", "broken", (), ()

        def __call__(self, image, progress=None, **known):
            raise RuntimeError("secret internal detail")

    methods = app.state.catalogue.tasks["denoise"]
    original = methods["mprnet"]
    methods["mprnet"] = Broken()
    try:
        answer = post(client, encode(random_pixels()))
    finally:
        methods["mprnet"] = original
    assert_error(answer, 500, "internal error")
    assert "secret" not in answer.text
    assert_healthy(client)


def _blocked_queue(app):
    """Fill every running slot of the app's queue with a job that waits; returns the event that frees them."""
    release = threading.Event()
    for _ in range(app.state.queue.workers):
        app.state.queue.submit(lambda deadline: release.wait(30))
    return release


def test_full_queue_answers_503_with_retry_after(settings):
    app = create_app(
        Settings(**{**vars(settings), "workers": 1, "queue_size": 0, "retry_after_s": 7, "isolate_jobs": False})
    )  # the blocking jobs wait on an event of this process
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        release = _blocked_queue(app)
        busy = post(client, encode(random_pixels()))
        assert_error(busy, 503, "busy")
        assert busy.headers["retry-after"] == "7"
        assert client.get("/healthz").json()["running"] == 1
        release.set()
        _wait_for_free_slots(app)
        assert post(client, encode(random_pixels())).status_code == 200


def _wait_for_free_slots(app, steps: int = 600) -> None:
    """Until the released jobs have given their slots back (their threads wake up in their own time)."""
    for _ in range(steps):
        if app.state.queue.admitted == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{app.state.queue.admitted} jobs still hold their slots")


def test_job_past_its_time_limit_answers_504_and_frees_its_slot(settings):
    app = create_app(
        Settings(**{**vars(settings), "workers": 1, "queue_size": 1, "job_timeout_s": 0.3, "isolate_jobs": False})
    )
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        release = _blocked_queue(app)
        assert_error(post(client, encode(random_pixels())), 504, "longer than the limit of 0.3 s")
        health = client.get("/healthz").json()
        assert (health["running"], health["waiting"]) == (1, 0)  # the waiting job was cancelled
        release.set()


@pytest.mark.skipif(not can_isolate(), reason="isolated jobs need fork")
@pytest.mark.parametrize("method", ["bm3d", "mprnet"])
def test_a_slow_job_is_stopped_at_its_limit_and_its_worker_comes_free(settings, tmp_path, monkeypatch, method):
    """BM3D cannot be interrupted, and a network on one big tile runs one long forward: both stop at the limit."""
    if method == "bm3d":
        pytest.importorskip("bm3d")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    wide = mprnet.create_model("mprnet", n_feat=40, scale_unetfeats=20, scale_orsnetfeats=16)
    models = {"denoise": mprnet.save_weights(wide, tmp_path / "wide.safetensors", task="denoise")}
    app = create_app(
        Settings(**{**vars(settings), "models": models, "workers": 1, "queue_size": 0, "job_timeout_s": 1.0})
    )
    for name in (method, "dct"):  # estimates too low: no early refusal, nor a calibration
        app.state.speeds.record(("denoise", name), seconds=0, pixels=2**40)
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        fields = {"method": "bm3d", "sigma": "25"} if method == "bm3d" else {}
        started = time.monotonic()
        assert_error(post(client, encode(random_pixels(side=768)), **fields), 504, "longer than the limit of 1 s")
        give_up = time.monotonic() + 1.0
        while client.get("/healthz").json()["running"] and time.monotonic() < give_up:
            time.sleep(0.02)
        assert client.get("/healthz").json()["running"] == 0
        assert time.monotonic() - started < 2.5
        assert post(client, encode(random_pixels()), method="dct", sigma="25").status_code == 200
    assert list(tmp_path.glob("mprnet-*")) == []


def test_temporary_files_are_removed(client, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert (
        post(client, encode(random_pixels()), reference=("c.png", encode(random_pixels()), "image/png")).status_code
        == 200
    )
    assert post(client, b"not an image").status_code == 422
    assert list(tmp_path.iterdir()) == []


def test_examples_are_degraded_samples_with_their_originals(client):
    examples = client.get("/api/examples").json()
    assert {example["task"] for example in examples} == set(TASKS)
    assert len(examples) == 9
    first = examples[0]
    degraded, clean = (decode(client.get(first[kind]).content, ".png").pixels for kind in ("degraded", "clean"))
    assert degraded.shape == clean.shape == (SIDE, SIDE, 3)
    assert 0 < np.abs(degraded - clean).mean() < 0.5
    assert client.get(first["degraded"]).content == client.get(first["degraded"]).content  # cached, seeded
    assert_error(client.get("/api/examples/denoise/nobody/clean.png"), 400, "no example denoise/nobody/clean.png")


@pytest.mark.parametrize(
    "host, status",
    [
        ("127.0.0.1:8000", 200),
        ("localhost", 200),
        ("[::1]:80", 200),
        ("LOCALHOST:1", 200),
        ("evil.example:8000", 421),
        ("evil.example", 421),
        ("127.0.0.1.evil.example", 421),
        ("", 421),
    ],
)
def test_only_the_hosts_it_serves_are_answered(client, host, status):
    """A page on another site that rebinds its name to 127.0.0.1 still sends its own name as Host."""
    answer = client.get("/healthz", headers={"host": host})
    assert answer.status_code == status
    if status == 421:
        assert "--allow-host" in answer.json()["error"]
        assert post(client, encode(random_pixels())).status_code == 200


def test_allowed_hosts_can_be_widened(settings):
    app = create_app(Settings(**{**vars(settings), "allowed_hosts": ("photos.lan",)}))
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/healthz", headers={"host": "photos.lan:8000"}).status_code == 200
        assert client.get("/healthz").status_code == 421


def test_jobs_are_isolated_only_where_the_networks_run_on_the_cpu(app, settings, monkeypatch):
    assert app.state.queue.isolate == can_isolate()
    assert create_app(Settings(**{**vars(settings), "isolate_jobs": False})).state.queue.isolate is False
    from mprnet.serve import catalogue

    monkeypatch.setattr(catalogue.Catalogue, "devices", lambda self: {"cpu", "cuda"})
    assert create_app(settings).state.queue.isolate is False


def test_a_peer_network_is_offered_under_its_own_architecture(tmp_path):
    nafnet = mprnet.create_model("nafnet", width=8, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1])
    weights = mprnet.save_weights(nafnet, tmp_path / "nafnet.safetensors")  # no summary, no task in its metadata
    app = create_app(Settings(models={"denoise": weights}, tile=0, baselines=False))
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        methods = client.get("/api/models").json()["tasks"][0]["methods"]
        assert [(m["name"], m["title"], m["summary"]) for m in methods] == [("nafnet", "NAFNet", "NAFNet (denoise)")]
        answer = post(client, encode(random_pixels()))  # no method: the task's network
        assert answer.status_code == 200 and answer.headers["x-method"] == "nafnet"
        assert_error(post(client, encode(random_pixels()), method="mprnet"), 400, "choose one of nafnet")
