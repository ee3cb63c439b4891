"""What the browser tests share: signing in, the two widths every page is looked at, and
screenshots kept as test artifacts (test-results/screenshots/, or $SCREENSHOT_DIR)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.factories import PASSWORD

# The desktop width and a phone's (an iPhone's 375 × 812).
WIDTHS = ((1280, 900), (375, 812))
TIMEOUT_MS = 10_000


def screenshot_dir() -> Path:
    path = Path(os.environ.get("SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "test-results" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_screenshot(page: Page, name: str) -> Path:
    """A full-page PNG named `name` (letters, digits and dashes), e.g. "profile-375"."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ValueError(f"screenshot name {name!r}: lower-case letters, digits and dashes")
    path = screenshot_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_login").fill(email)
    page.locator("#id_password").fill(password)
    page.locator("#id_password").press("Enter")
    expect(page).to_have_url(f"{base}/")


def overflowing(page: Page) -> list[dict[str, Any]]:
    """The elements that stick out past the right edge of the window (none on a page that
    fits), each as its tag, id, classes and right edge; boxes that scroll their own content
    (overflow auto or scroll) are allowed to hold wider children."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const inScroller = (el) => {
            for (let p = el.parentElement; p; p = p.parentElement) {
              const o = getComputedStyle(p).overflowX;
              if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
            }
            return false;
          };
          const out = [];
          for (const el of document.body.querySelectorAll('*')) {
            const box = el.getBoundingClientRect();
            if (box.width === 0 || box.right <= width + 1 || inScroller(el)) continue;
            out.push({tag: el.tagName.toLowerCase(), id: el.id, cls: el.className.toString(),
                      right: Math.round(box.right)});
          }
          return out.slice(0, 10);
        }"""
    )


def assert_fits(page: Page, width: int) -> None:
    """The page is no wider than the window, and nothing on it sticks out."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"page is {scroll} px wide at {width} px: {overflowing(page)}"
    assert not overflowing(page), overflowing(page)


def look_at_both_widths(page: Page, name: str) -> list[Path]:
    """The current page at 1280 and at 375 px: each fits, and each is saved as `name-<width>`."""
    saved = []
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        saved.append(save_screenshot(page, f"{name}-{width}"))
        assert_fits(page, width)
    return saved
