"""The web demo and the HTTP API: `create_app(Settings(...))` builds the FastAPI application.

Routes: `/` (the page), `POST /api/restore`, `GET /api/models`, `GET /api/examples` (+ the example PNGs),
`GET /healthz`, and the OpenAPI description at `/openapi.json` (FastAPI's `/docs` pages are off: they load their
scripts from a CDN, and the page must work offline). Every error is JSON `{"error": "<one sentence>"}` with a
4xx/5xx status, never a stack trace. Uploads are bounded (bytes before parsing, pixels before decoding), restorations
run on a bounded job queue (503 + Retry-After when full, 504 past the time limit), and each job works in its own
temporary folder for its result, removed when it ends: nothing is written anywhere else (uploads are read from
memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException

from .. import __version__
from ..checkpoint import BUNDLED_MODELS_TRUTH
from ..demo import degrade_sample, sample_photos
from ..errors import ImageError, MprnetError
from ..io import (
    ANIMATED_FORMATS,
    WRITABLE_FORMATS,
    ImageData,
    PixelLimitError,
    not_held,
    open_raster,
    quiet_decoders,
    read_image_bytes,
    write_image,
)
from ..metrics import evaluate_pair
from ..pipeline import Restored, restore_image
from ..restorers import AUTO, Restorer, gray_method_for
from ..tasks import TASKS
from .catalogue import Catalogue, Examples, UnknownChoice, load_catalogue
from .estimate import Estimate, Speeds, timed_twice, work_pixels
from .jobs import DONE, FAILED, Deadline, Job, JobBook, JobQueue, JobTimeout, QueueFull, UnknownJob, can_isolate
from .settings import Settings

STATIC = Path(__file__).parent / "static"
OUTPUT_FORMATS = {name.lower(): suffix for name, suffix in WRITABLE_FORMATS.items()}
_PAGE_POLICY = "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'"
#: A refused upload is read (and dropped) up to this size before the answer; beyond, the connection is just closed.
_DRAIN_LIMIT = 256 * 2**20
_log = logging.getLogger("mprnet.serve")
_OUT_OF_MEMORY = "the server ran out of memory for this image; try a smaller one"
_INTERNAL = "the server failed on this request (an internal error, logged on the server)"


class RequestProblem(MprnetError):
    """A request the server cannot take as sent (status given)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Upload:
    """One uploaded file, read into memory (bounded by the upload limit)."""

    field: str
    filename: str
    data: bytes


@dataclasses.dataclass(frozen=True)
class RestoreRequest:
    """What one restoration was asked for, as a worker receives it."""

    task: str
    restorer: Restorer
    uploads: dict[str, Upload]
    sigma: float | None
    output_format: str
    max_pixels: int
    #: What restores a black-and-white photo instead of the task's bundled model (`gray_method_for`), if anything.
    gray_method: str | None = None


