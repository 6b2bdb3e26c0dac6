"""``/``: the dashboard, a static page that lists once and follows the watch stream."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = resources.files("novawatch.api") / "static"


def router() -> APIRouter:
    """The dashboard's page (its scripts and styles are mounted by :func:`mount_static`)."""
    routes = APIRouter()

    @routes.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse((STATIC / "dashboard.html").read_text(encoding="utf-8"))

    return routes


def mount_static(app: FastAPI) -> None:
    """The dashboard's static files under ``/static``."""
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
