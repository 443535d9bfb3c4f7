"""What a user sees in a browser: a page in headless Chromium once its scripts ran (Flower's
tables fill by AJAX), and the text of its tables' rows."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

BUDGET_MS = 5000  # virtual time for the page's scripts and AJAX calls


def chromium() -> str:
    """Debian's `chromium`; a missing browser skips the test, or fails it under CI."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed (CI=true, so this is a failure, not a skip)")
    pytest.skip("chromium is not installed")


def page_dom(url: str, profile: Path) -> str:
    """The DOM of `url` after BUDGET_MS of virtual time; empty when the page did not load
    (an HTTP error such as 401). `profile` keeps this browser's state apart."""
    result = subprocess.run(
        [
            chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
            f"--user-data-dir={profile}", f"--virtual-time-budget={BUDGET_MS}", "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    return result.stdout


def page_until(url: str, profile: Path, shows: Callable[[str], bool], timeout: float = 90) -> str:
    """Reloads the page, as a user waiting for it would, until it `shows` what is awaited
    or `timeout` passes; returns the last DOM either way (the assertions tell what is missing)."""
    deadline = time.monotonic() + timeout
    while True:
        dom = page_dom(url, profile)
        if shows(dom) or time.monotonic() > deadline:
            return dom
        time.sleep(1)


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(dom: str, table_id: str) -> list[dict[str, str]]:
    """The body rows of the table with this id, each {header text: cell text}."""
    parser = _Tables()
    parser.feed(dom)
    rows = [row for row in parser.tables.get(table_id, []) if row]
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    return [dict(zip(header, row, strict=False)) for row in body if len(row) == len(header)]
