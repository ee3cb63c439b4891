"""What every page's layout reads: the product's name (PRODUCT_NAME) for titles and the header."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def product(request: HttpRequest) -> dict[str, Any]:
    return {"product_name": settings.PRODUCT_NAME}
