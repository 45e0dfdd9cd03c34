"""The server's settings and their defaults, the one place `mprnet serve`'s options take their defaults from
(this module imports no web framework, so the command's help needs none)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from ..infer import DEFAULT_PRECISION

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the server loads and how much work it accepts."""

    #: task -> bundled model name or weights file; None: every bundled model.
    models: Mapping[str, str | os.PathLike] | None = None
    workers: int = 1  # restorations running at once
    queue_size: int = 8  # restorations waiting beyond those; more are refused with 503
    job_timeout_s: float = 300.0  # the longest a request waits for its result, queue included
    max_upload_bytes: int = 25 * 2**20  # the whole request body
    max_pixels: int = 16_000_000  # per image
    retry_after_s: int = 5
    device: str = "auto"
    precision: str = DEFAULT_PRECISION
    tile: int | None = None  # None: chosen from free memory
    baselines: bool = True  # also offer the classic methods of mprnet.baselines
    example_size: int = 256
    #: Host names requests may be addressed to (the Host header, without its port); "*" accepts any. Refusing the
    #: others keeps web pages from reaching this unauthenticated server through DNS rebinding.
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    #: Each restoration in a forked process, ended at its time limit. None: where the system can fork and the
    #: networks run on the CPU (a CUDA or MPS context does not survive a fork; there jobs stop between tiles).
    isolate_jobs: bool | None = None
    #: The job API keeps a finished job's result this long, and only the last `keep_jobs` of them.
    keep_jobs: int = 16
    keep_jobs_s: float = 600.0
    #: The side of the photo each method is timed on at its first use, for the estimates (seconds per megapixel).
    calibration_side: int = 256
