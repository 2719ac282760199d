"""Headless Chromium from Debian's ``chromium`` + ``chromium-driver`` packages, through
Selenium pointed at those binaries (no browser is downloaded at run time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.support.system_tools import require_tool

T = TypeVar("T")


@contextmanager
def chromium(downloads: Path, width: int = 1400, height: int = 1000) -> Iterator[webdriver.Chrome]:
    binary = require_tool("chromium", "chromium")
    driver_binary = require_tool("chromedriver", "chromium-driver")
    downloads.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        # No calls home: the machine's closed network refuses them, many at a time.
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={downloads.parent / 'chromium-profile'}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(driver_binary), options=options)
    try:
        # Headless Chromium writes downloads only where it is told to, through DevTools.
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns a truthy value (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last_error: Any = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as error:  # the page is still rendering: retry
            last_error = error
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} ({last_error})")


def downloaded(folder: Path, name: str, timeout: float = 30) -> Path:
    """The finished download ``name`` in ``folder`` (Chromium writes .crdownload first)."""
    target = folder / name
    return wait_for(
        lambda: target if target.exists() and target.stat().st_size > 0 else None,
        timeout,
        f"download {name}",
    )


def score_file_in_ui(
    driver: webdriver.Chrome, url: str, upload: Path, text_column: str | None = None
) -> tuple[Any, list[str]]:
    """Submit ``upload`` on the UI's Batch tab; wait for the job to complete and return its
    row and cells (file, status, progress, scored, rejected, version, downloads)."""
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/ui/#batch")
    if text_column is not None:
        column = driver.find_element(By.ID, "text-column")
        column.clear()
        column.send_keys(text_column)
    driver.find_element(By.ID, "batch-file").send_keys(str(upload))
    driver.find_element(By.ID, "batch-submit").click()
    job = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#jobs tr[data-status=completed]"),
        90,
        "the job to complete",
    )
    return job, [c.text for c in job.find_elements(By.TAG_NAME, "td")]