@dataclasses.dataclass(frozen=True)
class RestoreResult:
    """The encoded restored image and the response headers that describe it."""

    data: bytes
    media_type: str
    filename: str
    headers: dict[str, str]
    #: The restoration's seconds where the method asked for did the work (its speed is learnt from them).
    seconds: float | None = None


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application, with its models loaded and its job queue started."""
    settings = settings or Settings()
    catalogue = load_catalogue(settings.models, settings.device, settings.precision, settings.tile, settings.baselines)
    isolate = settings.isolate_jobs
    if isolate is None:
        isolate = can_isolate() and catalogue.devices() <= {"cpu"}
    examples = Examples([task for task in catalogue.tasks if task in TASKS], settings.example_size)
    examples.prepare_in_background()
    # The examples' thread imports and computes: no job forks before it is done.
    ready = functools.partial(examples.wait, timeout=settings.job_timeout_s)
    queue = JobQueue(settings.workers, settings.queue_size, settings.job_timeout_s, isolate, before_fork=ready)
    jobs = JobBook(settings.keep_jobs, settings.keep_jobs_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        queue.shutdown()
        examples.wait(timeout=30)

    app = FastAPI(
        title="mprnet",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="MPRNet image restoration (deblur, denoise, derain) and classic baselines.",
    )
    app.state.settings, app.state.catalogue, app.state.queue, app.state.examples = settings, catalogue, queue, examples
    app.state.jobs, app.state.speeds = jobs, Speeds()
    app.add_middleware(_UploadLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(_HostCheck, allowed=settings.allowed_hosts)  # added last, so it runs first
    _add_error_handlers(app, settings)
    _add_routes(app, settings, catalogue, queue, examples)
    _add_restore_routes(app, queue, jobs, app.state.speeds)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _add_routes(app: FastAPI, settings: Settings, catalogue: Catalogue, queue: JobQueue, examples: Examples) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": _PAGE_POLICY})

    @app.get("/healthz", summary="Liveness and load")
    def healthz() -> dict:
        return {
            "status": "ok",
            "tasks": list(catalogue.tasks),
            "running": queue.running,
            "waiting": queue.admitted - queue.running,
            "workers": queue.workers,
            "queue_size": queue.queue_size,
        }

    @app.get("/api/models", summary="Tasks, their methods, and the server's limits")
    def models() -> dict:
        return {
            "tasks": catalogue.describe(),
            "bundled_models": BUNDLED_MODELS_TRUTH,
            "output_formats": ["same", *OUTPUT_FORMATS],
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_pixels": settings.max_pixels,
                "job_timeout_s": settings.job_timeout_s,
                "workers": settings.workers,
                "queue_size": settings.queue_size,
            },
        }

    @app.get("/api/examples", summary="Degraded sample photographs to try, with their clean originals")
    def example_list() -> list[dict]:
        return examples.describe()

    @app.get("/api/examples/{task}/{photo}/{kind}.png", summary="One example image", response_class=Response)
    def example_image(task: str, photo: str, kind: str) -> Response:
        return Response(
            examples.png(task, photo, kind), media_type="image/png", headers={"Cache-Control": "max-age=86400"}
        )


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A restoration asked for, checked, with its estimate (None: none could be made) and the key of its method's
    speed."""

    request: RestoreRequest
    estimate: Estimate | None
    speed_key: tuple[str, str]
    pixels: int | None  # of work, where the image's size could be read before decoding it


_RESTORE_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unknown task, method or option"},
    413: {"description": "Upload too large, or its estimated time over the job time limit"},
    422: {"description": "Not a usable image"},
    503: {"description": "Busy: retry after the Retry-After seconds"},
}


async def _prepared(
    http: Request,
    image: Annotated[UploadFile, File(description="the picture to restore")],
    task: Annotated[str, Form(description=f"{', '.join(TASKS)} or {AUTO} (GET /api/models lists what is offered)")],
    method: Annotated[
        str | None, Form(description="a method of the task (GET /api/models); default: the task's network")
    ] = None,
    sigma: Annotated[float | None, Form(description="noise level, 0-255 scale (non-blind methods)")] = None,
    kernel: Annotated[UploadFile | None, File(description="blur kernel, .npy or gray image")] = None,
    reference: Annotated[UploadFile | None, File(description="clean image, to measure PSNR/SSIM")] = None,
    output_format: Annotated[str, Form(description="same, png, jpeg, tiff, webp or bmp")] = "same",
) -> Prepared:
    """The form of /api/restore and /api/jobs, checked, and refused at once where its estimate is over the time
    limit."""
    state = http.app.state
    settings: Settings = state.settings
    chosen = state.catalogue.get(task, method)
    if output_format != "same" and output_format not in OUTPUT_FORMATS:
        raise UnknownChoice(f"unknown output_format {output_format!r}; choose same, {', '.join(OUTPUT_FORMATS)}")
    uploads = [
        await _read(upload, field)
        for upload, field in ((image, "image"), (reference, "reference"), (kernel, "kernel"))
        if upload is not None
    ]
    # Only the bundled models have not learned gray photos; weights the operator gave are left to restore them.
    bundled = settings.models is None and method is None and chosen.kind == "network"
    gray_method = gray_method_for(task) if bundled else None
    request = RestoreRequest(
        task, chosen, {u.field: u for u in uploads}, sigma, output_format, settings.max_pixels, gray_method
    )
    key = (task, chosen.name)
    size = _dimensions(request.uploads["image"])
    pixels = None if size is None else work_pixels(chosen, *size)
    speeds: Speeds = state.speeds
    if pixels is not None and speeds.estimate(key, pixels) is None:
        async with state.calibrating:  # one calibration at a time: two would slow each other down
            if speeds.estimate(key, pixels) is None:
                await _calibrate(state.queue, speeds, key, request, settings.calibration_side)
    estimate = None if pixels is None else speeds.estimate(key, pixels)
    if estimate is not None and estimate.seconds > settings.job_timeout_s:
        raise RequestProblem(_too_long(estimate, chosen.name, settings.job_timeout_s), 413)
    return Prepared(request, estimate, key, pixels)


