"""The dashboard in real headless Chromium against a model service holding 10,000 hosts and 100,000
instances: the overview renders with its plots, the host table scrolls and sorts, the capacity query is
answered by the server, a host page shows its instances, instance search and an instance's history in
order, plots update live while notifications are applied, live updates keep the links they do not change,
and the page says when it is reconnecting and catches up afterwards.

One model (built in-process, about a second) and one browser serve every test of this module, in order.
Each view is written as a screenshot under test-artifacts/screenshots/ (printed), for a reviewer to look
at. The browser's own timings (Performance API: first render, capacity query) are printed and written to
test-artifacts/dashboard-timings.json, not asserted: the machine is shared and a timing is no test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from novawatch.model.live.view import NodeQuery
from novawatch.snapshot import InstanceRecord

from .bigcloud import BigCloud, action, big_cloud
from .chromium import ARTIFACTS, attrs, chromium, shot, text, until

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def cloud() -> Iterator[BigCloud]:
    running = big_cloud()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(chromium_path: str, chromedriver_path: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with chromium(chromium_path, chromedriver_path, tmp_path_factory.mktemp("chromium")) as driver:
        yield driver
    if TIMINGS:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "dashboard-timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
        print(f"\ndashboard timings in the browser (ms): {TIMINGS} -> {ARTIFACTS / 'dashboard-timings.json'}")


def _measure(driver: WebDriver, name: str) -> float | None:
    value = driver.execute_script(
        "const e = performance.getEntriesByName(arguments[0]); return e.length ? e[e.length - 1].duration : null;",
        name)
    return None if value is None else float(value)


def _field(card: WebElement, name: str) -> str:
    return str(card.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text)


def _rows(driver: WebDriver) -> list[dict[str, Any]]:
    """The host table's rendered rows: index, host, free RAM and free vCPU (from their data- values)."""
    script = """return [...document.querySelectorAll('#host-spacer a.vrow')].map((r) => ({
        index: Number(r.dataset.index), host: r.dataset.host,
        free_ram_mb: Number(r.querySelector('.c-free_ram_mb').dataset.value),
        free_vcpus: Number(r.querySelector('.c-free_vcpus').dataset.value)}))
        .sort((a, b) => a.index - b.index);"""
    rows: list[dict[str, Any]] = driver.execute_script(script)
    return rows


def _server_page(cloud: BigCloud, **params: Any) -> dict[str, Any]:
    resp = httpx.get(f"{cloud.url}/v1/nodes", params=params, timeout=30)
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


def test_overview_renders_totals_histograms_and_plots(browser: WebDriver, cloud: BigCloud) -> None:
    browser.get(cloud.url + "/")
    until(browser, "the overview's cards",
           lambda d: d.find_elements(By.CSS_SELECTOR, '#totals .card[data-metric="hosts"]'))
    until(browser, "the first-render measure", lambda d: _measure(d, "nw:first-render") is not None)
    TIMINGS["first_render_ms"] = _measure(browser, "nw:first-render") or -1
    summary = httpx.get(f"{cloud.url}/v1/summary", timeout=30).json()
    hosts = browser.find_element(By.CSS_SELECTOR, '#totals .card[data-metric="hosts"]')
    assert _field(hosts, "total") == "10,000"
    assert _field(hosts, "down") == f"{summary['hosts']['down']:,}" and summary["hosts"]["down"] == 104
    assert _field(hosts, "disabled") == f"{summary['hosts']['disabled']:,}"
    vcpus = browser.find_element(By.CSS_SELECTOR, '#totals .card[data-metric="vcpus"]')
    assert _field(vcpus, "used") == f"{summary['capacity']['schedulable']['vcpus']['used']:,}"
    # The histograms count every host with capacity once per resource.
    for panel in ("hist-vcpus", "hist-ram", "hist-disk"):
        counts = [int(c or 0) for c in attrs(browser, f"#{panel} .col", "data-count")]
        assert len(counts) == 10 and sum(counts) == 10_000, (panel, counts)
    # Every plot is drawn by uPlot (a canvas) and holds points from /v1/series.
    plots = browser.find_elements(By.CSS_SELECTOR, ".plots .plot")
    assert len(plots) == 8
    for plot in plots:
        assert plot.find_elements(By.CSS_SELECTOR, "canvas")
    until(browser, "points in the vCPU plot",
           lambda d: int(d.find_element(By.ID, "plot-vcpus").get_attribute("data-points") or 0) >= 2)
    until(browser, "the header's health badge", lambda d: text(d, "#status") == "ok")
    shot(browser, "overview")


