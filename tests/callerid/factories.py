"""Caller ID landlines for tests, made through the services."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.callerid.models import CallerIdCountry, Landline
from apps.callerid.services import landline_approve, landline_register
from apps.companies.models import Company, VerificationStatus
from apps.core.actor import Actor

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LANDLINE = "+442079460958"  # 020 7946 0958, a London number set aside for drama


def pdf(name: str = "phone-bill.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PDF, content_type="application/pdf")


def verify(company: Company) -> Company:
    company.verification_status = VerificationStatus.VERIFIED
    company.save(update_fields=["verification_status", "updated_at"])
    return company


def landline(company: Company, owner: Any, number: str = LANDLINE, *, approved_by: Any = None) -> Landline:
    """A registered landline; verified too when `approved_by` (a staff user) is given."""
    registered = landline_register(actor=Actor(user=owner), company=company, number=number, proof=pdf())
    if approved_by is not None:
        return landline_approve(actor=Actor(user=approved_by), landline=registered)
    return registered


def populate_callerid(company: Company, owner: Any) -> Landline:
    """One landline registration of the company (pending review)."""
    verify(company)
    # A test with transaction=True truncates the seeded country list; the landline needs its country.
    CallerIdCountry.objects.get_or_create(country="GB")
    return landline(company, owner)
