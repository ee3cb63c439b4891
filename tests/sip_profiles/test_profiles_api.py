from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from apps.audit.models import AuditEvent
from apps.billing.models import Charge
from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Company, Role
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.sip_profiles.forms import EXAMPLE_ADDRESS_LINE
from apps.sip_profiles.models import AllowedAddress, ChannelChange, SipProfile
from apps.sip_profiles.services import sip_profile_create, sip_profile_update
from tests.conftest import client_as
from tests.factories import CompanyFactory, member
from tests.helpers.confirm import post_confirmed
from tests.helpers.queries import SIGNED_IN, expect_queries
from tests.helpers.races import run_concurrently
from tests.sip_profiles.factories import digest_profile, held_number, ip_profile

pytestmark = pytest.mark.django_db

URL = "/api/v1/sip-profiles/"


def test_a_digest_profile_gets_a_generated_username_and_a_password_shown_once(company, owner) -> None:
    client = client_as(owner)

    response = client.post(URL, {"name": "Main PBX", "auth_method": "registration", "channels": 4})

    assert response.status_code == 201, response.json()
    body = response.json()
    password = body["password"]
    assert len(password) == 24
    assert body["sip_username"].isdigit()
    assert len(body["sip_username"]) == 10
    assert body["tls_required"] is True
    assert body["srtp_required"] is True
    assert body["provisioning_state"] == "pending"
    assert "password" not in client.get(f"{URL}{body['id']}/").json()
    assert "password" not in client.get(URL).json()["results"][0]


def test_only_the_digest_ha1_values_are_stored(company, owner, settings) -> None:
    profile, password = digest_profile(company, owner)
    material = f"{profile.sip_username}:{settings.SIP_DOMAIN}:{password}".encode()

    profile.refresh_from_db()
    assert profile.ha1_md5 == hashlib.md5(material, usedforsecurity=False).hexdigest()
    assert profile.ha1_sha256 == hashlib.sha256(material).hexdigest()
    assert profile.sip_realm == settings.SIP_DOMAIN


def _database_contains(text: str) -> list[str]:
    hits = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb')"
        )
        for table, column in cursor.fetchall():
            query = f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s'  # noqa: S608 - catalog names
            cursor.execute(query, [f"%{text}%"])
            if cursor.fetchone()[0]:
                hits.append(f"{table}.{column}")
    return hits


def test_no_plain_sip_password_is_stored_anywhere_after_creation_and_reset(company, owner) -> None:
    client = client_as(owner)
    created = client.post(URL, {"name": "Main PBX", "auth_method": "registration", "channels": 1}).json()
    reset = client.post(f"{URL}{created['id']}/reset-password/").json()

    assert reset["password"] != created["password"]
    assert reset["sip_username"] == created["sip_username"]
    assert _database_contains(created["password"]) == []
    assert _database_contains(reset["password"]) == []


def test_a_password_reset_changes_the_digests_and_is_audited(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    before = (profile.ha1_md5, profile.ha1_sha256)

    response = client_as(owner).post(f"{URL}{profile.public_id}/reset-password/")

    profile.refresh_from_db()
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert (profile.ha1_md5, profile.ha1_sha256) != before
    assert AuditEvent.objects.filter(action="sip_profile.password_reset", object_id=str(profile.public_id)).exists()


def test_an_ip_profile_has_no_password_to_reset(company, owner) -> None:
    profile = ip_profile(company, owner)

    response = client_as(owner).post(f"{URL}{profile.public_id}/reset-password/")

    assert response.status_code == 400
    assert response.json()["code"] == "no_password"


def test_an_ip_profile_lists_its_addresses_with_port_and_transport(company, owner) -> None:
    response = client_as(owner).post(
        URL,
        {
            "name": "Office",
            "auth_method": "ip",
            "channels": 10,
            "allowed_ips": [
                {"address": "192.0.2.10"},
                {"address": "198.51.100.0/29", "port": 5080, "transport": "tcp"},
                {"address": "2001:db8::10", "transport": "tls"},
            ],
        },
    )

    assert response.status_code == 201, response.json()
    assert response.json()["password"] is None
    assert response.json()["allowed_ips"] == [
        {"address": "192.0.2.10/32", "port": 5060, "transport": "udp"},
        {"address": "198.51.100.0/29", "port": 5080, "transport": "tcp"},
        {"address": "2001:db8::10/128", "port": 5061, "transport": "tls"},
    ]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("192.0.2.300", "is not an IPv4 or IPv6 address"),
        ("192.0.2.5/29", "did you mean 192.0.2.0/29"),
        ("192.0.0.0/16", "is too large"),
        ("2001:db8::/48", "is too large"),
        ("", "may not be blank"),
    ],
)
def test_bad_addresses_are_errors_on_the_entry(company, owner, address, message) -> None:
    response = client_as(owner).post(
        URL, {"name": "Office", "auth_method": "ip", "channels": 1, "allowed_ips": [{"address": address}]}
    )

    assert response.status_code == 400
    assert message in response.json()["errors"]["allowed_ips.0.address"][0]
    assert not SipProfile.objects.exists()