def test_host_table_scrolls_and_sorts(browser: WebDriver, cloud: BigCloud) -> None:
    browser.get(cloud.url + "/#/hosts")
    until(browser, "the first rows", lambda d: len(_rows(d)) >= 20)
    assert text(browser, "#host-total") == "10,000"
    rows = _rows(browser)
    assert [r["host"] for r in rows[:3]] == ["host-00000", "host-00001", "host-00002"]
    # Only the rows in view (and a margin) are in the page, not 10,000.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#host-spacer .vrow")) < 120

    # Scroll to the middle: the rows there are fetched and placed where they belong.
    browser.execute_script("document.getElementById('host-scroll').scrollTop = 5000 * 28;")
    until(browser, "row 5000", lambda d: any(r["index"] == 5000 for r in _rows(d)))
    middle = {r["index"]: r["host"] for r in _rows(browser)}
    assert middle[5000] == "host-05000" and middle[5001] == "host-05001"
    shot(browser, "hosts-scrolled")

    # Sort by free RAM: ascending on the first click, descending on the second, as the server orders them.
    header = browser.find_element(By.CSS_SELECTOR, '.vhead [data-sort="free_ram_mb"]')
    header.click()
    until(browser, "ascending free RAM", lambda d: "asc" in (header.get_attribute("class") or "")
           and _rows(d) and _rows(d)[0]["index"] == 0 and len(_rows(d)) >= 20)
    up = _rows(browser)
    assert [r["free_ram_mb"] for r in up] == sorted(r["free_ram_mb"] for r in up)
    expected = _server_page(cloud, sort="free_ram_mb", limit=5)["nodes"]
    assert [r["host"] for r in up[:5]] == [n["host"] for n in expected]
    header.click()
    top = _server_page(cloud, sort="-free_ram_mb", limit=1)["nodes"][0]["host"]
    until(browser, "descending free RAM", lambda d: "desc" in (header.get_attribute("class") or "")
           and _rows(d) and _rows(d)[0]["host"] == top)
    down = _rows(browser)
    assert [r["free_ram_mb"] for r in down] == sorted((r["free_ram_mb"] for r in down), reverse=True)
    # ... and scrolling a sorted table keeps the server's order.
    browser.execute_script("document.getElementById('host-scroll').scrollTop = 9000 * 28;")
    until(browser, "row 9000 of the sorted table", lambda d: any(r["index"] == 9000 for r in _rows(d)))
    deep = {r["index"]: r["host"] for r in _rows(browser)}
    assert deep[9000] == _server_page(cloud, sort="-free_ram_mb", limit=1, offset=9000)["nodes"][0]["host"]
    shot(browser, "hosts-sorted")


