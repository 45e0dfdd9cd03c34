"""`mprnet serve`: options, plain errors, and a real server process started and stopped."""

import re
import signal
import socket
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from mprnet.cli import build_parser, main  # noqa: E402
from mprnet.cli.serve import settings_from  # noqa: E402
from mprnet.tasks import TASK_NAMES  # noqa: E402

from test_serve_api import tiny_settings  # noqa: E402


def test_options_become_settings():
    args = build_parser().parse_args(
        [
            "serve",
            "--workers",
            "2",
            "--queue",
            "3",
            "--job-timeout",
            "9",
            "--max-upload-mb",
            "1.5",
            "--max-megapixels",
            "2",
            "--no-baselines",
            "--weights",
            "denoise=mine.safetensors",
        ]
    )
    settings = settings_from(args)
    assert (settings.workers, settings.queue_size, settings.job_timeout_s) == (2, 3, 9.0)
    assert (settings.max_upload_bytes, settings.max_pixels, settings.baselines) == (1_572_864, 2_000_000, False)
    assert settings.models["denoise"] == "mine.safetensors"
    assert settings.models["derain"] == "derain"
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert set(settings.allowed_hosts) == {"localhost", "127.0.0.1", "::1"}


def test_the_host_it_listens_on_and_allowed_names_are_answered():
    args = build_parser().parse_args(["serve", "--host", "192.168.1.5", "--allow-host", "photos.lan"])
    assert set(settings_from(args).allowed_hosts) == {"localhost", "127.0.0.1", "::1", "192.168.1.5", "photos.lan"}


@pytest.mark.parametrize(
    "options, message, status",
    [
        (["--weights", "denoise"], "--weights expects TASK=PATH", 1),
        (["--max-upload-mb", "0"], "--max-upload-mb must be positive", 2),
        (["--weights", "sharpen=x.safetensors"], "expected models for tasks among denoise, deblur, derain", 1),
    ],
)
def test_bad_options_are_plain_errors(options, message, status, capsys):
    assert main(["serve", "--port", "0", *options]) == status
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_busy_port_is_reported_plainly(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert main(["serve", "--port", "99999"]) == 1
    assert "cannot listen on 127.0.0.1:99999 (bind(): port must be 0-65535" in capsys.readouterr().err


def test_server_process_serves_then_stops_on_ctrl_c(tmp_path):
    weights = [f"--weights={task}={path}" for task, path in tiny_settings(tmp_path).models.items()]
    process = subprocess.Popen(
        [sys.executable, "-m", "mprnet", "serve", "--port", "0", "--log-level", "warning", *weights],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        url = re.search(r"open (http://\S+/)", line).group(1)
        assert httpx.get(url + "healthz", timeout=10).json()["tasks"] == list(TASK_NAMES)
        process.send_signal(signal.SIGINT)
        # A graceful stop: uvicorn re-raises the captured Ctrl+C (130) or returns normally, depending on timing.
        assert process.wait(timeout=20) in (0, 130)
        assert "Traceback" not in process.stderr.read()
    finally:
        process.kill()
        process.wait()
