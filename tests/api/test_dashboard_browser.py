"""The dashboard in real headless Chromium: hosts appear, a click shows a host's instances, and a newly
booted instance appears live (through the watch stream, without reloading the page)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from .services_fixture import Running, running_services

TIMEOUT = 60


@pytest.fixture
def browser(chromium_path: str, chromedriver_path: str, tmp_path: Path) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = chromium_path
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(executable_path=chromedriver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Running]:
    with running_services(tmp_path / "state", hosts=3) as running:
        yield running


def _until(driver: WebDriver, what: str, condition: object) -> object:
    try:
        return WebDriverWait(driver, TIMEOUT, poll_frequency=0.1).until(condition)  # type: ignore[arg-type]
    except Exception as exc:
        logs = ""
        with contextlib.suppress(Exception):  # the log is a diagnostic: its absence must not hide the failure
            logs = "\n".join(str(e) for e in driver.get_log("browser"))
        raise AssertionError(f"timed out waiting for {what}; browser log:\n{logs}") from exc


def test_dashboard_hosts_click_and_live_instance(browser: WebDriver, cloud: Running) -> None:
    first = cloud.boot("web-1", "host-0002")
    cloud.boot("web-2", "host-0002")
    browser.get(cloud.model.url + "/")

    def cards(d: WebDriver) -> list[str]:
        return [c.get_attribute("data-host") or "" for c in d.find_elements(By.CSS_SELECTOR, "#hosts .host")]

    _until(browser, "three host cards", lambda d: cards(d) == ["host-0001", "host-0002", "host-0003"])
    card = browser.find_element(By.CSS_SELECTOR, '.host[data-host="host-0002"]')
    _until(browser, "host-0002 to show 2 VMs",
           lambda d: "2 VMs" in d.find_element(By.CSS_SELECTOR, '.host[data-host="host-0002"]').text)
    assert card.find_elements(By.CSS_SELECTOR, '.bar[data-metric="RAM"]')
    _until(browser, "the consistency status", lambda d: d.find_element(By.ID, "status").text == "ok")

    card.click()
    _until(browser, "the instance table of host-0002",
           lambda d: d.find_element(By.ID, "detail").is_displayed()
           and len(d.find_elements(By.CSS_SELECTOR, "#instances tbody tr")) == 2)
    assert browser.find_element(By.ID, "detail-host").text == "host-0002"
    rows = {r.get_attribute("data-uuid") for r in browser.find_elements(By.CSS_SELECTOR, "#instances tbody tr")}
    assert first["uuid"] in rows

    # A new instance on the selected host appears without a reload.
    marker = browser.execute_script("window.__novawatch_marker = 1; return window.__novawatch_marker;")
    new = cloud.boot("web-3", "host-0002")
    _until(browser, "the new instance in the table",
           lambda d: d.find_elements(By.CSS_SELECTOR, f'#instances tbody tr[data-uuid="{new["uuid"]}"]'))
    _until(browser, "host-0002 to show 3 VMs",
           lambda d: "3 VMs" in d.find_element(By.CSS_SELECTOR, '.host[data-host="host-0002"]').text)
    _until(browser, "instance.create.end in the live feed",
           lambda d: d.find_elements(By.CSS_SELECTOR, '#feed li[data-event-type="instance.create.end"]'))
    assert browser.execute_script("return window.__novawatch_marker;") == marker  # same page: no reload
    row = browser.find_element(By.CSS_SELECTOR, f'#instances tbody tr[data-uuid="{new["uuid"]}"]')
    assert "web-3" in row.text and "active" in row.text