@override_settings(ALLOW_PRIVATE_SIP_ADDRESSES=False)
@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1", "169.254.1.1", "224.0.0.5", "fe80::1", "::1"])
def test_private_loopback_link_local_and_multicast_addresses_are_refused(company, owner, address) -> None:
    response = client_as(owner).post(
        URL, {"name": "Office", "auth_method": "ip", "channels": 1, "allowed_ips": [{"address": address}]}
    )

    assert response.status_code == 400
    assert "public address" in response.json()["errors"]["allowed_ips.0.address"][0]


@override_settings(ALLOW_PRIVATE_SIP_ADDRESSES=False)
@pytest.mark.parametrize("address", ["203.0.113.10", "198.51.100.0/28", "192.0.2.7", "2001:db8::5"])
def test_an_address_from_a_documentation_range_is_refused_as_reserved_for_documentation(
    company, owner, address
) -> None:
    response = client_as(owner).post(
        URL, {"name": "Office", "auth_method": "ip", "channels": 1, "allowed_ips": [{"address": address}]}
    )

    assert response.status_code == 400
    message = response.json()["errors"]["allowed_ips.0.address"][0]
    assert "is reserved for documentation" in message
    assert "private" not in message
    assert not SipProfile.objects.exists()


@override_settings(ALLOW_PRIVATE_SIP_ADDRESSES=False)
def test_the_ip_form_example_is_an_address_the_form_accepts(company, owner) -> None:
    page = client_as(owner)
    form = page.get("/sip-profiles/new/").content.decode()
    example = EXAMPLE_ADDRESS_LINE

    _, created = post_confirmed(
        page,
        "/sip-profiles/new/",
        {"name": "Office", "auth_method": "ip", "channels": "1", "us_minute_bundles": "0", "allowed_ips": example},
    )

    assert f'placeholder="{example}"' in form
    assert created.status_code == 302, created.content.decode()[:2000]
    address = SipProfile.objects.get(name="Office").allowed_addresses.get()
    assert (address.network.removesuffix("/32"), address.port, address.transport) == ("81.2.69.160", 5060, "udp")


@pytest.mark.parametrize(
    ("channels", "message"),
    [(1, "1 channel takes at most 1 bundle."), (3, "3 channels take at most 3 bundles.")],
)
def test_too_many_bundles_for_the_channels_is_said_in_good_grammar(company, owner, channels, message) -> None:
    response = client_as(owner).post(
        URL, {"name": "Office", "auth_method": "registration", "channels": channels, "us_minute_bundles": channels + 1}
    )

    assert response.status_code == 400
    assert response.json()["errors"]["us_minute_bundles"] == [
        f"A profile holds at most one US minute bundle per channel: {message}"
    ]


def test_an_ip_profile_needs_an_address_and_a_digest_profile_takes_none(company, owner) -> None:
    client = client_as(owner)

    ip_without = client.post(URL, {"name": "A", "auth_method": "ip", "channels": 1})
    digest_with = client.post(
        URL, {"name": "B", "auth_method": "registration", "channels": 1, "allowed_ips": [{"address": "192.0.2.1"}]}
    )

    assert "allowed_ips" in ip_without.json()["errors"]
    assert "allowed_ips" in digest_with.json()["errors"]


def test_an_address_belongs_to_one_profile_in_the_whole_system(company, owner, other_company) -> None:
    ip_profile(company, owner, address="192.0.2.0/29", name="Mine")
    stranger = member(other_company)

    overlapping = client_as(stranger).post(
        URL, {"name": "Theirs", "auth_method": "ip", "channels": 1, "allowed_ips": [{"address": "192.0.2.5"}]}
    )
    same_company = client_as(owner).post(
        URL, {"name": "Second", "auth_method": "ip", "channels": 1, "allowed_ips": [{"address": "192.0.2.7"}]}
    )

    assert overlapping.status_code == 400
    assert overlapping.json()["code"] == "address_in_use"
    assert "another SIP profile" in overlapping.json()["errors"]["allowed_ips"][0]
    assert "Mine" not in overlapping.json()["errors"]["allowed_ips"][0]  # never name another company's profile
    assert "your profile “Mine”" in same_company.json()["errors"]["allowed_ips"][0]