def test_capacity_query_is_answered_by_the_server(browser: WebDriver, cloud: BigCloud) -> None:
    # The overview's "down" link: the hosts that are down, from the address alone.
    browser.get(cloud.url + "/#/")
    until(browser, "the overview", lambda d: text(d, '#totals [data-field="down"]') == "104")
    browser.find_element(By.CSS_SELECTOR, '#totals a[href="#/hosts?state=down"]').click()
    until(browser, "the hosts that are down", lambda d: text(d, "#host-total") == "104" and _rows(d))
    assert {r["host"] for r in _rows(browser)} <= {f"host-{n:05d}" for n in range(0, 10_000, 97)}

    browser.get(cloud.url + "/#/hosts")
    until(browser, "the host table", lambda d: text(d, "#host-total") == "10,000" and len(_rows(d)) >= 20)
    form = browser.find_element(By.ID, "capacity")
    form.find_element(By.NAME, "vcpus").send_keys("4")
    form.find_element(By.NAME, "ram_gb").send_keys("8")
    for name, value in (("state", "up"), ("status", "enabled")):
        browser.execute_script("arguments[0].value = arguments[1];", form.find_element(By.NAME, name), value)
    browser.execute_script("performance.clearMeasures('nw:query');")
    browser.find_element(By.ID, "capacity-run").click()
    until(browser, "the capacity query's answer",
           lambda d: "min_free_ram_mb=8192" in (d.find_element(By.ID, "host-table").get_attribute("data-query") or "")
           and _rows(d))
    TIMINGS["capacity_query_ms"] = _measure(browser, "nw:query") or -1
    total, _ = cloud.server.call(lambda: cloud.runtime.view.query_nodes(NodeQuery(
        min_free_ram_mb=8192, min_free_vcpus=4, state="up", status="enabled", limit=1)))
    assert 0 < total < 10_000
    assert text(browser, "#host-total") == f"{total:,}"
    for row in _rows(browser):
        assert row["free_ram_mb"] >= 8192 and row["free_vcpus"] >= 4, row
    assert "vcpus=4" in browser.current_url and "ram_gb=8" in browser.current_url  # a shareable link
    shot(browser, "hosts-capacity-query")


def _busiest(cloud: BigCloud) -> str:
    return str(_server_page(cloud, sort="-running_vms", limit=1)["nodes"][0]["host"])


def test_host_page_lists_its_instances_and_usage_over_time(browser: WebDriver, cloud: BigCloud) -> None:
    host = _busiest(cloud)
    browser.get(cloud.url + "/#/hosts?sort=-running_vms")
    until(browser, "the busiest host first", lambda d: _rows(d) and _rows(d)[0]["host"] == host)
    browser.find_element(By.CSS_SELECTOR, f'#host-spacer a.vrow[data-host="{host}"]').click()
    expected = {i.uuid for i in cloud.snapshot.instances if i.host == host}
    until(browser, f"{host}'s instances",
           lambda d: set(attrs(d, "#host-instances tbody tr", "data-uuid")) == expected)
    assert text(browser, "#host-name") == host
    until(browser, "the host's usage plot",
           lambda d: int(d.find_element(By.ID, "plot-host").get_attribute("data-points") or 0) >= 1)
    shot(browser, "host")


def _pick(cloud: BigCloud, index: int) -> InstanceRecord:
    chosen: InstanceRecord = sorted(cloud.snapshot.instances, key=lambda i: i.uuid)[index]
    return chosen


def test_instance_search_and_history_in_order(browser: WebDriver, cloud: BigCloud) -> None:
    inst = _pick(cloud, 1234)
    browser.get(cloud.url + "/#/instances")
    until(browser, "the instance list", lambda d: text(d, "#instance-total") == "100,000")
    box = browser.find_element(By.CSS_SELECTOR, "#instance-search input[name=q]")
    box.send_keys(inst.uuid[:13])
    box.submit()
    until(browser, "the search result",
           lambda d: attrs(d, "#instance-results tbody tr", "data-uuid") == [inst.uuid])
    shot(browser, "instances-search")
    browser.find_element(By.CSS_SELECTOR, f'#instance-results tr[data-uuid="{inst.uuid}"] a').click()
    until(browser, "the instance's record", lambda d: text(d, '#instance-record [data-field="state"]') == "active")
    assert text(browser, "#instance-name") == inst.display_name

    # What happened to this server: power off, power on, pause, each shown (live) in the order applied.
    steps = [("instance.power_off.end", "stopped", "shutdown"), ("instance.power_on.end", "active", "running"),
             ("instance.pause.end", "paused", "paused")]
    for event_type, state, power in steps:
        cloud.ingest(action(event_type, inst, state=state, power_state=power))

    def applied(d: WebDriver) -> list[str]:
        return attrs(d, "#instance-history tbody tr[data-event-type^='instance.']", "data-event-type")

    until(browser, "the three actions in the history", lambda d: applied(d) == [s[0] for s in steps])
    seqs = [int(s) for s in attrs(browser, "#instance-history tbody tr[data-event-type^='instance.']", "data-seq")]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    change = text(browser, "#instance-history tr[data-event-type='instance.power_off.end'] .chg[data-field='state']")
    assert change == 'state "active" → "stopped"', change
    until(browser, "the record to follow", lambda d: text(d, '#instance-record [data-field="state"]') == "paused")
    shot(browser, "instance-history")


