from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.core import outages
from apps.core.health import stripe_probe


@pytest.fixture
def fresh_outage_state() -> Iterator[None]:
    """This process's outage state (and the cached Stripe probe) cleared before and after."""
    for outage in (outages.database, outages.redis, outages.broker):
        outage.reset()
    stripe_probe.reset()
    yield
    for outage in (outages.database, outages.redis, outages.broker):
        outage.reset()
    stripe_probe.reset()
