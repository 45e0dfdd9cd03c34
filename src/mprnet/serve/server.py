"""Running the application under uvicorn: on a socket bound beforehand (so a busy port is reported plainly), in the
foreground for `mprnet serve`, or on a free loopback port in a background thread for tests and benchmarks."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from ..errors import MprnetError

_START_TIMEOUT_S = 30


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port; `MprnetError` if that address cannot be used."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except (OSError, OverflowError) as error:  # OverflowError: a port outside 0-65535
        raise MprnetError(f"cannot listen on {host}:{port} ({getattr(error, 'strerror', None) or error})") from None
    return listener


def serve(app: FastAPI, listener: socket.socket, log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl+C)."""
    uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[listener])


@contextlib.contextmanager
def serving(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` on a free port of `host` in a background thread; yields the base URL, stops on exit."""
    listener = listen(host, 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="mprnet-serve", daemon=True)
    thread.start()
    try:
        _wait_until_started(server, thread)
        yield f"http://{host}:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(_START_TIMEOUT_S)
        listener.close()


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    give_up = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > give_up:
            raise MprnetError("the server did not start (see its log above)")
        time.sleep(0.02)
