"""A small bounded run of benchmarks/serve_load.py: a real server process under a burst of concurrent requests."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_load.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # 6 s: a server process under a burst: make test-slow and CI run it
def test_burst_is_answered_without_loss_or_leak(capsys):
    figures = load_benchmark().main(
        [
            "--tiny",
            "--requests",
            "40",
            "--clients",
            "8",
            "--workers",
            "1",
            "--queue",
            "2",
            "--time-limit",
            "60",
            "--json",
        ]
    )
    assert figures["answered_200"] + figures["answered_503"] == 40
    assert figures["lost"] == 0 and figures["other"] == []
    assert figures["answered_200"] >= 3  # at least what one worker and a queue of 2 admit at once
    assert figures["healthy_after"]
    assert figures["rss_after_mib"] - figures["rss_before_mib"] < 25
    assert '"answered_200"' in capsys.readouterr().out
