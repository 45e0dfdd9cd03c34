"""`mprnet serve`: the web demo and HTTP API on this machine (loopback only unless --host says otherwise)."""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import sys

from ..errors import MprnetError
from ..infer import PRECISIONS
from ..serve.settings import LOOPBACK_HOSTS, Settings
from . import add_number, add_tiling

HELP = "serve the web demo and HTTP API (upload a picture, restore it, compare before and after)"
_PACKAGES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Settings()
    _add_address_options(parser)
    _add_limit_options(parser, defaults)
    _add_model_options(parser, defaults)
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def _add_address_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 opens it to the network)",
    )
    add_number(parser, "--port", int, least=0, default=8000, help="port (default: 8000)")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to this host name (repeatable; '*' for any). By "
        "default only localhost, 127.0.0.1, [::1] and the --host address are answered, which "
        "keeps web pages from reaching the server through DNS rebinding",
    )


def _add_limit_options(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    add_number(
        parser,
        "--workers",
        int,
        least=1,
        default=defaults.workers,
        help="restorations running at once (default: %(default)s)",
    )
    add_number(
        parser,
        "--queue",
        int,
        least=0,
        default=defaults.queue_size,
        help="restorations waiting beyond those; more get 503 + Retry-After (default: %(default)s)",
    )
    add_number(
        parser,
        "--job-timeout",
        above=0,
        default=defaults.job_timeout_s,
        metavar="S",
        help="the longest a request waits for its result, queue included (default: %(default)g)",
    )
    add_number(
        parser,
        "--max-upload-mb",
        above=0,
        default=defaults.max_upload_bytes / 2**20,
        metavar="MB",
        help="largest request body in MiB (default: %(default)g)",
    )
    add_number(
        parser,
        "--max-megapixels",
        above=0,
        default=defaults.max_pixels / 1e6,
        metavar="MP",
        help="largest image in megapixels (default: %(default)g)",
    )


def _add_model_options(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="TASK=PATH",
        help="use these weights for a task instead of the bundled model (repeatable)",
    )
    parser.add_argument("--no-baselines", action="store_true", help="offer the networks only, not classic methods")
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:1, mps (default: %(default)s)")
    parser.add_argument(
        "--precision",
        default=defaults.precision,
        choices=PRECISIONS,
        help="arithmetic precision (default: %(default)s)",
    )
    add_tiling(parser, overlap=False)


def run(args: argparse.Namespace) -> int:
    _require_packages()
    from ..serve import create_app
    from ..serve.server import listen, serve

    listener = listen(args.host, args.port)  # first, so that a busy port is reported before models load
    with listener:
        app = create_app(settings_from(args))
        if not _is_loopback(args.host):
            print(
                f"mprnet serve: note: listening on {args.host}; anyone who can reach this machine can use the "
                f"server (it has no authentication)",
                file=sys.stderr,
            )
        print(
            f"mprnet serve: open http://{_display_host(args.host)}:{listener.getsockname()[1]}/ (Ctrl+C stops)",
            file=sys.stderr,
        )
        serve(app, listener, args.log_level)
    return 0


def settings_from(args: argparse.Namespace):
    """The server `Settings` the command-line options describe (their values checked as they were read)."""
    hosts = (*LOOPBACK_HOSTS, args.host, *args.allow_host)
    return Settings(
        models=_models(args.weights),
        workers=args.workers,
        queue_size=args.queue,
        allowed_hosts=hosts,
        job_timeout_s=args.job_timeout,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=int(args.max_megapixels * 1e6),
        device=args.device,
        precision=args.precision,
        tile=args.tile,
        baselines=not args.no_baselines,
    )


def _models(pairs: list[str]) -> dict[str, str] | None:
    if not pairs:
        return None
    from ..serve.catalogue import bundled_sources

    models = bundled_sources()
    for pair in pairs:
        task, separator, path = pair.partition("=")
        if not separator or not path:
            raise MprnetError(f"--weights expects TASK=PATH (for example denoise=my.safetensors), found {pair!r}")
        models[task] = path
    return models


def _require_packages() -> None:
    missing = [package for module, package in _PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise MprnetError(
            f"mprnet serve needs the packages {', '.join(_PACKAGES.values())}; missing: "
            f"{', '.join(missing)} (pip install {' '.join(missing)})"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
