"""Reading a page's one-time tokens (`{% form_once %}`) and sending a form twice with one."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client

from apps.core.once import ALREADY_DONE

FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)
TOKEN = re.compile(r'<input type="hidden" name="once" value="([0-9a-f]{32})">')


def page_tokens(html: str, action: str | None = None) -> list[str]:
    """The tokens of the POST forms posting to `action` on a page (None: the forms with no
    action, which post to the page itself)."""
    found = []
    for attributes, body in FORM.findall(html):
        if 'method="post"' not in attributes:
            continue
        posts_to = re.search(r'action="([^"]*)"', attributes)
        if (posts_to.group(1) if posts_to else None) == action:
            found += TOKEN.findall(body)
    return found


def page_token(client: Client, page: str, action: str | None = None) -> str:
    (token,) = page_tokens(client.get(page).content.decode(), action)
    return token


def sent_twice(client: Client, url: str, first: dict[str, Any], second: dict[str, Any]) -> tuple[Any, Any]:
    """Send a form, then again with the same token (the fields may differ): the second answer
    redirects where the first went and says it was done once."""
    one = client.post(url, first)
    two = client.post(url, second)
    assert one.status_code == 302, one.content.decode()[:500]
    assert two.status_code == 302, two.content.decode()[:500]
    assert two["Location"] == one["Location"]
    assert ALREADY_DONE in client.get(two["Location"].split("#")[0]).content.decode()
    return one, two
