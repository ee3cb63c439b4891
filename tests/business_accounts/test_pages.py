"""The business accounts page: /business-accounts/."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.business_accounts.models import BusinessAccount
from apps.business_accounts.services import business_account_assign
from apps.companies.models import Membership, Role
from apps.core.actor import Actor
from tests.business_accounts.factories import business_account, sip_profile
from tests.business_accounts.test_accounts import active_number
from tests.conftest import client_as
from tests.factories import member

pytestmark = pytest.mark.django_db

URL = "/business-accounts/"


def test_the_page_has_its_url_name(db) -> None:
    assert reverse("business-account-list") == URL


def test_the_page_lists_accounts_with_routing_and_the_call_button(company, owner, settings) -> None:
    settings.SIP_DOMAIN = "sip.example.net"
    profile = sip_profile(company, "Front office")
    account = business_account(company, owner, display_name="Sales & Co")
    business_account_assign(actor=Actor(user=owner), account=account, profile=profile)

    html = client_as(owner).get(URL).content.decode()

    assert "sales.desk" in html
    assert f'<option value="{profile.public_id}" selected>Front office</option>' in html
    assert "off while routed" in html
    # The snippet is shown as text in a copy box, and the copy button points at it.
    assert f'id="snippet-{account.public_id}"' in html
    assert f'data-copy-target="snippet-{account.public_id}"' in html
    assert "&lt;a href=&quot;sip:sales.desk@sip.example.net&quot;" in html
    assert "Call Sales &amp;amp; Co&lt;/a&gt;" in html


def test_the_page_searches_and_filters_by_profile(company, owner) -> None:
    profile = sip_profile(company)
    business_account_assign(
        actor=Actor(user=owner), account=business_account(company, owner, name="routed.desk"), profile=profile
    )
    business_account(company, owner, name="spare.desk", display_name="Spare")
    client = client_as(owner)

    searched = client.get(URL, {"search": "spare"}).content.decode()
    routed = client.get(URL, {"sip_profile": str(profile.public_id)}).content.decode()
    unrouted = client.get(URL, {"sip_profile": "none"}).content.decode()
    nonsense = client.get(URL, {"sip_profile": "garbage"})

    assert "spare.desk" in searched
    assert "routed.desk" not in searched
    assert "routed.desk" in routed
    assert "spare.desk" not in routed
    assert "spare.desk" in unrouted
    assert "routed.desk" not in unrouted
    assert nonsense.status_code == 200


def test_an_account_is_created_from_the_page(company, owner) -> None:
    viewer = Membership.objects.get(user=member(company, Role.VIEWER))

    response = client_as(owner).post(
        URL, {"name": "sales.desk", "display_name": "Sales", "member": str(viewer.public_id)}, format="multipart"
    )

    assert response.status_code == 302
    account = BusinessAccount.objects.get()
    assert account.member == viewer


def test_a_refused_creation_shows_the_error_inline_and_keeps_what_was_typed(company, owner, other_company) -> None:
    business_account(other_company, member(other_company), name="sales.desk")

    response = client_as(owner).post(URL, {"name": "sales.desk", "display_name": "My sales line"}, format="multipart")

    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_name_error"' in html
    assert "already taken" in html
    assert 'value="My sales line"' in html
    assert 'value="sales.desk"' in html


def test_the_profile_select_routes_and_unroutes(company, owner) -> None:
    account = business_account(company, owner)
    profile = sip_profile(company)
    client = client_as(owner)
    assign_url = reverse("business-account-assign", args=[account.public_id])

    routed = client.post(assign_url, {"sip_profile": str(profile.public_id)}, format="multipart", follow=True)
    assert "now rings SIP profile" in routed.content.decode()
    assert BusinessAccount.objects.get().sip_profile == profile

    client.post(assign_url, {"sip_profile": ""}, format="multipart")
    assert BusinessAccount.objects.get().signin_enabled is True


def test_routing_an_admins_account_from_the_page_explains_the_lockout(company, owner) -> None:
    admin = Membership.objects.get(user=member(company, Role.ADMIN, email="it@example.com"))
    account = business_account(company, owner, member=admin)
    profile = sip_profile(company)

    response = client_as(owner).post(
        reverse("business-account-assign", args=[account.public_id]),
        {"sip_profile": str(profile.public_id)},
        format="multipart",
        follow=True,
    )

    html = response.content.decode()
    assert "it@example.com" in html
    assert "lock the admin out of the portal" in html
    assert BusinessAccount.objects.get().sip_profile is None


def test_the_edit_page_saves_and_shows_the_snippet(company, owner) -> None:
    account = business_account(company, owner)
    edit_url = reverse("business-account-edit", args=[account.public_id])
    client = client_as(owner)

    page = client.get(edit_url).content.decode()
    saved = client.post(edit_url, {"display_name": "Sales team", "member": ""}, format="multipart")
    refused = client.post(edit_url, {"display_name": "", "member": ""}, format="multipart")

    assert 'data-copy-target="snippet"' in page
    assert "fixed after creation" in page
    assert saved.status_code == 302
    assert BusinessAccount.objects.get().display_name == "Sales team"
    assert refused.status_code == 400
    assert 'id="id_display_name_error"' in refused.content.decode()


def test_delete_asks_for_confirmation_and_refuses_while_numbers_ring(company, owner) -> None:
    kept = business_account(company, owner, name="kept.desk")
    active_number(company, kept)
    gone = business_account(company, owner, name="gone.desk")
    client = client_as(owner)

    html = client.get(URL).content.decode()
    assert 'data-confirm="Delete the business account gone.desk?' in html
    client.post(reverse("business-account-delete", args=[gone.public_id]))
    refused = client.post(reverse("business-account-delete", args=[kept.public_id]), follow=True)

    assert "Unassign those numbers from it first" in refused.content.decode()
    assert list(BusinessAccount.objects.values_list("name", flat=True)) == ["kept.desk"]


def test_a_viewer_sees_the_list_but_no_forms_and_cannot_post(company, owner) -> None:
    account = business_account(company, owner)
    client = client_as(member(company, Role.VIEWER))

    html = client.get(URL).content.decode()
    posted = client.post(URL, {"name": "viewer.desk", "display_name": "Nope"}, format="multipart")
    routed = client.post(reverse("business-account-assign", args=[account.public_id]), {"sip_profile": ""})

    assert "sales.desk" in html
    assert "New business account" not in html
    assert "business-account-assign" not in html
    assert "/assign/" not in html
    assert posted.status_code == 403
    assert routed.status_code == 403


def test_another_companys_account_pages_are_404(company, owner, other_company) -> None:
    theirs = business_account(other_company, member(other_company))
    client = client_as(owner)

    assert client.get(reverse("business-account-edit", args=[theirs.public_id])).status_code == 404
    for name in ("business-account-edit", "business-account-assign", "business-account-delete"):
        assert client.post(reverse(name, args=[theirs.public_id]), {}).status_code == 404
    assert BusinessAccount.objects.filter(pk=theirs.pk).exists()
