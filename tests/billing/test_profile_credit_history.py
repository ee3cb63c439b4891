"""A SIP profile's credit history (issue 14, item 2) includes its calls, one line per day (the
sum of that day's call debits, rated in many batches), linking to the Calls page filtered to
that day and profile, so that every "balance after" adds up, checked against the ledger."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client

from apps.billing.ledger.allocations import credit_allocate, credit_take_back, profile_balance
from apps.billing.ledger.selectors import profile_credit_history
from apps.billing.models import LedgerEntry, LedgerTransaction
from apps.companies.models import Role
from apps.core.actor import Actor
from apps.core.money import format_money
from apps.rating.engine import rate_pending
from tests.billing.factories import populate_billing
from tests.factories import member
from tests.helpers.queries import expect_queries
from tests.rating.factories import Call, queue_calls, small_deck
from tests.sip_profiles.factories import digest_profile, ip_profile

pytestmark = pytest.mark.django_db

JAN_5 = datetime(2026, 1, 5, tzinfo=UTC)
_edge_ids = iter(range(1, 10_000))


def _rate_calls_at(profile: Any, when: datetime, *callees_and_seconds: tuple[str, int]) -> None:
    """Calls that started an hour before `when`, rated at `when` (one batch, one ledger entry)."""
    calls = [
        Call(next(_edge_ids), profile.pk, profile.company_id, "GBP", callee, when - timedelta(hours=1), seconds)
        for callee, seconds in callees_and_seconds
    ]
    queue_calls(calls)
    with time_machine.travel(when, tick=False):
        rate_pending()


def _at(day: int, hour: int) -> datetime:
    return JAN_5 + timedelta(days=day, hours=hour)


@pytest.fixture
def profile(company: Any, owner: Any) -> Any:
    return digest_profile(company, owner)[0]


@pytest.fixture
def branch(company: Any, owner: Any) -> Any:
    return ip_profile(company, owner)


@pytest.fixture
def history(company: Any, owner: Any, profile: Any, branch: Any) -> Any:
    """Two days of a profile: allocations and a take-back between calls rated in five batches,
    and calls of another profile the same days (never in this history)."""
    small_deck()
    populate_billing(company, owner)  # 50.00 on the company balance
    actor = Actor(user=owner)
    with time_machine.travel(_at(0, 8), tick=False):
        credit_allocate(actor=actor, profile=profile, amount="10", key="h1")
    _rate_calls_at(profile, _at(0, 10), ("+442079460000", 120), ("+447911123450", 61))
    _rate_calls_at(profile, _at(0, 11), ("+4930123456", 300))
    with time_machine.travel(_at(0, 12), tick=False):
        credit_allocate(actor=actor, profile=profile, amount="5", key="h2")
    _rate_calls_at(profile, _at(0, 15), ("+442079460000", 3600))
    _rate_calls_at(branch, _at(0, 16), ("+442079460000", 600))
    _rate_calls_at(profile, _at(1, 9), ("+4915112345670", 125))
    with time_machine.travel(_at(1, 10), tick=False):
        credit_take_back(actor=actor, profile=profile, amount="2", key="h3")
    _rate_calls_at(profile, _at(1, 14), ("+442079460001", 30))
    return profile


def test_each_days_calls_are_one_line_and_every_balance_after_adds_up(history: Any) -> None:
    with expect_queries("the days and their call debits", "each day's last balance", "the other entries"):
        lines = profile_credit_history(profile=history)

    entries = list(LedgerEntry.objects.filter(account__sip_profile=history).select_related("transaction"))
    call_debits: dict[Any, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if entry.transaction.kind == LedgerTransaction.Kind.CALL:
            call_debits[entry.created_at.date()] += entry.amount
    assert len([e for e in entries if e.transaction.kind == "call"]) == 5  # five batches

    # One calls line per day, its amount the sum of that day's call debits.
    assert {line.calls_day: line.amount for line in lines if line.calls_day} == dict(call_debits)
    assert [line.kind for line in lines] == ["call", "take_back", "call", "allocation", "allocation"]
    # Every line's balance after is the line before's plus its own amount, from zero...
    oldest_first = lines[::-1]
    balance = Decimal(0)
    for line in oldest_first:
        balance += line.amount
        assert line.balance_after == balance, line
    # ...ends at the profile's balance, and each day's last line is the ledger's own figure.
    assert lines[0].balance_after == profile_balance(history)
    last_of_day = {}
    for entry in sorted(entries, key=lambda e: e.pk):
        last_of_day[entry.created_at.date()] = entry.balance_after
    firsts = {}
    for line in lines:
        firsts.setdefault(line.created_at.date(), line.balance_after)
    assert firsts == last_of_day
    # An allocation between two call batches shows the balance without that day's later calls.
    morning = next(line for line in lines if line.kind == "allocation" and line.amount == Decimal("10"))
    assert morning.balance_after == Decimal("10.0000")


def test_a_months_history_starts_from_the_balance_before_it(history: Any) -> None:
    lines = profile_credit_history(profile=history, month=(_at(1, 0), _at(2, 0)))
    assert [line.kind for line in lines] == ["call", "take_back"]
    before = LedgerEntry.objects.filter(account__sip_profile=history, created_at__lt=_at(1, 0)).order_by("-id")[0]
    assert lines[-1].balance_after - lines[-1].amount == before.balance_after
    assert lines[0].balance_after == profile_balance(history)


def test_the_pages_show_the_days_calls_and_link_to_exactly_those_calls(company: Any, history: Any) -> None:
    client = Client()
    client.force_login(member(company, Role.VIEWER))

    statement = client.get("/credit/statement/", {"profile": str(history.public_id)})
    detail = client.get(f"/sip-profiles/{history.public_id}/")

    lines = profile_credit_history(profile=history)
    day = lines[0].calls_day
    link = f"/calls/?profile={history.public_id}&amp;date_from={day:%Y-%m-%d}&amp;date_to={day:%Y-%m-%d}"
    for page in (statement, detail):
        html = page.content.decode()
        assert link in html
        assert f"Calls of {day:%d %b %Y}" in html
        assert html.count('class="calls-day"') == 2
    calls = client.get(link.replace("&amp;", "&"))
    listed = calls.context["page"].rows
    assert len(listed) == 2
    assert -sum(row["cost"] for row in listed) == lines[0].amount
    # A kind chosen on the statement lists the ledger's entries of that kind as they are.
    only_calls = client.get("/credit/statement/", {"profile": str(history.public_id), "kind": "call"})
    assert len(only_calls.context["page"].object_list) == 5


def _history_cells(html: str) -> list[tuple[str, str]]:
    """The Amount and Balance after cells of each history or statement row, as shown."""
    return re.findall(
        r'<td class="mono" style="text-align:right">([^<]*)</td><td class="mono" style="text-align:right">([^<]*)</td>',
        html,
    )


def test_the_pages_show_amounts_and_balances_to_two_places(company: Any, history: Any) -> None:
    client = Client()
    client.force_login(member(company, Role.VIEWER))
    lines = profile_credit_history(profile=history)
    # The calls cost tenths of a cent: the ledger keeps 4 places, people are shown 2.
    assert any(line.amount != line.amount.quantize(Decimal("0.01")) for line in lines)
    pages = {
        "profile": client.get(f"/sip-profiles/{history.public_id}/").content.decode(),
        "profile statement": client.get("/credit/statement/", {"profile": str(history.public_id)}).content.decode(),
    }
    for name, html in pages.items():
        cells = _history_cells(html)
        assert len(cells) == len(lines), name
        for (amount, balance), line in zip(cells, lines, strict=True):
            assert amount == format_money(line.amount), name
            assert balance == format_money(line.balance_after), name
            assert re.fullmatch(r"-?[0-9,]+\.[0-9]{2}", amount)
            assert re.fullmatch(r"-?[0-9,]+\.[0-9]{2}", balance)
    company_statement = client.get("/credit/statement/").content.decode()
    cells = _history_cells(company_statement)
    assert cells
    for amount, balance in cells:
        assert re.fullmatch(r"-?[0-9,]+\.[0-9]{2}", amount)
        assert re.fullmatch(r"-?[0-9,]+\.[0-9]{2}", balance)