def _learn(speeds: Speeds, form: Prepared, result: RestoreResult) -> None:
    """The method's speed, from a restoration it did."""
    if result.seconds is not None and form.pixels is not None:
        speeds.record(form.speed_key, result.seconds, form.pixels)


def _add_restore_routes(app: FastAPI, queue: JobQueue, jobs: JobBook, speeds: Speeds) -> None:
    app.state.calibrating = asyncio.Lock()

    @app.post(
        "/api/restore",
        summary="Restore one image, answering with the result",
        response_class=Response,
        responses={
            200: {
                "content": {"image/*": {}},
                "description": "The restored image, in the input's format unless output_format says otherwise",
            },
            **_RESTORE_ANSWERS,
            504: {"description": "The job took longer than the time limit"},
        },
    )
    async def restore(form: Annotated[Prepared, Depends(_prepared)]) -> Response:
        result = await queue.run(functools.partial(_restore_job, form.request))
        _learn(speeds, form, result)
        return _image_response(result)

    @app.post(
        "/api/jobs",
        summary="Start restoring one image (the form of /api/restore); answers at once with the job's id and URLs",
        status_code=202,
        responses={202: {"description": "Admitted: GET its status_url until its state is done"}, **_RESTORE_ANSWERS},
    )
    async def submit(form: Annotated[Prepared, Depends(_prepared)]) -> JSONResponse:
        job = jobs.add(None if form.estimate is None else form.estimate.seconds)
        try:
            future, _ = queue.submit(functools.partial(_restore_job, form.request), job)
        except QueueFull:
            jobs.drop(job)
            raise
        future.add_done_callback(lambda done: _after_job(done, lambda result: _learn(speeds, form, result)))
        description = _describe_job(job, form.estimate)
        return JSONResponse(description, status_code=202, headers={"Location": description["status_url"]})

    @app.get("/api/jobs/{job_id}", summary="A job's state, progress, elapsed time and estimate of the time left")
    def job_state(job_id: str) -> dict:
        return _describe_job(jobs.get(job_id))

    @app.get(
        "/api/jobs/{job_id}/result",
        summary="A finished job's restored image, with the headers of /api/restore",
        response_class=Response,
        responses={
            200: {"content": {"image/*": {}}, "description": "The restored image"},
            404: {"description": "No such job, or forgotten"},
            409: {"description": "The job has not finished yet"},
        },
    )
    def job_result(job_id: str) -> Response:
        job = jobs.get(job_id)
        if job.state == FAILED:
            status, message = _failure(job.error)
            return _error(status, message)
        if job.state != DONE:
            raise RequestProblem(
                f"job {job_id} is still {job.state}; GET /api/jobs/{job_id} until its state is done", 409
            )
        return _image_response(job.result)


def _image_response(result: RestoreResult) -> Response:
    return Response(
        result.data,
        media_type=result.media_type,
        headers={"Content-Disposition": f'inline; filename="{result.filename}"', **result.headers},
    )


def _after_job(future: Future, learn: Callable[[RestoreResult], None]) -> None:
    """What the server does once a job of the job API ends: learn its speed, or log an internal failure."""
    if future.cancelled():
        return
    error = future.exception()
    if error is None:
        learn(future.result())
    elif not isinstance(error, (MprnetError, MemoryError)):
        _log.error("a job failed", exc_info=error)


