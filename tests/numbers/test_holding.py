from __future__ import annotations

import pytest
import time_machine
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.billing.models import Charge
from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Notice, Role
from apps.core.actor import Actor
from apps.numbers.models import NumberSubscription, OnlineNumber
from apps.numbers.services import number_buy
from apps.sip_profiles.models import SipProfile
from tests.conftest import client_as
from tests.factories import member
from tests.numbers.factories import OnlineNumberFactory, populate_numbers

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(company, owner) -> NumberSubscription:
    stock = OnlineNumberFactory(number="+442079460958")
    return number_buy(actor=Actor(user=owner), company=company, number=str(stock.number), months=3, auto_renew=True)


@pytest.fixture
def account(company) -> BusinessAccount:
    return BusinessAccount.objects.create(company=company, name="sales.line", display_name="Sales")


def url(subscription: NumberSubscription) -> str:
    return f"/api/v1/numbers/{subscription.public_id}/"


def test_a_number_is_assigned_to_a_business_account_and_unassigned_at_any_time(owner, held, account) -> None:
    client = client_as(owner)

    assigned = client.patch(url(held), {"business_account": str(account.public_id)})
    unassigned = client.patch(url(held), {"business_account": None})

    assert assigned.status_code == 200, assigned.json()
    assert assigned.json()["business_account"] == str(account.public_id)
    assert unassigned.json()["business_account"] is None
    events = AuditEvent.objects.filter(object_id=str(held.public_id)).order_by("id")
    assert list(events.values_list("action", flat=True)) == ["number.bought", "number.assigned", "number.unassigned"]


def test_an_account_may_hold_several_numbers(company, owner, held, account) -> None:
    second = populate_numbers(company, owner)
    client = client_as(owner)

    for subscription in (held, second):
        assert client.patch(url(subscription), {"business_account": str(account.public_id)}).status_code == 200

    assert account.numbers.count() == 2


def test_another_companys_business_account_cannot_be_assigned(owner, held, other_company) -> None:
    theirs = BusinessAccount.objects.create(company=other_company, name="their.line", display_name="Theirs")

    response = client_as(owner).patch(url(held), {"business_account": str(theirs.public_id)})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Choose a business account of your company.",
        "code": "invalid",
        "errors": {"business_account": ["Choose a business account of your company."]},
    }
    held.refresh_from_db()
    assert held.business_account is None


def test_patch_changes_assignment_and_renewal_together_or_not_at_all(owner, held, account, other_company) -> None:
    theirs = BusinessAccount.objects.create(company=other_company, name="their.line", display_name="Theirs")
    client = client_as(owner)

    refused = client.patch(url(held), {"auto_renew": False, "business_account": str(theirs.public_id)})
    both = client.patch(url(held), {"auto_renew": False, "business_account": str(account.public_id)})

    assert refused.status_code == 400
    assert both.json()["auto_renew"] is False
    assert both.json()["business_account_name"] == "sales.line"


def test_auto_renew_is_switched_off_and_on(owner, held) -> None:
    client = client_as(owner)

    assert client.patch(url(held), {"auto_renew": False}).json()["auto_renew"] is False
    assert client.patch(url(held), {"auto_renew": True}).json()["auto_renew"] is True
    assert AuditEvent.objects.filter(action="number.auto_renew_changed").count() == 2


def test_releasing_ends_the_number_now_without_refund_and_quarantines_it(company, owner, held, account) -> None:
    client = client_as(owner)
    client.patch(url(held), {"business_account": str(account.public_id)})
    paid_until = held.current_period_end

    with time_machine.travel(timezone.now(), tick=False):
        response = client.delete(url(held))
        now = timezone.now()

    assert (response.status_code, response.content) == (204, b"")
    body = client.get(url(held)).json()
    assert body["status"] == "ended"
    assert body["business_account"] is None
    held.refresh_from_db()
    assert held.ended_at == now
    assert held.current_period_end == paid_until  # kept: what was paid for, not refunded
    stock = OnlineNumber.objects.get(pk=held.number_id)
    assert stock.status == "quarantine"
    assert (stock.quarantine_until - now).days == 30
    assert Charge.objects.filter(company=company).count() == 1
    assert NumberSubscription.objects.filter(pk=held.pk).exists()  # nothing is deleted


def test_an_ended_number_can_be_read_but_not_changed_or_released_again(owner, held) -> None:
    client = client_as(owner)
    client.delete(url(held))

    read = client.get(url(held))
    patch = client.patch(url(held), {"auto_renew": True})
    again = client.delete(url(held))

    assert read.status_code == 200
    assert read.json()["status"] == "ended"
    assert (patch.status_code, patch.json()["code"]) == (400, "ended")
    assert (again.status_code, again.json()["code"]) == (400, "ended")


def test_releasing_a_number_removes_it_as_caller_id_and_tells_the_admins(company, owner, held) -> None:
    profile = SipProfile.objects.create(company=company, name="Office", auth_method="ip", caller_id_number=held)

    client_as(owner).delete(url(held))

    profile.refresh_from_db()
    assert profile.caller_id_number is None
    notice = Notice.objects.get(company=company, kind="caller_id_removed")
    assert "+442079460958" in notice.message
    assert "the number was released" in notice.message


def test_another_companys_number_is_404_for_every_method(owner, other_company) -> None:
    theirs = populate_numbers(other_company, member(other_company))
    client = client_as(owner)

    responses = [
        client.get(url(theirs)),
        client.patch(url(theirs), {"auto_renew": False}),
        client.delete(url(theirs)),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert all(r.json()["code"] == "not_found" for r in responses)
    theirs.refresh_from_db()
    assert (theirs.status, theirs.auto_renew) == ("active", True)
    assert client.get("/api/v1/numbers/").json()["count"] == 0


def test_a_viewer_sees_the_numbers_but_cannot_change_them(company, held) -> None:
    client = client_as(member(company, Role.VIEWER))

    assert client.get(url(held)).status_code == 200
    assert client.patch(url(held), {"auto_renew": False}).status_code == 403
    assert client.delete(url(held)).status_code == 403
    held.refresh_from_db()
    assert held.status == "active"


def test_the_api_schema_describes_the_number_endpoints(db) -> None:
    import yaml
    from django.test import Client

    schema = yaml.safe_load(Client().get("/api/v1/schema/").content)

    paths = schema["paths"]
    assert {"get"} <= set(paths["/api/v1/numbers/available/"])
    assert {"get", "post"} <= set(paths["/api/v1/numbers/"])
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/numbers/{id}/"])
    params = {p["name"] for p in paths["/api/v1/numbers/available/"]["get"]["parameters"]}
    assert {"country", "area", "contains", "type", "page"} <= params
    assert "201" in paths["/api/v1/numbers/"]["post"]["responses"]
