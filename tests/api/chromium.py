"""Real headless Chromium for the dashboard's browser tests, and the few reads they make of a page.

Reads go through one script each: the page re-renders live, so an element looked up one call earlier
may be gone by the next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 60
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SHOTS = ARTIFACTS / "screenshots"


@contextlib.contextmanager
def chromium(binary: str, driver_path: str, profile: Path) -> Iterator[WebDriver]:
    """A headless Chromium with its own profile folder, its console log kept for failure reports."""
    options = Options()
    options.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def until(driver: WebDriver, what: str, condition: Callable[[WebDriver], Any]) -> Any:
    """Wait for ``condition`` (its first truthy value); on a timeout, fail with the browser's console log."""
    try:
        return WebDriverWait(driver, TIMEOUT, poll_frequency=0.1).until(condition)
    except Exception as exc:
        logs = ""
        with contextlib.suppress(Exception):  # the log is a diagnostic: its absence must not hide the failure
            logs = "\n".join(str(e) for e in driver.get_log("browser"))
        raise AssertionError(f"timed out waiting for {what}; browser log:\n{logs}") from exc


def shot(driver: WebDriver, name: str) -> None:
    """A screenshot under test-artifacts/screenshots/, for a reviewer to look at (the path is printed)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def text(driver: WebDriver, css: str) -> str:
    """The text of the first element matching ``css`` ("" when there is none)."""
    found = driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css)
    return str(found)


def attrs(driver: WebDriver, css: str, attr: str) -> list[str]:
    """``attr`` of every element matching ``css``."""
    values: list[str] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.getAttribute(arguments[1]) ?? '');",
        css, attr)
    return values


def texts(driver: WebDriver, css: str) -> list[str]:
    """The text of every element matching ``css``."""
    found: list[str] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText);", css)
    return found
