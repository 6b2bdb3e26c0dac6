"""docs/grafana/novawatch.json queries only what the model service's ``/metrics`` carries: every metric, and
every label value a selector names, is in a real scrape."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from novawatch.api.model_app import create_model_app
from novawatch.api.server import ServerThread
from novawatch.model.live.runtime import ModelRuntime

from .helpers import instance_notification, small_cloud

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "novawatch.json"
SELECTOR = re.compile(r"\b(novawatch_[a-z_]+)(?:\{([^}]*)\})?")


@pytest.fixture(scope="module")
def scrape() -> Iterator[str]:
    runtime = ModelRuntime()
    runtime.load(small_cloud())
    with ServerThread(create_model_app(runtime.state), name="model") as server:
        created = instance_notification("instance-create-end", uuid="22222222-0000-4000-8000-0000000000ee",
                                        host="host-0000")
        server.call(lambda: runtime.ingest(created))
        server.call(lambda: runtime.ingest(b'{"event_type": "instance.create.end", "payload": 3}'))  # rejected
        yield httpx.get(server.url + "/metrics", timeout=30).text


def expressions() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p["targets"]]


def test_the_dashboard_is_grafana_json_with_panels() -> None:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["panels"] and doc["schemaVersion"] >= 36
    assert all(p["datasource"]["type"] == "prometheus" for p in doc["panels"])
    assert len(expressions()) >= 10


def test_every_metric_and_label_the_dashboard_queries_is_in_metrics(scrape: str) -> None:
    samples = [line for line in scrape.splitlines() if line and not line.startswith("#")]
    for expr in expressions():
        found = SELECTOR.findall(expr)
        assert found, f"no novawatch metric in {expr!r}"
        for name, labels in found:
            matching = [s for s in samples if re.match(rf"{name}(\{{| )", s)]
            assert matching, f"{name} (queried by {expr!r}) is not in /metrics"
            for pair in filter(None, (p.strip() for p in labels.split(","))):
                assert any(pair in s for s in matching), f"no {name} sample with {pair} in /metrics ({expr!r})"
