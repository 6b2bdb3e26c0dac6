"""The dashboard works offline: every script, module and stylesheet it loads is served by the model service
from the package (uPlot vendored with its licence), and nothing refers to another origin."""

from __future__ import annotations

import re
from importlib import resources

import httpx

from novawatch.api.model_app import create_model_app
from novawatch.api.server import ServerThread
from novawatch.model.live.runtime import ModelRuntime

from .helpers import small_cloud

STATIC = resources.files("novawatch.api") / "static"


def test_every_asset_the_page_loads_is_served_from_the_package() -> None:
    runtime = ModelRuntime()
    runtime.load(small_cloud())
    with ServerThread(create_model_app(runtime.state), name="model") as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        _check_assets(client)


def _check_assets(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert "/static/vendor/uplot/uPlot.iife.min.js" in assets and "/static/js/app.js" in assets
    modules = ["js/app.js"]
    seen: set[str] = set()
    while modules:  # follow the ES module imports from app.js
        name = modules.pop()
        if name in seen:
            continue
        seen.add(name)
        text = (STATIC / name).read_text(encoding="utf-8")
        modules += ["js/" + m for m in re.findall(r'from "\./([\w.]+)"', text)]
        assets.append(f"/static/{name}")
    assert {"js/overview.js", "js/hosts.js", "js/host.js", "js/instances.js", "js/live.js"} <= seen
    for url in assets:
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert not re.search(r"https?://(?!www\.w3\.org)", resp.text) or url.startswith("/static/vendor/"), url
    assert (STATIC / "vendor" / "uplot" / "LICENSE").read_text(encoding="utf-8").startswith("The MIT License")
