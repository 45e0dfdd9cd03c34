"""The web demo and the HTTP API: `create_app(Settings(...))` builds the FastAPI application.

Routes: `/` (the page), `POST /api/restore`, `GET /api/models`, `GET /api/examples` (+ the example PNGs),
`GET /healthz`, and the OpenAPI description at `/openapi.json` (FastAPI's `/docs` pages are off: they load their
scripts from a CDN, and the page must work offline). Every error is JSON `{"error": "<one sentence>"}` with a
4xx/5xx status, never a stack trace. Uploads are bounded (bytes before parsing, pixels before decoding), restorations
run on a bounded job queue (503 + Retry-After when full, 504 past the time limit), and each job works in its own
temporary folder, removed when it ends: nothing is written anywhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException

from .. import __version__
from ..checkpoint import BUNDLED_MODELS_TRUTH
from ..errors import ImageError, MprnetError
from ..io import WRITABLE_FORMATS, ImageData, PixelLimitError, not_held, read_image, write_image
from ..metrics import evaluate_pair
from ..pipeline import Restored, restore_image
from ..restorers import AUTO, Restorer, gray_method_for
from ..tasks import TASKS
from .catalogue import Catalogue, Examples, UnknownChoice, load_catalogue
from .jobs import Deadline, JobQueue, JobTimeout, QueueFull, can_isolate
from .settings import Settings

STATIC = Path(__file__).parent / "static"
OUTPUT_FORMATS = {name.lower(): suffix for name, suffix in WRITABLE_FORMATS.items()}
_PAGE_POLICY = "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'"
#: A refused upload is read (and dropped) up to this size before the answer; beyond, the connection is just closed.
_DRAIN_LIMIT = 256 * 2**20
_log = logging.getLogger("mprnet.serve")


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


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application, with its models loaded and its job queue started."""
    settings = settings or Settings()
    catalogue = load_catalogue(settings.models, settings.device, settings.precision, settings.tile, settings.baselines)
    isolate = settings.isolate_jobs
    if isolate is None:
        isolate = can_isolate() and catalogue.devices() <= {"cpu"}
    queue = JobQueue(settings.workers, settings.queue_size, settings.job_timeout_s, isolate)
    examples = Examples([task for task in catalogue.tasks if task in TASKS], settings.example_size)
    examples.prepare_in_background()

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
    app.add_middleware(_UploadLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(_HostCheck, allowed=settings.allowed_hosts)  # added last, so it runs first
    _add_error_handlers(app, settings)
    _add_routes(app, settings, catalogue, queue, examples)
    _add_restore_route(app, settings, catalogue, queue)
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


def _add_restore_route(app: FastAPI, settings: Settings, catalogue: Catalogue, queue: JobQueue) -> None:
    @app.post(
        "/api/restore",
        summary="Restore one image",
        response_class=Response,
        responses={
            200: {
                "content": {"image/*": {}},
                "description": "The restored image, in the input's format unless output_format says otherwise",
            },
            400: {"description": "Unknown task, method or option"},
            413: {"description": "Upload too large"},
            422: {"description": "Not a usable image"},
            503: {"description": "Busy: retry after the Retry-After seconds"},
            504: {"description": "The job took longer than the time limit"},
        },
    )
    async def restore(
        image: Annotated[UploadFile, File(description="the picture to restore")],
        task: Annotated[str, Form(description=f"{', '.join(TASKS)} or {AUTO} (GET /api/models lists what is offered)")],
        method: Annotated[
            str | None, Form(description="a method of the task (GET /api/models); default: the task's network")
        ] = None,
        sigma: Annotated[float | None, Form(description="noise level, 0-255 scale (non-blind methods)")] = None,
        kernel: Annotated[UploadFile | None, File(description="blur kernel, .npy or gray image")] = None,
        reference: Annotated[UploadFile | None, File(description="clean image, to measure PSNR/SSIM")] = None,
        output_format: Annotated[str, Form(description="same, png, jpeg, tiff, webp or bmp")] = "same",
    ) -> Response:
        chosen = catalogue.get(task, method)
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
        job = functools.partial(_restore_job, request)
        result = await queue.run(job)
        return Response(
            result.data,
            media_type=result.media_type,
            headers={"Content-Disposition": f'inline; filename="{result.filename}"', **result.headers},
        )


async def _read(upload: UploadFile, field: str) -> Upload:
    data = await upload.read()
    if not data:
        raise ImageError(f"{field}: the uploaded file is empty")
    return Upload(field, upload.filename or field, data)


def _restore_job(request: RestoreRequest, deadline: Deadline) -> RestoreResult:
    """Runs on a worker thread: decode, restore, measure, encode, all inside a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="mprnet-serve-") as folder:
        try:
            return _restore_in(Path(folder), request, deadline)
        except MprnetError as error:  # messages name files by path: show the form field instead
            raise type(error)(str(error).replace(folder + os.sep, "")) from None


def _restore_in(folder: Path, request: RestoreRequest, deadline: Deadline) -> RestoreResult:
    uploads, task, restorer = request.uploads, request.task, request.restorer
    image = _decode(folder, uploads["image"], request.max_pixels)
    known = _known(folder, uploads, request.sigma)
    # Lets a restoration stop at its deadline: a network reports every tile (a classic method runs in one piece).
    known["progress"] = lambda done, total: deadline.check()
    file_format, suffix = _output_format(image, request.output_format)
    started = time.perf_counter()
    restored = restore_image(image, restorer, gray_method=request.gray_method, **known)
    headers = {
        "X-Task": "+".join(restored.steps(task)),  # "denoise+derain" where a second task followed
        "X-Method": restored.method or "none",
        "X-Seconds": f"{time.perf_counter() - started:.3f}",
        **_decision_headers(restored),
    }
    if "reference" in uploads:
        reference = _decode(folder, uploads["reference"], request.max_pixels)
        # The last task's protocol
        headers.update(_compare(image.pixels, restored.image.pixels, reference.pixels, restored.steps(task)[-1]))
    target = write_image(folder / f"restored{suffix}", restored.image, file_format)
    return RestoreResult(
        target.read_bytes(),
        Image.MIME[Image.registered_extensions()[suffix]],
        f"{_safe_stem(uploads['image'].filename)}-restored{suffix}",
        headers,
    )


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


def _decode(folder: Path, upload: Upload, max_pixels: int) -> ImageData:
    path = folder / upload.field
    path.write_bytes(upload.data)
    try:
        return read_image(path, max_pixels=max_pixels)
    except PixelLimitError as error:
        raise PixelLimitError(f"{error}; the server's operator sets this limit") from None


def _known(folder: Path, uploads: dict[str, Upload], sigma: float | None) -> dict[str, Any]:
    known: dict[str, Any] = {} if sigma is None else {"sigma": sigma}
    if "kernel" in uploads:
        from ..baselines import load_kernel

        upload = uploads["kernel"]
        path = folder / ("kernel.npy" if upload.filename.lower().endswith(".npy") else "kernel.png")
        path.write_bytes(upload.data)
        known["kernel"] = load_kernel(path)
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
        if isinstance(error, QueueFull):
            return _error(503, str(error), retry)
        if isinstance(error, JobTimeout):
            return _error(504, str(error))
        if isinstance(error, RequestProblem):
            return _error(error.status, str(error))
        return _error(400 if isinstance(error, UnknownChoice) else 422, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(400, "; ".join(_describe_invalid(problem) for problem in error.errors()))

    @app.exception_handler(HTTPException)
    async def http(_request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(MemoryError)
    async def memory(_request: Request, _error_: MemoryError) -> JSONResponse:
        return _error(503, "the server ran out of memory for this image; try a smaller one", retry)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        _log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return _error(500, "the server failed on this request (an internal error, logged on the server)")


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
