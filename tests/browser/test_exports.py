"""In Chromium (issue 14, item 3): at 1280 and at 375 pixels wide, an owner asks for a Calls CSV
too large to stream, lands on the export's page, sees its progress bar waiting for a worker, a
real Celery worker starts and writes the file, the bar (polled by htmx) fills and the download
link appears, and the downloaded file holds every call (screenshots in test-results/screenshots/)."""

from __future__ import annotations

import csv
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from apps.companies.models import Role
from skypemanager.celery import app as celery_app
from tests.browser.test_content_security_policy import watch_violations
from tests.cdrs.test_exports import calls
from tests.factories import CompanyFactory, member
from tests.helpers.browser import TIMEOUT_MS, WIDTHS, assert_fits, save_screenshot, sign_in
from tests.helpers.workers import celery_worker

EMAIL = "owner@exports.example"
CALLS = 3000


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_large_calls_download_shows_its_progress_then_its_link_at_both_widths(
    live_server: Any, page: Page, tmp_path: Path, settings: Any
) -> None:
    settings.EXPORT_ASYNC_ROWS = 100
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    violations = watch_violations(page)
    company = CompanyFactory(name="Exports Ltd", currency="GBP")
    owner = member(company, Role.OWNER, email=EMAIL)
    calls(company, owner, CALLS)
    sign_in(page, base, EMAIL)

    # No worker yet: what the page queues waits in a queue of this test's own.
    queue = f"test-{uuid.uuid4().hex[:12]}"
    saved = {
        "task_always_eager": celery_app.conf.task_always_eager,
        "task_default_queue": celery_app.conf.task_default_queue,
    }
    celery_app.conf.update(task_always_eager=False, task_default_queue=queue)
    try:
        for width, height in WIDTHS:
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{base}/calls/")
            page.locator("#calls-csv").click()
            expect(page).to_have_url(re.compile(r"/exports/[0-9a-f-]{36}/$"))
            expect(page.locator("#export-status")).to_have_text("Waiting")
            expect(page.locator("#export-bar")).to_be_visible()
            expect(page.locator("#export-download")).to_have_count(0)
            assert_fits(page, width)
            save_screenshot(page, f"export-waiting-{width}")

            with celery_worker(tmp_path / f"worker-{width}.log", queue=queue, env={"EXPORT_PROGRESS_EVERY": "100"}):
                expect(page.locator("#export-download")).to_be_visible(timeout=60_000)
            expect(page.locator("#export-status")).to_have_text("Ready")
            expect(page.locator("#export-bar")).to_have_attribute("value", "100")
            assert_fits(page, width)
            save_screenshot(page, f"export-ready-{width}")

            with page.expect_download() as download:
                page.locator("#export-download").click()
            assert download.value.suggested_filename == "calls.csv"
            with open(download.value.path(), encoding="utf-8", newline="") as file:
                rows = list(csv.DictReader(file))
            assert len(rows) == CALLS
    finally:
        celery_app.conf.update(saved)
    assert violations == []
