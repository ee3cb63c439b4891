from __future__ import annotations

import pytest
from django.core import mail

from apps.audit.models import AuditEvent
from apps.companies.models import Notice, Role
from apps.companies.notices import notice_create
from tests.conftest import client_as
from tests.factories import member

pytestmark = pytest.mark.django_db


def test_a_notice_shows_on_the_dashboard_and_is_emailed_to_owners_and_admins(
    company, owner, django_capture_on_commit_callbacks
) -> None:
    admin = member(company, Role.ADMIN)
    member(company, Role.VIEWER)

    with django_capture_on_commit_callbacks(execute=True):
        notice_create(
            company=company,
            kind="test",
            subject="Caller ID +442079460001 was removed",
            message="Caller ID +442079460001 was removed.",
        )

    assert "Caller ID +442079460001 was removed." in client_as(owner).get("/").content.decode()
    assert sorted(mail.outbox[-1].to) == sorted([owner.email, admin.email])


def test_an_admin_dismisses_a_notice_and_a_viewer_cannot(company, owner) -> None:
    notice = notice_create(company=company, kind="test", subject="Something to see", message="Something to see.")
    viewer = client_as(member(company, Role.VIEWER))

    refused = viewer.post(f"/notices/{notice.public_id}/dismiss/", format="multipart")
    dismissed = client_as(owner).post(f"/notices/{notice.public_id}/dismiss/", format="multipart")

    assert refused.status_code == 403
    assert dismissed.status_code == 302
    notice.refresh_from_db()
    assert notice.dismissed_by == owner
    assert f"notice-{notice.public_id}" not in client_as(owner).get("/").content.decode()
    assert AuditEvent.objects.filter(action="notice.dismissed").count() == 1
    assert Notice.objects.count() == 1