def test_plots_update_live_while_notifications_are_applied(browser: WebDriver, cloud: BigCloud) -> None:
    browser.get(cloud.url + "/")
    until(browser, "the rate plot",
           lambda d: int(d.find_element(By.ID, "plot-rate").get_attribute("data-points") or 0) >= 1)
    marker = browser.execute_script("window.__marker = Math.random(); return window.__marker;")
    before = int(browser.find_element(By.ID, "plot-rate").get_attribute("data-points") or 0)
    instances = sorted(cloud.snapshot.instances, key=lambda i: i.uuid)[:400]
    flips = [action("instance.power_off.end", i, state="stopped", power_state="shutdown") for i in instances]

    def applied_rate(d: WebDriver) -> float:
        last = json.loads(d.find_element(By.ID, "plot-rate").get_attribute("data-last") or "[null]")
        return float(last[0] or 0)

    def points(d: WebDriver) -> int:
        return int(d.find_element(By.ID, "plot-rate").get_attribute("data-points") or 0)

    # Apply notifications in small batches until new points (from the stream, the page is not reloaded)
    # show them: the sampler takes one every 0.5 s, the stream sends them every second.
    def feeding(d: WebDriver) -> bool:
        if flips:
            cloud.ingest(*[flips.pop() for _ in range(min(20, len(flips)))])
        return points(d) > before and applied_rate(d) > 0

    until(browser, "a live point with applied/s above 0", feeding)
    assert int(browser.find_element(By.ID, "plot-rate").get_attribute("data-pushed") or 0) > 0  # from the stream
    assert browser.execute_script("return window.__marker;") == marker  # the same page: no reload
    shot(browser, "overview-live")


def _connected(driver: WebDriver, element: WebElement) -> bool:
    return bool(driver.execute_script("return arguments[0].isConnected;", element))


def test_live_updates_keep_the_links_a_click_may_be_on(browser: WebDriver, cloud: BigCloud) -> None:
    # A live update changes what differs in place: a link it does not change stays the same node, so a click
    # pressed before an update and released after it still lands (replacing the markup lost it).
    inst = _pick(cloud, 2345)
    browser.get(f"{cloud.url}/#/host/{inst.host}")
    row = f'#host-instances tr[data-uuid="{inst.uuid}"]'
    until(browser, "the instance's row", lambda d: text(d, row + " td:nth-child(2)") == "active")
    link = browser.find_element(By.CSS_SELECTOR, row + " a")
    cloud.ingest(action("instance.pause.end", inst, state="paused", power_state="paused"))
    until(browser, "the row showing the pause", lambda d: text(d, row + " td:nth-child(2)") == "paused")
    assert _connected(browser, link)

    browser.get(f"{cloud.url}/#/instance/{inst.uuid}")
    until(browser, "the instance page", lambda d: text(d, '#instance-record [data-field="state"]') == "paused")
    link = browser.find_element(By.CSS_SELECTOR, '#instance-record [data-field="host"] a')
    cloud.ingest(action("instance.unpause.end", inst, state="active", power_state="running"))
    until(browser, "the record showing the unpause",
          lambda d: text(d, '#instance-record [data-field="state"]') == "active")
    assert _connected(browser, link)

    browser.get(cloud.url + "/#/")
    until(browser, "the overview", lambda d: text(d, '#totals [data-field="down"]') == "104")
    link = browser.find_element(By.CSS_SELECTOR, '#totals a[href="#/hosts?state=down"]')
    rate = text(browser, '#totals [data-field="rate"]')
    others = sorted(cloud.snapshot.instances, key=lambda i: i.uuid)[3000:3400]  # instances no other test reads
    flips = [action("instance.power_off.end", i, state="stopped", power_state="shutdown") for i in others]

    def feeding(d: WebDriver) -> bool:
        if flips:
            cloud.ingest(*[flips.pop() for _ in range(min(20, len(flips)))])
        return text(d, '#totals [data-field="rate"]') != rate

    until(browser, "a live summary with another rate", feeding)
    assert _connected(browser, link)
    link.click()
    until(browser, "the hosts that are down", lambda d: text(d, "#host-total") == "104")