def _describe_job(job: Job, estimate: Estimate | None = None) -> dict[str, Any]:
    """What GET /api/jobs/{id} answers (and POST /api/jobs, with the estimate's details)."""
    left = job.seconds_left()
    description: dict[str, Any] = {
        "id": job.id,
        "state": job.state,
        "tiles_done": job.tiles_done,
        "tiles_total": job.tiles_total,
        "percent": round(job.percent(), 1),
        "elapsed_s": round(job.elapsed_s(), 2),
        "left_s": None if left is None else round(left, 1),
        "estimate_s": None if job.estimate_s is None else round(job.estimate_s, 1),
        **({} if estimate is None else estimate.describe()),
        "status_url": f"/api/jobs/{job.id}",
        "result_url": f"/api/jobs/{job.id}/result",
    }
    if job.state == FAILED:
        description["status"], description["error"] = _failure(job.error)
    return description


async def _calibrate(queue: JobQueue, speeds: Speeds, key: tuple[str, str], request: RestoreRequest, side: int) -> None:
    """Time the method on a degraded sample photo, in a job like any other. Past the time limit, its two passes
    took half of it each at least; where it fails otherwise, there is no estimate yet."""
    try:
        seconds, pixels = await queue.run(functools.partial(_calibration_job, request, side))
    except QueueFull:
        raise
    except JobTimeout:
        seconds, pixels = queue.timeout_s / 2, work_pixels(request.restorer, side, side)
    except Exception as error:  # the method's failure on the sample (a missing sigma, say): the job will tell
        _log.info("no estimate for %s: its calibration failed (%s)", "/".join(key), error)
        return
    speeds.record(key, seconds, pixels)


def _calibration_job(request: RestoreRequest, side: int, _deadline: Deadline) -> tuple[float, int]:
    task = request.task if request.task in TASKS else "denoise"
    photo = ImageData(degrade_sample(task, next(iter(sample_photos(side).values())), 0))
    known = _known(request.uploads, request.sigma)
    seconds = timed_twice(lambda: restore_image(photo, request.restorer, **known))
    return seconds, work_pixels(request.restorer, side, side)


def _dimensions(upload: Upload) -> tuple[int, int, int] | None:
    """Width, height and frames of an uploaded image, read from its header; None where that cannot be read (the
    job, decoding it, then says why)."""
    try:
        with quiet_decoders(), open_raster(upload.data) as image:
            frames = getattr(image, "n_frames", 1) if image.format in ANIMATED_FORMATS else 1
            return image.width, image.height, frames
    except Exception:  # whatever Pillow raises on a damaged header: the decoding in the job reports it
        return None


def _too_long(estimate: Estimate, method: str, limit_s: float) -> str:
    largest = limit_s / estimate.seconds_per_megapixel
    return (
        f"this image would take about {estimate.seconds:.0f} s with {method} on this server "
        f"({estimate.megapixels:.1f} megapixels of work at {estimate.seconds_per_megapixel:.1f} s per megapixel), "
        f"more than its limit of {limit_s:g} s per job; send a smaller image (about {largest:.1f} megapixels of "
        "work at most)"
    )


async def _read(upload: UploadFile, field: str) -> Upload:
    data = await upload.read()
    if not data:
        raise ImageError(f"{field}: the uploaded file is empty")
    return Upload(field, upload.filename or field, data)


def _restore_job(request: RestoreRequest, deadline: Deadline) -> RestoreResult:
    """Runs on a worker thread: decode (from the uploaded bytes), restore, measure, and encode inside a temporary
    folder."""
    with tempfile.TemporaryDirectory(prefix="mprnet-serve-") as folder:
        try:
            return _restore_in(Path(folder), request, deadline)
        except MprnetError as error:  # messages name files by path: show the form field instead
            raise type(error)(str(error).replace(folder + os.sep, "")) from None


