"""The portal's confirmation step (billing/_confirm.html), read as a browser would: the price
shown and the fields its button posts again."""

from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any

_FORM = re.compile(r'<div class="confirm-price" id="confirm-price".*?</form>', re.S)
_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_AMOUNT = re.compile(r'id="quote-amount"><strong>([0-9,.\-]+) ([A-Z]{3})</strong>')
_AFTER = re.compile(r'id="quote-balance-after">([0-9,.\-]+) [A-Z]{3}<')


def confirmation(page: str) -> tuple[Decimal, dict[str, Any]]:
    """The amount the step names and the fields its "Confirm" button sends."""
    found = _FORM.search(page)
    assert found is not None, "no confirmation step on the page"
    step = found.group(0)
    amount = _AMOUNT.search(step)
    assert amount is not None, step
    fields: dict[str, Any] = {}
    for name, value in _INPUT.findall(step):
        if name == "csrfmiddlewaretoken":
            continue
        value = html.unescape(value)
        if name in fields:
            fields[name] = [*(fields[name] if isinstance(fields[name], list) else [fields[name]]), value]
        else:
            fields[name] = value
    return Decimal(amount.group(1).replace(",", "")), fields


def balance_after(page: str) -> Decimal:
    found = _AFTER.search(page)
    assert found is not None
    return Decimal(found.group(1).replace(",", ""))


def post_confirmed(client: Any, url: str, data: dict[str, Any], **extra: Any) -> tuple[Decimal, Any]:
    """Send a priced form, check that it answers its confirmation step, and confirm it:
    the amount shown and the answer to the confirmation."""
    asked = client.post(url, data, format="multipart", **extra)
    assert asked.status_code == 200, asked.status_code
    amount, fields = confirmation(asked.content.decode())
    return amount, client.post(url, fields, format="multipart", **extra)
