"""A landline that stops being valid comes off every profile, and the company's admins are told."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.callerid.models import Landline
from apps.callerid.selectors import caller_id_options
from apps.callerid.services import landline_reject, landline_withdraw, landlines_expire
from apps.callerid.tasks import expire_landlines
from apps.companies.models import Notice, Role
from apps.companies.services import company_verification_revoke
from apps.core.actor import Actor
from apps.core.locks import job_lock
from apps.sip_profiles.models import SipProfile
from tests.callerid.factories import landline, verify
from tests.conftest import client_as
from tests.factories import member

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_use(company, owner, staff):
    """A verified landline presented by two profiles; a third profile presents nothing."""
    verify(company)
    line = landline(company, owner, approved_by=staff)
    Notice.objects.all().delete()  # the approval's notice
    profiles = [SipProfile.objects.create(company=company, name=n, auth_method="ip") for n in ("Office", "Shop")]
    SipProfile.objects.filter(pk__in=[p.pk for p in profiles]).update(caller_id_landline=line)
    SipProfile.objects.create(company=company, name="Spare", auth_method="ip")
    return line


def assert_removed_and_told(company, owner, company_admin, mailoutbox, because: str) -> None:
    assert not SipProfile.objects.filter(company=company, caller_id_landline__isnull=False).exists()
    notice = Notice.objects.get(company=company, kind="caller_id_removed")
    assert notice.message.startswith("Calls from Office, Shop now show “Unknown number”: caller ID +442079460958")
    assert because in notice.message
    mail = next(m for m in mailoutbox if "Unknown number" in m.body)
    assert sorted(mail.to) == sorted([owner.email, company_admin.email])
    events = AuditEvent.objects.filter(company=company, action="sip_profile.caller_id_removed")
    assert sorted(e.object_repr for e in events) == ["Office", "Shop"]


def test_a_rejected_landline_comes_off_every_profile(
    company, owner, company_admin, staff, in_use, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        landline_reject(actor=Actor(user=staff), landline=in_use, reason="The number belongs to someone else.")

    assert_removed_and_told(
        company, owner, company_admin, mailoutbox, "rejected it: The number belongs to someone else"
    )
    # One notice says it all: no separate "rejected" notice when profiles were changed.
    assert Notice.objects.filter(company=company).count() == 1


def test_a_withdrawn_landline_comes_off_every_profile(
    company, owner, company_admin, in_use, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(company_admin).delete(f"/api/v1/caller-ids/{in_use.public_id}/")

    assert (response.status_code, response.content) == (204, b"")
    assert client_as(company_admin).get(f"/api/v1/caller-ids/{in_use.public_id}/").json()["status"] == "withdrawn"
    assert_removed_and_told(company, owner, company_admin, mailoutbox, "because the landline was withdrawn")


def test_an_expired_landline_comes_off_every_profile_after_twelve_months(
    company, owner, company_admin, in_use, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    with time_machine.travel(timezone.now() + timedelta(days=364)):
        assert landlines_expire(now=timezone.now()) == 0
        assert caller_id_options(company=company)
    with time_machine.travel(timezone.now() + timedelta(days=365, minutes=1)):
        assert caller_id_options(company=company) == []  # not offered even before the job runs
        with django_capture_on_commit_callbacks(execute=True):
            assert expire_landlines.delay().get() == 1
        assert expire_landlines.delay().get() == 0  # a second run finds nothing to do

    in_use.refresh_from_db()
    assert in_use.status == Landline.Status.EXPIRED
    assert_removed_and_told(
        company, owner, company_admin, mailoutbox, "its proof of ownership expired after 12 months; prove it again"
    )
    assert AuditEvent.objects.get(action="landline.expired").actor_label == "system"


def test_an_expired_landline_no_profile_used_gets_a_notice_to_prove_it_again(
    company, owner, staff, django_capture_on_commit_callbacks
) -> None:
    verify(company)
    line = landline(company, owner, approved_by=staff)

    with django_capture_on_commit_callbacks(execute=True):
        assert landlines_expire(now=timezone.now() + timedelta(days=366)) == 1

    line.refresh_from_db()
    assert line.status == "expired"
    assert "Register it again" in Notice.objects.get(kind="landline_expired").message


def test_the_expiry_job_does_nothing_while_another_run_holds_the_lock(company, owner, in_use) -> None:
    with job_lock("callerid.expire_landlines") as acquired:
        assert acquired
        with time_machine.travel(timezone.now() + timedelta(days=400)):
            assert expire_landlines.delay().get() is None

    in_use.refresh_from_db()
    assert in_use.status == "verified"


def test_losing_company_verification_takes_landlines_off_every_profile(
    company, owner, company_admin, staff, in_use, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        company_verification_revoke(actor=Actor(user=staff), company=company, reason="Documents were forged.")

    assert_removed_and_told(company, owner, company_admin, mailoutbox, "your company is no longer verified")
    in_use.refresh_from_db()
    assert in_use.status == "verified"  # the proof still stands if the company is verified again
    company.refresh_from_db()
    assert caller_id_options(company=company) == []


def test_another_companys_profiles_are_untouched(company, owner, staff, in_use, other_company) -> None:
    other_owner = member(other_company, Role.OWNER)
    verify(other_company)
    theirs = landline(other_company, other_owner, approved_by=staff)
    profile = SipProfile.objects.create(company=other_company, name="Theirs", auth_method="ip")
    SipProfile.objects.filter(pk=profile.pk).update(caller_id_landline=theirs)

    landline_withdraw(actor=Actor(user=owner), landline=in_use)

    profile.refresh_from_db()
    assert profile.caller_id_landline == theirs


def test_a_country_staff_remove_takes_its_numbers_off_every_profile(
    company, owner, staff, in_use, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    from django.test import Client

    from apps.callerid.models import CallerIdCountry
    from tests.callerid.test_api import online_number

    london = online_number(company, "+442071234567", "GB")
    SipProfile.objects.filter(name="Spare").update(caller_id_number=london)
    paris = landline(company, owner, "+33123456789", approved_by=staff)
    french = SipProfile.objects.create(company=company, name="Paris", auth_method="ip", caller_id_landline=paris)
    admin = Client()
    admin.force_login(staff)
    gb = CallerIdCountry.objects.get(country="GB")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/staff/callerid/calleridcountry/{gb.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not CallerIdCountry.objects.filter(country="GB").exists()
    assert not SipProfile.objects.filter(
        name__in=["Office", "Shop", "Spare"], caller_id_landline__isnull=False
    ).exists()
    assert not SipProfile.objects.filter(caller_id_number__isnull=False).exists()
    french.refresh_from_db()
    assert french.caller_id_landline == paris
    messages = list(Notice.objects.filter(company=company, kind="caller_id_removed").values_list("message", flat=True))
    assert len(messages) == 2
    assert all("no longer supported for numbers in United Kingdom" in m for m in messages)
    assert AuditEvent.objects.filter(action="caller_id_country.removed", actor_user=staff).exists()