def _restore_in(folder: Path, request: RestoreRequest, deadline: Deadline) -> RestoreResult:
    uploads, task, restorer = request.uploads, request.task, request.restorer
    image = _decode(uploads["image"], request.max_pixels)
    known = _known(uploads, request.sigma)
    # Tells the job's progress and lets it stop at its deadline: a network reports every tile (a classic method
    # runs in one piece).
    known["progress"] = deadline.progress
    file_format, suffix = _output_format(image, request.output_format)
    started = time.perf_counter()
    restored = restore_image(image, restorer, gray_method=request.gray_method, **known)
    seconds = time.perf_counter() - started
    headers = {
        "X-Task": "+".join(restored.steps(task)),  # "denoise+derain" where a second task followed
        "X-Method": restored.method or "none",
        "X-Seconds": f"{seconds:.3f}",
        **_decision_headers(restored),
    }
    if "reference" in uploads:
        reference = _decode(uploads["reference"], request.max_pixels)
        # The last task's protocol
        headers.update(_compare(image.pixels, restored.image.pixels, reference.pixels, restored.steps(task)[-1]))
    target = write_image(folder / f"restored{suffix}", restored.image, file_format)
    return RestoreResult(
        target.read_bytes(),
        Image.MIME[Image.registered_extensions()[suffix]],
        f"{_safe_stem(uploads['image'].filename)}-restored{suffix}",
        headers,
        seconds if _by_the_method(restored, restorer) else None,
    )


def _by_the_method(restored: Restored, asked: Restorer) -> bool:
    """Whether the method asked for did the work (not left alone, nor a black-and-white photo's gray method), so
    that its time tells the method's speed."""
    return restored.chosen is not None and (restored.diagnosis is not None or restored.chosen is asked)


def _output_format(image: ImageData, asked: str) -> tuple[str, str]:
    """The format of the result and its suffix, decided before the work: the one asked for ("same": the upload's,
    PNG where that is not written); ImageError if it cannot hold the image."""
    file_format = image.format.upper() if asked == "same" else asked.upper()
    file_format = file_format if file_format in WRITABLE_FORMATS else "PNG"
    problem = not_held(file_format, image)
    if problem:
        raise ImageError(f"output_format: {problem}")
    return file_format, WRITABLE_FORMATS[file_format]


def _decision_headers(restored: Restored) -> dict[str, str]:
    """What task auto decided (X-Decision, X-Confidence, X-Kernel-Peak where blur was checked) and what the judge
    found (X-Judged: helped or not better, and X-Warning why: the page shows both)."""
    headers = {}
    diagnosis = restored.diagnosis
    if diagnosis is not None:
        headers = {"X-Decision": diagnosis.decision, "X-Confidence": f"{diagnosis.confidence:.4f}"}
        if diagnosis.kernel_peak is not None:
            headers["X-Kernel-Peak"] = f"{diagnosis.kernel_peak:.4f}"
    if restored.verdict is not None:
        headers["X-Judged"] = "helped" if restored.verdict.helped else "not better"
    if restored.warning:
        headers["X-Warning"] = restored.warning
    return headers


def _decode(upload: Upload, max_pixels: int) -> ImageData:
    """The uploaded image, read from its bytes with every check `io.read_image` makes; errors name its field."""
    try:
        return read_image_bytes(upload.data, upload.field, max_pixels=max_pixels)
    except PixelLimitError as error:
        raise PixelLimitError(f"{error}; the server's operator sets this limit") from None


def _known(uploads: dict[str, Upload], sigma: float | None) -> dict[str, Any]:
    known: dict[str, Any] = {} if sigma is None else {"sigma": sigma}
    if "kernel" in uploads:
        from ..baselines.deconv import kernel_from_bytes

        upload = uploads["kernel"]
        name = "kernel.npy" if upload.filename.lower().endswith(".npy") else "kernel.png"
        known["kernel"] = kernel_from_bytes(upload.data, name)
    return known


def _compare(degraded: np.ndarray, restored: np.ndarray, reference: np.ndarray, task: str) -> dict[str, str]:
    """PSNR/SSIM of the input and of the result against the clean reference (colour channels; Y for derain)."""
    degraded, restored, reference = (_colour(pixels) for pixels in (degraded, restored, reference))
    if reference.shape != degraded.shape:
        raise ImageError(
            f"reference: expected the image's size and channels {_shape(degraded)}, found {_shape(reference)}"
        )
    protocol = TASKS[task].comparison_protocol if degraded.shape[2] == 3 and task in TASKS else "rgb"
    before, after = evaluate_pair(degraded, reference, protocol), evaluate_pair(restored, reference, protocol)
    return {
        "X-Protocol": protocol,
        "X-PSNR-Input": f"{before['psnr']:.4f}",
        "X-SSIM-Input": f"{before['ssim']:.4f}",
        "X-PSNR-Output": f"{after['psnr']:.4f}",
        "X-SSIM-Output": f"{after['ssim']:.4f}",
    }


