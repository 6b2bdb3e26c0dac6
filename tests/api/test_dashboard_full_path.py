"""The whole path into the dashboard, in real headless Chromium: actions go in through the compute
service's REST API (its own process), its notifications cross the bus to a model service (another
process), and the page shows them: the overview's vCPU use, a host's instances, and an instance's
record and history. Every figure the page shows is checked against the compute service's own truth
(``GET /v1/snapshot``, ``GET /v1/instances/{uuid}``), not against the model it came through."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from .chromium import attrs, chromium, shot, text, texts, until
from .helpers import serve_pair, wait_for


class Cloud:
    """``compute serve`` and ``model serve`` on the embedded bus, and a client for each."""

    def __init__(self, compute_url: str, model_url: str) -> None:
        self.model_url = model_url
        self.compute = httpx.Client(base_url=compute_url, timeout=60)

    def truth(self) -> dict[str, Any]:
        body: dict[str, Any] = self.compute.get("/v1/snapshot").json()
        return body

    def vcpus_used(self) -> int:
        return sum(node["vcpus_used"] for node in self.truth()["nodes"])

    def on_host(self, host: str) -> set[str]:
        return {i["uuid"] for i in self.truth()["instances"] if i["host"] == host}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    pair = serve_pair(tmp_path_factory.mktemp("full-path"))
    running = Cloud(pair.compute_url, pair.model_url)
    try:
        wait_for(lambda: httpx.get(f"{running.model_url}/v1/health", timeout=30).json()["bootstrapped"], 120,
                 "the model service to bootstrap from the compute service")
        yield running
    finally:
        codes = pair.stop()
        running.compute.close()
        assert codes == (0, 0), f"unclean exits {codes}:\n{pair.compute.output()}\n{pair.model.output()}"


@pytest.fixture(scope="module")
def browser(chromium_path: str, chromedriver_path: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with chromium(chromium_path, chromedriver_path, tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


def _vcpus_used(driver: WebDriver) -> str:
    return text(driver, '#totals .card[data-metric="vcpus"] [data-field="used"]')


def test_compute_actions_reach_the_page_through_the_bus_and_the_model(browser: WebDriver, cloud: Cloud) -> None:
    browser.get(cloud.model_url + "/")
    until(browser, "the overview's three hosts",
          lambda d: text(d, '#totals .card[data-metric="hosts"] [data-field="total"]') == "3")
    until(browser, "the overview's vCPU use", lambda d: _vcpus_used(d) == f"{cloud.vcpus_used():,}")
    before = cloud.vcpus_used()

    boot = cloud.compute.post("/v1/instances", json={"name": "full-path-1", "flavor": "m1.medium",
                                                     "host": "host-0002", "project_id": "p-full"})
    assert boot.status_code == 202, boot.text
    uuid = boot.json()["uuid"]
    after = cloud.vcpus_used()
    assert after > before  # the boot claimed vCPUs in the compute service itself
    # The page is not reloaded: the new figure arrives on the watch stream.
    until(browser, "the boot in the overview's vCPU use", lambda d: _vcpus_used(d) == f"{after:,}")
    shot(browser, "full-path-overview")

    browser.get(f"{cloud.model_url}/#/host/host-0002")
    until(browser, "host-0002's instances as the compute service has them",
          lambda d: set(attrs(d, "#host-instances tbody tr", "data-uuid")) == cloud.on_host("host-0002"))
    assert uuid in cloud.on_host("host-0002")

    browser.get(f"{cloud.model_url}/#/instance/{uuid}")
    until(browser, "the instance's record", lambda d: text(d, '#instance-record [data-field="state"]') == "active")
    assert text(browser, "#instance-name") == "full-path-1"
    off = cloud.compute.post(f"/v1/instances/{uuid}/power_off")
    assert off.status_code == 200, off.text
    truth = cloud.compute.get(f"/v1/instances/{uuid}").json()
    until(browser, "the record to follow the power-off",
          lambda d: text(d, '#instance-record [data-field="state"]') == truth["vm_state"] == "stopped")
    # The history lists each change in the order applied, whatever notification made it.
    until(browser, "the power-off in the instance's history",
          lambda d: texts(d, "#instance-history .chg[data-field='state']")[-2:]
          == ['state "building" → "active"', 'state "active" → "stopped"'])
    seqs = [int(s) for s in attrs(browser, "#instance-history tbody tr", "data-seq")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) > 2
    shot(browser, "full-path-instance")

    gone = cloud.compute.delete(f"/v1/instances/{uuid}")
    assert gone.status_code == 202, gone.text
    wait_for(lambda: cloud.vcpus_used() == before, 60, "the delete to free the vCPUs in the compute service")
    browser.get(cloud.model_url + "/")
    until(browser, "the overview's vCPU use after the delete", lambda d: _vcpus_used(d) == f"{before:,}")
