"""`mprnet serve`: the web demo and HTTP API (FastAPI). Needs the optional packages fastapi, uvicorn and
python-multipart; `Settings` does not, so the command's options can be read without them."""

from .settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # imported on first use: it needs the web framework
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
