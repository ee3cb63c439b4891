"""US minute bundles: buying, cancelling, renewing, suspending, and telling the company when
a period's minutes run low."""

from __future__ import annotations

from collections.abc import Collection


def bundle_periods_used(period_ids: Collection[int]) -> None:
    """Rating used minutes of these bundle periods: after commit, tell the company once when a
    period passes 80% and 100% of its minutes."""
    # TODO(bundles): notices at 80% and 100%.
