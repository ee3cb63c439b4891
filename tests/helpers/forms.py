"""What a page's form would send as it is shown (its values, ticks and chosen options), and
the errors shown under its fields, read from the HTML the browser gets."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _FormReader(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.depth = 0  # > 0 inside the form
        self.found = False
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self._select: str | None = None
        self._option: dict[str, str | None] | None = None
        self._error: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attrs_list)
        if self.depth == 0:
            if tag == "form" and attrs.get("id") == self.form_id:
                self.depth, self.found = 1, True
            return
        if tag == "form":
            self.depth += 1
        name = attrs.get("name") or ""
        if tag == "input" and name:
            kind = attrs.get("type") or "text"
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.values[name] = attrs.get("value") or "on"
            else:
                self.values[name] = attrs.get("value") or ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select:
            if "selected" in attrs or self._select not in self.values:
                # The first option is what a select without a chosen one sends.
                self.values[self._select] = attrs.get("value") or ""
        elif tag == "p" and "error" in (attrs.get("class") or "").split():
            self._error, self._text = (attrs.get("id") or "").removesuffix("_error"), []

    def handle_endtag(self, tag: str) -> None:
        if self.depth == 0:
            return
        if tag == "form":
            self.depth -= 1
        elif tag == "select":
            self._select = None
        elif tag == "p" and self._error is not None:
            self.errors[self._error] = "".join(self._text).strip()
            self._error = None

    def handle_data(self, data: str) -> None:
        if self._error is not None:
            self._text.append(data)


def read_form(html: str | bytes, form_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The form `form_id`'s values by field name, and its field errors by field id."""
    reader = _FormReader(form_id)
    reader.feed(html.decode() if isinstance(html, bytes) else html)
    assert reader.found, f"no form with id {form_id!r} on the page"
    return reader.values, reader.errors
