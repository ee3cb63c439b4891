"""Every route that takes an object id answers 404 for another company's objects.

The routes are read from the URL configuration, so a route added later is tested
without editing this file. `populate()` must give each company one object of each
kind: a new route whose objects it does not create fails the positive control below.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from apps.accounts.services import api_key_create
from apps.audit.services import audit_record
from apps.cdrs.models import Export
from apps.companies.models import Company, Role
from apps.companies.notices import notice_create
from apps.companies.services import invitation_create, verification_submit
from apps.core.actor import Actor
from tests.billing.factories import populate_billing
from tests.business_accounts.factories import populate_business_accounts
from tests.callerid.factories import populate_callerid
from tests.conftest import client_as
from tests.factories import CompanyFactory, member
from tests.numbers.factories import populate_numbers
from tests.sip_profiles.factories import populate_sip_profiles

pytestmark = pytest.mark.django_db

# Platform staff see every company's objects there: tenant isolation does not apply.
STAFF_PREFIXES = ("staff/",)
METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            uuid_params = re.findall(r"<uuid:(\w+)>", route)
            if uuid_params:
                yield route, uuid_params


def object_routes() -> list[str]:
    routes = sorted({route for route, _ in _walk(get_resolver().url_patterns)})
    return [r for r in routes if not r.startswith(STAFF_PREFIXES)]


def _path(route: str, value: uuid.UUID) -> str:
    return "/" + re.sub(r"<uuid:\w+>", str(value), route).replace("^", "").replace("$", "")


def populate(company: Company) -> Any:
    """One object of every company-owned kind, and the owner who made them."""
    owner = member(company, Role.OWNER)
    actor = Actor(user=owner)
    member(company, Role.VIEWER)
    invitation_create(actor=actor, company=company, email=f"invitee-{company.pk}@example.com", role="viewer")
    api_key_create(actor=actor, company=company, name="integration", role="viewer")
    verification_submit(
        actor=actor,
        company=company,
        documents=[SimpleUploadedFile("c.pdf", b"%PDF-1.4 test", content_type="application/pdf")],
        legal_name="L",
        registration_number="1",
        address_line1="A",
        city="C",
        country="GB",
    )
    audit_record(actor=actor, action="test.event", company=company)
    notice_create(company=company, kind="test", subject="A notice", message="A notice.")
    populate_sip_profiles(company, owner)
    populate_business_accounts(company, owner)
    populate_callerid(company, owner)
    populate_numbers(company, owner)
    populate_billing(company, owner)
    export = Export(
        company=company, requested_by=owner, kind=Export.Kind.CALLS, filename="calls.csv",
        status=Export.Status.DONE, expires_at=timezone.now() + timedelta(days=1),
    )  # fmt: skip
    export.file.save(f"isolation-{company.pk}.csv", ContentFile(b"started_at\n"), save=False)
    export.save()
    return owner


def _company_of(model: type[models.Model]) -> str | None:
    """The ORM path from a model to its owning company, if it has one."""
    names = {f.name: f for f in model._meta.get_fields()}
    if "company" in names:
        return "company"
    for field in model._meta.get_fields():
        if isinstance(field, models.ForeignKey) and "company" in {
            f.name for f in field.related_model._meta.get_fields()
        }:
            return f"{field.name}__company"
    return None


def public_ids_of(company: Company) -> set[uuid.UUID]:
    ids: set[uuid.UUID] = set()
    for model in apps.get_models():
        if "public_id" not in {f.name for f in model._meta.get_fields()}:
            continue
        path = _company_of(model)
        if path is None:
            continue
        ids.update(model._default_manager.filter(**{path: company}).values_list("public_id", flat=True))
    return ids


def test_the_url_configuration_has_object_routes_to_test() -> None:
    routes = object_routes()
    assert "api/v1/members/<uuid:id>/" in routes
    assert "audit/<uuid:id>/" in routes


@pytest.mark.parametrize("route", object_routes())
def test_another_companys_object_is_404_on(route: str) -> None:
    mine, theirs = CompanyFactory(name="Mine"), CompanyFactory(name="Theirs")
    me = populate(mine)
    populate(theirs)
    client = client_as(me)
    their_ids = public_ids_of(theirs)
    assert their_ids

    for public_id in their_ids:
        for method in METHODS:
            response = getattr(client, method)(_path(route, public_id), {}, format="multipart")
            assert response.status_code in (404, 405), (method.upper(), _path(route, public_id), response.status_code)

    # Positive control: the route does serve this company's own objects, so the
    # 404s above are about ownership and not about a route that never matches.
    served = False
    for public_id in public_ids_of(mine):
        for method in ("get", "post"):
            response = getattr(client, method)(_path(route, public_id), {}, format="multipart")
            if response.status_code not in (404, 405):
                served = True
                break
        if served:
            break
    assert served, f"No object of the company is served by {route}: add its kind to populate()"