def test_overlapping_networks_are_refused_by_the_database_itself(company, owner) -> None:
    profile = ip_profile(company, owner, address="192.0.2.0/29")
    other = SipProfile.objects.create(company=company, name="Raw", auth_method="ip")

    with pytest.raises(IntegrityError), transaction.atomic():
        AllowedAddress.objects.create(profile=other, network="192.0.2.4/30")
    assert profile.allowed_addresses.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_companies_claiming_the_same_address_at_once_get_one_success_and_one_clear_error() -> None:
    # Two companies, so no company lock orders the two requests: the database's
    # exclusion constraint decides, and the loser still gets a clear field error.
    claimants = [(company, member(company)) for company in (CompanyFactory(), CompanyFactory())]

    def claim(company: Company, owner: object) -> str:
        sip_profile_create(
            actor=Actor(user=owner),
            company=company,
            name="PBX",
            auth_method="ip",
            channels=1,
            allowed_ips=[{"address": "192.0.2.77"}],
        )
        return "ok"

    outcomes = run_concurrently(*[partial(claim, *claimant) for claimant in claimants], catch=(ApplicationError,))

    assert outcomes.count("ok") == 1
    (error,) = [o for o in outcomes if isinstance(o, ApplicationError)]
    assert error.code == "address_in_use"
    assert "allowed_ips" in error.errors
    assert AllowedAddress.objects.filter(network="192.0.2.77/32").count() == 1
    assert SipProfile.objects.count() == 1


@pytest.mark.parametrize(("channels", "field"), [(0, "channels"), (301, "channels"), ("many", "channels")])
def test_channels_are_1_to_300(company, owner, channels, field) -> None:
    response = client_as(owner).post(URL, {"name": "X", "auth_method": "registration", "channels": channels})

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_bundles_may_not_exceed_channels_and_lowering_channels_below_them_is_refused(company, owner) -> None:
    client = client_as(owner)
    too_many = client.post(URL, {"name": "X", "auth_method": "registration", "channels": 2, "us_minute_bundles": 3})
    profile, _ = digest_profile(company, owner, us_minute_bundles=2)

    lowered = client.patch(f"{URL}{profile.public_id}/", {"channels": 1})

    assert too_many.status_code == 400
    assert too_many.json()["code"] == "bundles_exceed_channels"
    assert "us_minute_bundles" in too_many.json()["errors"]
    assert lowered.status_code == 400
    assert lowered.json()["code"] == "bundles_exceed_channels"
    assert "Cancel bundles first" in lowered.json()["errors"]["channels"][0]
    profile.refresh_from_db()
    assert profile.channels == 2


def test_the_database_refuses_more_bundles_than_channels(company) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        SipProfile.objects.create(company=company, name="Raw", auth_method="ip", channels=1, us_minute_bundles=2)


def test_names_are_unique_within_a_company_ignoring_case(company, owner, other_company) -> None:
    digest_profile(company, owner, name="Main PBX")

    again = client_as(owner).post(URL, {"name": "main pbx", "auth_method": "registration", "channels": 1})
    elsewhere = client_as(member(other_company)).post(
        URL, {"name": "Main PBX", "auth_method": "registration", "channels": 1}
    )

    assert again.status_code == 400
    assert again.json()["errors"]["name"]
    assert elsewhere.status_code == 201


def test_the_authentication_method_is_fixed(company, owner) -> None:
    profile, _ = digest_profile(company, owner)

    response = client_as(owner).patch(f"{URL}{profile.public_id}/", {"auth_method": "ip"})

    assert response.status_code == 400
    assert "auth_method" in response.json()["errors"]


def test_tls_and_srtp_can_be_turned_off_for_old_pbxs(company, owner) -> None:
    profile, _ = digest_profile(company, owner)

    body = client_as(owner).patch(f"{URL}{profile.public_id}/", {"tls_required": False, "srtp_required": False}).json()

    assert body["tls_required"] is False
    assert body["srtp_required"] is False
    event = AuditEvent.objects.get(action="sip_profile.updated", object_id=str(profile.public_id))
    assert event.changes["tls_required"] == {"before": True, "after": False}


def test_channel_changes_are_kept_and_charged_prorated_to_the_renewal_day(company, owner) -> None:
    with time_machine.travel(datetime(2026, 11, 10, 12, 0, tzinfo=UTC), tick=False):
        profile, _ = digest_profile(company, owner)  # 2 channels, renews on the 10th
    with time_machine.travel(datetime(2026, 11, 25, 0, 0, tzinfo=UTC), tick=False):
        sip_profile_update(actor=Actor(user=owner), profile=profile, channels=5)
        sip_profile_update(actor=Actor(user=owner), profile=profile, channels=3)

    assert [(c.before, c.after) for c in ChannelChange.objects.filter(profile=profile)] == [(0, 2), (2, 5), (5, 3)]
    first, added = Charge.objects.filter(kind="channels").order_by("created_at")
    price = Decimal("7.95")  # GBP, seeded
    # 29.5 of the 30 days from 10 Nov to 10 Dec remain when the profile is created at noon.
    assert first.amount == (2 * price * Decimal("29.5") / Decimal(30)).quantize(Decimal("0.0001"))
    # 3 channels added with 15 of 30 days left; lowering to 3 charges nothing and refunds nothing.
    assert added.quantity == 3
    assert added.amount == (3 * price / 2).quantize(Decimal("0.0001"))
    assert Charge.objects.count() == 2