def test_reconnecting_banner_and_catching_up(browser: WebDriver, cloud: BigCloud) -> None:
    inst = _pick(cloud, 4321)
    browser.get(f"{cloud.url}/#/instance/{inst.uuid}")
    until(browser, "the instance page", lambda d: text(d, '#instance-record [data-field="state"]') == "active")
    until(browser, "the stream connected", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-live")
           == "connected")
    marker = browser.execute_script("window.__marker = Math.random(); return window.__marker;")
    cloud.stop()
    until(browser, "the reconnecting banner", lambda d: d.find_element(By.ID, "banner").is_displayed()
           and "Reconnecting" in d.find_element(By.ID, "banner").text)
    shot(browser, "reconnecting")
    # While the page is away the model moves on; when the service is back the page catches up.
    cloud.ingest(action("instance.power_off.end", inst, state="stopped", power_state="shutdown"))
    cloud.start()
    until(browser, "the banner to clear", lambda d: not d.find_element(By.ID, "banner").is_displayed())
    until(browser, "the change made while away",
           lambda d: text(d, '#instance-record [data-field="state"]') == "stopped"
           and "instance.power_off.end" in text(d, "#instance-history"))
    assert browser.execute_script("return window.__novawatch.live.relists;") >= 1  # the views re-read
    assert browser.execute_script("return window.__marker;") == marker


def test_a_position_too_old_to_resume_relists(browser: WebDriver, cloud: BigCloud) -> None:
    """Away for longer than the service keeps changes (its watch buffer: 10,000), the page gets ``reset``
    and re-lists."""
    inst = _pick(cloud, 777)
    browser.get(f"{cloud.url}/#/instance/{inst.uuid}")
    until(browser, "the instance page", lambda d: text(d, '#instance-record [data-field="state"]') == "active")
    until(browser, "the stream connected", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-live")
           == "connected")
    resets = browser.execute_script("return window.__novawatch.live.resets;")
    cloud.stop()
    until(browser, "the reconnecting banner", lambda d: d.find_element(By.ID, "banner").is_displayed())
    others = sorted(cloud.snapshot.instances, key=lambda i: i.uuid)[10_000:16_000]
    cloud.ingest(*[action("instance.pause.end", i, state="paused", power_state="paused") for i in others])
    cloud.ingest(action("instance.suspend.end", inst, state="suspended", power_state="suspended"))
    cloud.start()
    until(browser, "the reset and the change made while away",
           lambda d: d.execute_script("return window.__novawatch.live.resets;") > resets
           and text(d, '#instance-record [data-field="state"]') == "suspended")
    until(browser, "the banner to clear", lambda d: not d.find_element(By.ID, "banner").is_displayed())


def test_no_script_errors_on_any_view(browser: WebDriver, cloud: BigCloud) -> None:
    """Every view the tests above opened ran without an uncaught error (network errors while the service
    was away are expected; script errors are not)."""
    logs = browser.get_log("browser")  # type: ignore[attr-defined]
    errors = [e for e in logs if e.get("level") == "SEVERE" and e.get("source") == "javascript"]
    assert not errors, errors
