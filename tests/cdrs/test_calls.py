"""The Calls page and its CSV (issue 14, item 2): every call of the company, how each was paid,
its cost, filters kept on the page, newer/older pages, never another company's calls."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from apps.companies.models import Role
from tests.cdrs.calls_data import DAY, LONDON_COST, make_calls
from tests.factories import member
from tests.rating.factories import Call, queue_calls
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db

URL = "/calls/"


@pytest.fixture
def made(profile: Any, branch: Any) -> Any:
    return make_calls(profile, branch)


@pytest.fixture
def viewer(company: Any) -> Client:
    client = Client()
    client.force_login(member(company, Role.VIEWER))
    return client


def _rows(response: Any) -> dict[str, str]:
    """{call id: how paid}, as the page marks each row."""
    return {str(row["public_id"]): row["paid_by"] for row in response.context["page"].rows}


def test_a_viewer_sees_every_call_with_how_it_was_paid_and_the_uncovered_one_marked(viewer: Client, made: Any) -> None:
    response = viewer.get(URL)

    assert response.status_code == 200
    assert _rows(response) == {
        str(made.pending.public_id): "pending",
        str(made.branch_call.public_id): "credit",
        str(made.bundle.public_id): "bundle",
        str(made.refused.public_id): "refused",
        str(made.busy.public_id): "free",
        str(made.inbound.public_id): "free",
        str(made.uncovered.public_id): "not_rated",
        str(made.london.public_id): "credit",
    }
    html = response.content.decode()
    assert "Credit at 0.008 GBP/min" in html
    assert "United Kingdom, London" in html
    assert "Bundle, 2 min" in html
    assert "All channels in use" in html
    assert "No GBP rate covers +882123456789" in html
    assert html.count('class="marked"') == 2  # the uncovered call and the one not rated yet
    assert "0.0160 GBP" in html
    assert '<a href="/calls/"' in html
    assert ">Calls</a>" in html


def test_another_companys_calls_never_appear(viewer: Client, made: Any, other_company: Any) -> None:
    other_profile, _ = digest_profile(other_company, member(other_company), name="Theirs")
    (theirs,) = queue_calls(
        [Call(99, other_profile.pk, other_company.pk, "GBP", "+442079460000", made.london.started_at, 60)]
    )

    listed = _rows(viewer.get(URL))
    assert str(theirs.public_id) not in listed
    assert len(listed) == 8
    # Their profile is no filter of ours: said beside the field, and nothing is listed.
    response = viewer.get(URL, {"profile": str(other_profile.public_id)})
    assert response.context["filter"].errors == {"profile": ["No such SIP profile."]}
    assert response.context["page"] is None
    assert "No such SIP profile." in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"direction": "inbound"}, ["inbound"]),
        ({"number": "+44 20 7946 0000"}, ["london"]),
        ({"number": "4930"}, ["branch_call"]),
        ({"date_from": "2026-01-06"}, ["pending", "branch_call"]),
        ({"date_from": "2026-01-05", "date_to": "2026-01-05", "answered": "false"}, ["refused", "busy"]),
        ({"answered": "true", "date_to": "2026-01-05", "direction": "outbound"}, ["bundle", "uncovered", "london"]),
    ],
)
def test_the_filters_choose_the_calls(viewer: Client, made: Any, query: dict[str, str], expected: list[str]) -> None:
    response = viewer.get(URL, query)

    assert [r["public_id"] for r in response.context["page"].rows] == [getattr(made, n).public_id for n in expected]
    # The filters stay on the page.
    html = response.content.decode()
    for value in query.values():
        assert f'value="{value}"' in html


def test_a_profile_filter_lists_only_that_profiles_calls(viewer: Client, made: Any, branch: Any) -> None:
    response = viewer.get(URL, {"profile": str(branch.public_id)})
    assert [r["public_id"] for r in response.context["page"].rows] == [made.branch_call.public_id]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"direction": "sideways"}, "direction", "Choose one of outbound, inbound, on_net."),
        ({"number": "abc"}, "number", "Give 3 to 15 digits of a number"),
        ({"date_from": "2026-13-01"}, "date_from", "Enter a valid date."),
        ({"date_from": "2026-01-06", "date_to": "2026-01-05"}, "date_to", "The last day comes before the first."),
        ({"answered": "maybe"}, "answered", "Choose true or false."),
        ({"profile": "not-a-uuid"}, "profile", "No such SIP profile."),
    ],
)
def test_a_bad_filter_is_said_beside_its_field(
    viewer: Client, made: Any, query: dict[str, str], field: str, message: str
) -> None:
    response = viewer.get(URL, query)

    assert response.status_code == 200
    assert list(response.context["filter"].errors) == [field]
    assert response.context["filter"].errors[field][0].startswith(message)
    assert message in response.content.decode()


def test_newer_and_older_pages_walk_every_call_once(viewer: Client, profile: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("apps.cdrs.views.PAGE_SIZE", 3)
    made = queue_calls(
        [
            # Two calls share a start: the id breaks the tie.
            Call(n, profile.pk, profile.company_id, "GBP", "+442079460000", DAY + timedelta(hours=n // 2), 10)
            for n in range(1, 9)
        ]
    )
    newest_first = [c.public_id for c in sorted(made, key=lambda c: (c.started_at, c.pk), reverse=True)]

    seen, response = [], viewer.get(URL)
    pages = 0
    while True:
        pages += 1
        page = response.context["page"]
        seen += [r["public_id"] for r in page.rows]
        if not page.next:
            break
        response = viewer.get(URL, {"cursor": page.next.encode()})
    assert (seen, pages) == (newest_first, 3)

    # And back: "Newer" from the last page gives the middle page again.
    back = viewer.get(URL, {"cursor": response.context["page"].previous.encode()})
    assert [r["public_id"] for r in back.context["page"].rows] == newest_first[3:6]
    assert 'rel="prev"' in back.content.decode()
    assert 'rel="next"' in back.content.decode()


def test_a_broken_cursor_shows_the_newest_calls_and_says_so(viewer: Client, made: Any) -> None:
    response = viewer.get(URL, {"cursor": "!!nonsense"})
    assert len(response.context["page"].rows) == 8
    assert "This cursor is not valid" in response.content.decode()


def test_the_csv_has_every_filtered_call_with_how_it_was_paid(viewer: Client, made: Any, profile: Any) -> None:
    response = viewer.get(URL, {"profile": str(profile.public_id), "format": "csv"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["id"] for r in rows] == [
        str(c.public_id)
        for c in (made.pending, made.bundle, made.refused, made.busy, made.inbound, made.uncovered, made.london)
    ]
    london = rows[-1]
    assert london == {
        **london,
        "profile": profile.name,
        "profile_id": str(profile.public_id),
        "direction": "outbound",
        "caller": "+442079460958",
        "callee": "+442079460000",
        "destination": "United Kingdom, London",
        "started_at": "2026-01-05T09:00:00+00:00",
        "billable_seconds": "120",
        "paid_by": "credit",
        "rate_per_minute": "0.008000",
        "cost": str(LONDON_COST),
        "currency": "GBP",
    }
    by_id = {r["id"]: r for r in rows}
    assert by_id[str(made.uncovered.public_id)]["paid_by"] == "not_rated"
    assert by_id[str(made.uncovered.public_id)]["note"] == "No GBP rate covers +882123456789"
    assert by_id[str(made.refused.public_id)]["refusal_reason"] == "channel_limit"
    assert by_id[str(made.bundle.public_id)]["bundle_minutes"] == "2"
    assert by_id[str(made.bundle.public_id)]["rate_per_minute"] == ""
    assert by_id[str(made.pending.public_id)]["cost"] == ""
