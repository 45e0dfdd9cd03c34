"""Load test of `mprnet serve` on loopback: a bounded burst of restorations from concurrent clients.

Starts the server as its own process (so its memory is measured alone), warms it up, fires `--requests` POSTs from
`--clients` threads, and prints: how many were answered 200, 503 (busy, with Retry-After) or otherwise, how many were
lost (no answer), latency, throughput, and the server's resident memory before, at the peak of and after the burst.

    .venv/bin/python benchmarks/serve_load.py                       # 200 requests, 16 clients, bundled denoiser
    .venv/bin/python benchmarks/serve_load.py --tiny --requests 40 --json
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="side of the test images in pixels (default 32)")
    parser.add_argument("--task", default="denoise")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--tiny", action="store_true", help="serve a tiny random network instead of the bundled one")
    parser.add_argument("--time-limit", type=float, default=300, help="give up the burst after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    return parser.parse_args(argv)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        kilobytes = int(re.search(r"VmRSS:\s+(\d+) kB", status.read()).group(1))
    return kilobytes / 1024


def start_server(args: argparse.Namespace, folder: Path) -> tuple[subprocess.Popen, str]:
    command = [
        sys.executable,
        "-m",
        "mprnet",
        "serve",
        "--port",
        "0",
        "--log-level",
        "warning",
        "--workers",
        str(args.workers),
        "--queue",
        str(args.queue),
        "--no-baselines",
    ]
    if args.tiny:
        import mprnet

        network = mprnet.create_model("mprnet", n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
        command.append(
            f"--weights={args.task}={mprnet.save_weights(network, folder / 'tiny.safetensors', task=args.task)}"
        )
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    line = server.stderr.readline()
    found = re.search(r"open (http://\S+)/", line)
    if not found:
        server.kill()
        raise SystemExit(f"the server did not start: {line}{server.stderr.read()}")
    threading.Thread(target=server.stderr.read, daemon=True).start()  # keep its log pipe from filling up
    return server, found.group(1)


def png_bytes(size: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def one_request(client: httpx.Client, image: bytes, task: str) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        answer = client.post("/api/restore", files={"image": ("load.png", image, "image/png")}, data={"task": task})
    except httpx.HTTPError as error:
        return f"lost ({type(error).__name__})", time.perf_counter() - started
    outcome = str(answer.status_code)
    if answer.status_code == 503 and "retry-after" not in answer.headers:
        outcome = "503 without Retry-After"
    return outcome, time.perf_counter() - started


def warm_up(url: str, args: argparse.Namespace) -> None:
    """Every worker's first allocations, so that 'before' is the server's steady level."""
    with httpx.Client(base_url=url, timeout=args.time_limit) as client, ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(lambda seed: one_request(client, png_bytes(args.size, seed), args.task), range(2 * args.workers)))


def burst(url: str, args: argparse.Namespace, server_pid: int) -> dict:
    images = [png_bytes(args.size, seed) for seed in range(8)]
    clients = [httpx.Client(base_url=url, timeout=args.time_limit) for _ in range(args.clients)]
    peak = [rss_mib(server_pid)]
    done = threading.Event()

    def watch_memory() -> None:
        while not done.wait(0.05):
            peak.append(rss_mib(server_pid))

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        results = list(
            pool.map(
                lambda n: one_request(clients[n % args.clients], images[n % len(images)], args.task),
                range(args.requests),
            )
        )
    wall = time.perf_counter() - started
    done.set()
    watcher.join()
    for client in clients:
        client.close()
    outcomes = [outcome for outcome, _ in results]
    latencies = sorted(seconds for outcome, seconds in results if outcome == "200")
    return {
        "requests": args.requests,
        "clients": args.clients,
        "answered_200": outcomes.count("200"),
        "answered_503": outcomes.count("503"),
        "other": sorted({outcome for outcome in outcomes if outcome not in ("200", "503")}),
        "lost": sum(outcome.startswith("lost") for outcome in outcomes),
        "wall_s": round(wall, 2),
        "restored_per_s": round(len(latencies) / wall, 1),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3) if latencies else None,
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
        "rss_peak_mib": round(max(peak), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        server, url = start_server(args, Path(folder))
        try:
            warm_up(url, args)
            before = rss_mib(server.pid)
            figures = burst(url, args, server.pid)
            time.sleep(1.0)
            figures.update(
                rss_before_mib=round(before, 1),
                rss_after_mib=round(rss_mib(server.pid), 1),
                healthy_after=httpx.get(f"{url}/healthz", timeout=10).json()["status"] == "ok",
                workers=args.workers,
                queue=args.queue,
                size=args.size,
                model="tiny random" if args.tiny else f"bundled {args.task}",
            )
        finally:
            server.terminate()
            server.wait(30)
    report(figures, args.json)
    return figures


def report(figures: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures))
        return
    f = figures
    print(
        f"{f['requests']} requests from {f['clients']} clients, {f['size']}x{f['size']} PNG, {f['model']} model, "
        f"{f['workers']} workers + queue of {f['queue']}"
    )
    print(
        f"  answered: {f['answered_200']} x 200, {f['answered_503']} x 503 (busy), other: {f['other'] or 'none'}, "
        f"lost: {f['lost']}"
    )
    print(
        f"  wall {f['wall_s']} s, {f['restored_per_s']} restorations/s, latency of 200s: p50 {f['latency_p50_s']} s, "
        f"p95 {f['latency_p95_s']} s, max {f['latency_max_s']} s"
    )
    print(
        f"  server memory: {f['rss_before_mib']} MiB before, {f['rss_peak_mib']} MiB peak, "
        f"{f['rss_after_mib']} MiB after; healthy after: {f['healthy_after']}"
    )


if __name__ == "__main__":
    main()