def _colour(pixels: np.ndarray) -> np.ndarray:
    return pixels[..., :-1] if pixels.shape[2] in (2, 4) else pixels


def _shape(pixels: np.ndarray) -> str:
    height, width, channels = pixels.shape
    return f"{width}x{height}x{channels}"


def _safe_stem(filename: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).stem).strip("._")
    return stem[:80] or "image"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI, settings: Settings) -> None:
    retry = {"Retry-After": str(settings.retry_after_s)}

    @app.exception_handler(MprnetError)
    async def expected(_request: Request, error: MprnetError) -> JSONResponse:
        status, message = _failure(error)
        return _error(status, message, retry if status == 503 else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(400, "; ".join(_describe_invalid(problem) for problem in error.errors()))

    @app.exception_handler(HTTPException)
    async def http(_request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(MemoryError)
    async def memory(_request: Request, error: MemoryError) -> JSONResponse:
        return _error(*_failure(error), retry)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        _log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return _error(*_failure(error))


def _failure(error: BaseException | None) -> tuple[int, str]:
    """The status and message a request (or a job of the job API) that failed with `error` answers."""
    if isinstance(error, QueueFull | MemoryError):
        return 503, str(error) if isinstance(error, QueueFull) else _OUT_OF_MEMORY
    if isinstance(error, JobTimeout):
        return 504, str(error)
    if isinstance(error, RequestProblem):
        return error.status, str(error)
    if isinstance(error, UnknownJob):
        return 404, str(error)
    if isinstance(error, MprnetError):
        return 400 if isinstance(error, UnknownChoice) else 422, str(error)
    return 500, _INTERNAL


def _describe_invalid(problem: dict) -> str:
    field = problem["loc"][-1] if problem.get("loc") else "request"
    if problem.get("type") == "missing":
        return f"missing form field {field!r}" + (" (the picture to restore)" if field == "image" else "")
    return f"form field {field!r}: {problem.get('msg', 'invalid value')}"


class _HostCheck:
    """Answers 421 to a request whose Host header names a host this server was not told it serves."""

    def __init__(self, app, allowed: tuple[str, ...]):
        self.app = app
        self.allowed = {host.lower().strip("[]") for host in allowed}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or "*" in self.allowed:
            await self.app(scope, receive, send)
            return
        host = host_name(dict(scope["headers"]).get(b"host", b"").decode("latin-1"))
        if host in self.allowed:
            await self.app(scope, receive, send)
            return
        message = (
            f"this server does not answer to the host {host!r}" if host else "the request names no host (Host header)"
        ) + "; its operator can allow it with --allow-host"
        await _refuse(RequestProblem(message, 421), scope, receive, send)


def host_name(header: str) -> str:
    """The host of a Host header, lower-case, without its port or an IPv6 address's brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class _UploadLimit:
    """Refuses a request body over the limit, or of undeclared size, before anything reads it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        problem = self._problem(scope) if scope["type"] == "http" and scope["method"] in ("POST", "PUT") else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        await _refuse(problem, scope, receive, send)

    def _problem(self, scope) -> RequestProblem | None:
        length = dict(scope["headers"]).get(b"content-length")
        if length is None:
            return RequestProblem("the request must state its size (Content-Length); chunked uploads are refused", 411)
        if not length.isdigit():
            return RequestProblem(
                f"the Content-Length header must be a number, found {length.decode(errors='replace')!r}", 400
            )
        if int(length) > self.max_bytes:
            return RequestProblem(
                f"the upload is {_megabytes(int(length))}, more than the limit of {_megabytes(self.max_bytes)}", 413
            )
        return None


async def _refuse(problem: RequestProblem, scope, receive, send) -> None:
    """Answer `problem` before the application sees the request, and close the connection."""
    await _drain(receive)
    await _error(problem.status, str(problem), {"Connection": "close"})(scope, receive, send)


async def _drain(receive) -> None:
    """Read and drop the refused body (up to a bound), so that the client, still sending, gets to read the answer."""
    drained = 0
    while drained < _DRAIN_LIMIT:
        message = await receive()
        drained += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
