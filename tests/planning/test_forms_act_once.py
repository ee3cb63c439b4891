"""A form sent twice acts once (issue 13, item 3): the readiness checklist carries the one-time
token and its view claims it (apps.core.once.OncePostMixin); planning sits below billing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.companies.models import Company
from apps.planning.models import ReadinessChecklist
from tests.helpers.once import page_token, sent_twice

pytestmark = pytest.mark.django_db


def test_the_checklist_sent_twice_with_other_ticks_is_saved_once(owner: Any, company: Company) -> None:
    web = Client()
    web.force_login(owner)
    token = page_token(web, "/planning/", "/planning/checklist/")

    sent_twice(
        web,
        "/planning/checklist/",
        {"pbx_supports_sip": "on", "once": token},
        {"pbx_supports_sip": "on", "firewall_open": "on", "once": token},
    )

    checklist = ReadinessChecklist.objects.get(company=company)
    assert checklist.pbx_supports_sip
    assert not checklist.firewall_open
