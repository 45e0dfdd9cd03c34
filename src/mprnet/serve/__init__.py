"""`mprnet serve`: the web demo and HTTP API (FastAPI). Needs the optional packages fastapi, uvicorn and
python-multipart."""
from .app import Settings, create_app

__all__ = ["Settings", "create_app"]