def test_a_viewer_cannot_create_change_or_delete_profiles(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    client = client_as(member(company, Role.VIEWER))

    assert client.get(URL).status_code == 200
    assert client.post(URL, {"name": "X", "auth_method": "registration", "channels": 1}).status_code == 403
    assert client.patch(f"{URL}{profile.public_id}/", {"channels": 3}).status_code == 403
    assert client.post(f"{URL}{profile.public_id}/reset-password/").status_code == 403
    assert client.delete(f"{URL}{profile.public_id}/").status_code == 403


def test_deleting_releases_business_accounts_keeps_history_and_frees_the_name(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    account = BusinessAccount.objects.create(
        company=company, name="reception", display_name="Reception", sip_profile=profile, signin_enabled=False
    )
    client = client_as(owner)

    response = client.delete(f"{URL}{profile.public_id}/")

    assert response.status_code == 204
    account.refresh_from_db()
    assert account.sip_profile is None
    assert account.signin_enabled is True
    kept = SipProfile.objects.get(pk=profile.pk)
    assert kept.deleted_at is not None
    assert kept.ha1_md5 == ""
    assert client.get(f"{URL}{profile.public_id}/").status_code == 404
    assert client.post(URL, {"name": profile.name, "auth_method": "registration", "channels": 1}).status_code == 201


def test_an_online_number_of_the_company_can_be_the_caller_id(company, owner) -> None:
    held_number(company, "+442079460001")
    profile, _ = digest_profile(company, owner)

    national = client_as(owner).patch(f"{URL}{profile.public_id}/", {"caller_id": "020 7946 0001"})

    assert national.status_code == 200, national.json()
    assert national.json()["caller_id"] == "+442079460001"
    cleared = client_as(owner).patch(f"{URL}{profile.public_id}/", {"caller_id": None})
    assert cleared.json()["caller_id"] is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("+442079460999", "neither an Online Number of your company"),
        ("12", "too short"),
        ("not a number", "not a phone number"),
        ("+44 20 7946 00011234", "too long"),
    ],
)
def test_a_caller_id_the_company_does_not_hold_is_a_field_error(company, owner, value, message) -> None:
    profile, _ = digest_profile(company, owner)

    response = client_as(owner).patch(f"{URL}{profile.public_id}/", {"caller_id": value})

    assert response.status_code == 400
    assert message in response.json()["errors"]["caller_id"][0]


def test_another_companys_number_cannot_be_presented(company, owner, other_company) -> None:
    held_number(other_company, "+442079460002")
    profile, _ = digest_profile(company, owner)

    response = client_as(owner).patch(f"{URL}{profile.public_id}/", {"caller_id": "+442079460002"})

    assert response.status_code == 400


def test_a_number_in_a_country_without_caller_id_support_is_refused(company, owner) -> None:
    held_number(company, "+5511987654321", country="BR")
    profile, _ = digest_profile(company, owner)

    response = client_as(owner).patch(f"{URL}{profile.public_id}/", {"caller_id": "+5511987654321"})

    assert response.status_code == 400
    assert "carriers there refuse it" in response.json()["errors"]["caller_id"][0]


def test_the_list_takes_a_fixed_number_of_queries(company, owner) -> None:
    for n in range(8):
        ip_profile(company, owner, address=f"192.0.2.{n + 1}", name=f"PBX {n}")
    client = client_as(owner)
    client.get(URL)

    with expect_queries(
        *SIGNED_IN,
        "the count",
        "the page, joined with caller IDs",
        "their addresses",
        "their business accounts",
        "their provisioning on each edge node, for all of them at once (tests/edge/test_provisioning_api.py)",
    ):
        response = client.get(URL, {"auth_method": "ip"})

    assert response.json()["count"] == 8


def test_list_filters_are_validated(company, owner) -> None:
    response = client_as(owner).get(URL, {"status": "sleeping"})

    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_every_profile_change_is_audited(company, owner) -> None:
    profile = ip_profile(company, owner)

    sip_profile_update(
        actor=Actor(user=owner), profile=profile, allowed_ips=[{"address": "192.0.2.99", "transport": "tcp"}]
    )

    event = AuditEvent.objects.get(action="sip_profile.updated")
    assert event.changes["allowed_ips"]["after"] == [{"address": "192.0.2.99/32", "port": 5060, "transport": "tcp"}]
    assert AuditEvent.objects.filter(action="sip_profile.created").count() == 1
    assert Company.objects.count() == 1
