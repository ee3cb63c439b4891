"""Reads for the auto-recharge pages and API: settings and state."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.billing.models import AutoRecharge, ProfileAutoRecharge, RechargeAttempt
from apps.billing.recharge.company import company_month_total
from apps.billing.recharge.profile import profile_month_total
from apps.billing.recharge.rules import month_of
from apps.companies.models import Company


def auto_recharge_state(company: Company) -> dict[str, Any]:
    """The company's settings (None when never set) and what auto-recharge did this month."""
    auto = AutoRecharge.objects.filter(company=company).select_related("payment_method").first()
    month = month_of(timezone.now())
    in_flight = RechargeAttempt.objects.for_company(company).filter(status=RechargeAttempt.Status.IN_FLIGHT).exists()
    return {
        "configured": auto is not None,
        "enabled": auto.enabled if auto else False,
        "amount": auto.amount if auto else None,
        "threshold": auto.threshold if auto else None,
        "monthly_limit": auto.monthly_limit if auto else None,
        "payment_method": auto.payment_method if auto else None,
        "currency": company.currency,
        "month": month,
        "month_total": company_month_total(company, month=month),
        "in_flight": in_flight,
        "consecutive_failures": auto.consecutive_failures if auto else 0,
        "last_failure_at": auto.last_failure_at if auto else None,
        "last_failure_message": auto.last_failure_message if auto else "",
        "disabled_reason": auto.disabled_reason if auto else "",
    }


def profile_auto_recharge_state(profile: Any) -> dict[str, Any]:
    auto = ProfileAutoRecharge.objects.filter(sip_profile=profile).first()
    month = month_of(timezone.now())
    return {
        "configured": auto is not None,
        "enabled": auto.enabled if auto else False,
        "amount": auto.amount if auto else None,
        "threshold": auto.threshold if auto else None,
        "monthly_limit": auto.monthly_limit if auto else None,
        "currency": profile.company.currency,
        "month": month,
        "month_total": profile_month_total(profile, month=month),
        "consecutive_failures": auto.consecutive_failures if auto else 0,
        "last_failure_at": auto.last_failure_at if auto else None,
        "last_failure_message": auto.last_failure_message if auto else "",
    }
