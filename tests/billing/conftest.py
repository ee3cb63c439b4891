from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from tests.billing.card_numbers import card_numbers_in_database, card_numbers_in_texts
from tests.billing.stripe_fixtures import localstripe, localstripe_server, stripe_webhooks

__all__ = ["localstripe", "localstripe_server", "stripe_webhooks"]


@pytest.fixture(autouse=True)
def _no_card_number_is_stored_or_logged(request: pytest.FixtureRequest, caplog: Any) -> Iterator[None]:
    """After every billing test, while its data still exists: no Luhn-valid 13–19 digit number
    in any text or JSON column of the database, nor in anything logged (at any level)."""
    caplog.set_level(logging.DEBUG)
    yield
    logged = card_numbers_in_texts([caplog.text, *(record.getMessage() for record in caplog.records)])
    assert not logged, f"card numbers in the logs: {logged}"
    # A test that broke its transaction has failed already; there is nothing more to read.
    if request.node.get_closest_marker("django_db") is not None and not connection.needs_rollback:
        stored = card_numbers_in_database()
        assert not stored, f"card numbers in the database: {stored}"
