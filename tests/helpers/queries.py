"""Asserting how many queries a block makes, with the reason for each one.

    with expect_queries("the session", "the user", "the membership with its company (tenancy)"):
        client.get(URL)

The count is the number of reasons, so a test says why each query is there; on a mismatch
the failure lists the reasons beside the SQL that ran, side by side.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext


def _report(reasons: tuple[str, ...], queries: list[dict[str, str]]) -> str:
    lines = [f"expected {len(reasons)} queries, {len(queries)} ran:"]
    for number, (reason, query) in enumerate(itertools.zip_longest(reasons, queries), start=1):
        lines.append(f"  {number}. {reason or '(no reason: one query too many)'}")
        lines.append(f"       {query['sql'] if query else '(no query ran)'}")
    return "\n".join(lines)


@contextmanager
def expect_queries(*reasons: str, using: str = DEFAULT_DB_ALIAS) -> Iterator[CaptureQueriesContext]:
    """Fail unless the block runs exactly one query per reason (none: no query at all)."""
    with CaptureQueriesContext(connections[using]) as captured:
        yield captured
    if len(captured.captured_queries) != len(reasons):
        pytest.fail(_report(reasons, captured.captured_queries), pytrace=False)


# What every signed-in request to a company's pages or API reads first.
SIGNED_IN = ("the session", "the user", "the membership with its company (tenancy)")
