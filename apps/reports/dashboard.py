"""The dashboard: what a company's members look at every day, composed from the selectors of
the apps that own each figure (balances and spend from the ledger, bundles, numbers, caller
IDs, verification, and the edge's live state). Nothing here reads a model directly.

Links follow the member's role: an alert or a next step links to its fix only for a member
who may make it (a viewer is told what is wrong, never sent to a page it may not use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.urls import reverse
from django.utils import timezone

from apps.billing.charges.selectors import charges_in_grace
from apps.billing.ledger.selectors import (
    ProfileBalance,
    Spend,
    company_balance,
    company_has_bought_credit,
    company_spend,
    profile_balance_states,
)
from apps.billing.recharge.selectors import auto_recharge_state
from apps.bundles.selectors import bundle_minutes_left_by_profile
from apps.callerid.selectors import landlines_expiring
from apps.cdrs.selectors import company_has_calls
from apps.companies.models import Capability, VerificationRequest, VerificationStatus
from apps.companies.selectors import latest_verification_request
from apps.companies.tenancy import Tenancy
from apps.core.money import format_money
from apps.edge.live import UNKNOWN, TrunkNow, trunks_now
from apps.numbers.selectors import number_subscriptions_ending
from apps.rating.low_balance import DEFAULT_THRESHOLD
from apps.sip_profiles.models import SipProfile

# The profiles shown with their live state; the rest are one link away (the profile list).
PROFILE_ROWS = 25
# How far ahead a number's end or a landline's proof expiry is announced.
ENDING_WITHIN = timedelta(days=14)
# How long a verification outcome stays on the dashboard.
OUTCOME_SHOWN_FOR = timedelta(days=14)


@dataclass(frozen=True)
class Alert:
    level: str  # "error", "warning" or "info" (the messages' classes)
    kind: str  # what it is about, for tests and styling: "balance-empty", "charge-grace", …
    message: str
    url: str = ""  # the page that fixes it ("" when the member may not fix it)
    link: str = ""


@dataclass(frozen=True)
class Step:
    title: str
    done: bool
    detail: str = ""
    url: str = ""
    link: str = ""


@dataclass(frozen=True)
class ProfileRow:
    profile: SipProfile
    now: TrunkNow
    balance: ProfileBalance | None
    bundle_minutes_left: int | None  # None: the profile has no bundles

    @property
    def registration(self) -> str:
        if self.profile.auth_method != SipProfile.AuthMethod.REGISTRATION:
            return "ip"
        if self.now.registered is None:
            return "unknown"
        return "registered" if self.now.registered else "not-registered"


@dataclass
class Dashboard:
    currency: str
    balance: Decimal
    auto_recharge: dict[str, Any]
    spend: Spend
    profiles: list[ProfileRow]
    profile_count: int
    alerts: list[Alert] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def more_profiles(self) -> int:
        return self.profile_count - len(self.profiles)

    @property
    def steps_left(self) -> int:
        return sum(1 for step in self.steps if not step.done)


def dashboard_for(*, tenancy: Tenancy, now: datetime | None = None, live_timeout: float | None = None) -> Dashboard:
    """Every figure of the dashboard for the member's company. The number of queries does not
    depend on the number of profiles; the edge is asked within EDGE_STATUS_TIMEOUT_MS."""
    now = now or timezone.now()
    company = tenancy.company
    live = SipProfile.objects.for_company(company).live()
    shown = list(live.order_by("name", "id")[: PROFILE_ROWS + 1])
    profile_count = len(shown) if len(shown) <= PROFILE_ROWS else live.count()
    shown = shown[:PROFILE_ROWS]
    balances = profile_balance_states(company=company, default_threshold=DEFAULT_THRESHOLD)
    minutes = bundle_minutes_left_by_profile(profile_ids=[p.pk for p in shown if p.us_minute_bundles], at=now)
    trunks = trunks_now(profiles=shown, timeout=live_timeout)
    rows = [
        ProfileRow(
            profile=profile,
            now=trunks.get(profile.pk, UNKNOWN),
            balance=balances.get(profile.pk),
            bundle_minutes_left=minutes.get(profile.pk, 0) if profile.us_minute_bundles else None,
        )
        for profile in shown
    ]
    board = Dashboard(
        currency=company.currency,
        balance=company_balance(company),
        auto_recharge=auto_recharge_state(company),
        spend=company_spend(company=company, now=now),
        profiles=rows,
        profile_count=profile_count,
    )
    bought = company_has_bought_credit(company=company)
    verification = latest_verification_request(company=company)
    board.alerts = _alerts(tenancy=tenancy, board=board, bought=bought, verification=verification, now=now)
    board.steps = _steps(tenancy=tenancy, board=board, bought=bought, verification=verification)
    return board


def _link(tenancy: Tenancy, capability: Capability, url: str, text: str) -> dict[str, str]:
    return {"url": url, "link": text} if tenancy.can(capability) else {}


def _alerts(
    *, tenancy: Tenancy, board: Dashboard, bought: bool, verification: VerificationRequest | None, now: datetime
) -> list[Alert]:
    company, currency = tenancy.company, board.currency
    alerts: list[Alert] = []
    buy = _link(tenancy, Capability.MANAGE_BILLING, reverse("credit"), "Buy credit")

    # A new company's empty balance is its "buy credit" step, not an alert.
    auto = board.auto_recharge
    threshold = auto["threshold"] if auto["enabled"] and auto["threshold"] is not None else DEFAULT_THRESHOLD
    if bought and board.balance <= 0:
        alerts.append(
            Alert(
                "error",
                "balance-empty",
                "The company balance is empty: no credit can be given to profiles and recurring charges "
                "cannot be paid.",
                **buy,
            )
        )
    elif bought and board.balance < threshold:
        alerts.append(
            Alert(
                "warning",
                "balance-low",
                f"The company balance is low: {format_money(board.balance, currency)}, below "
                f"{format_money(threshold, currency)}.",
                **buy,
            )
        )
    if auto["configured"] and (auto["consecutive_failures"] or auto["disabled_reason"]):
        when = timezone.localtime(auto["last_failure_at"]).strftime("%-d %b %H:%M") if auto["last_failure_at"] else ""
        reason = auto["disabled_reason"] or auto["last_failure_message"] or "the card was not charged"
        state = "Auto-recharge is switched off" if auto["disabled_reason"] else "Auto-recharge failed"
        alerts.append(
            Alert(
                "error",
                "recharge-failed",
                f"{state}{' (' + when + ')' if when else ''}: {reason}",
                **_link(tenancy, Capability.MANAGE_BILLING, reverse("credit-auto-recharge"), "Check auto-recharge"),
            )
        )
    for charge in charges_in_grace(company=company):
        until = timezone.localtime(charge.grace_until).strftime("%-d %b %Y") if charge.grace_until else ""
        alerts.append(
            Alert(
                "error",
                "charge-grace",
                f"{charge.description}: {format_money(charge.amount, charge.currency)} could not be paid from the "
                f"company balance; it is suspended on {until} unless the balance covers it.",
                **buy,
            )
        )
    for row in board.profiles:
        if row.balance is None or not (row.balance.empty or row.balance.low):
            continue
        fix = _link(
            tenancy,
            Capability.MANAGE_BILLING,
            reverse("sip-profile-credit", args=[row.profile.public_id]),
            "Give it credit",
        )
        if row.balance.empty:
            message = f"{row.profile.name}'s balance is empty: its paid calls are refused."
        else:
            message = (
                f"{row.profile.name}'s balance is low: {format_money(row.balance.balance, currency)}, below "
                f"{format_money(row.balance.threshold, currency)}."
            )
        alerts.append(
            Alert(
                "error" if row.balance.empty else "warning",
                "profile-empty" if row.balance.empty else "profile-low",
                message,
                **fix,
            )
        )
    for subscription in number_subscriptions_ending(company=company, within=ENDING_WITHIN, at=now):
        end = timezone.localtime(subscription.current_period_end).strftime("%-d %b %Y")
        alerts.append(
            Alert(
                "warning",
                "number-ending",
                f"{subscription.number.number} is released on {end}: its auto-renew is off.",
                url=reverse("number-detail", args=[subscription.public_id]),
                link="Keep the number",
            )
        )
    for landline in landlines_expiring(company=company, within=ENDING_WITHIN, at=now):
        end = timezone.localtime(landline.expires_at).strftime("%-d %b %Y") if landline.expires_at else ""
        alerts.append(
            Alert(
                "warning",
                "callerid-expiring",
                f"Caller ID {landline.number}: its proof expires on {end}; then it is no longer presented.",
                **_link(tenancy, Capability.MANAGE_SERVICE, reverse("callerid-list"), "Prove it again"),
            )
        )
    if verification is not None and verification.reviewed_at and now - verification.reviewed_at < OUTCOME_SHOWN_FOR:
        if verification.status == VerificationRequest.Status.REJECTED and not company.is_verified:
            alerts.append(
                Alert(
                    "error",
                    "verification-rejected",
                    "Company verification was declined" + (f": {verification.reason}" if verification.reason else "."),
                    **_link(tenancy, Capability.MANAGE_COMPANY, reverse("verification"), "Send new documents"),
                )
            )
        elif verification.status == VerificationRequest.Status.APPROVED and company.is_verified:
            alerts.append(
                Alert("info", "verification-approved", "The company is verified: its purchase limit is raised.")
            )
    return alerts


def _steps(*, tenancy: Tenancy, board: Dashboard, bought: bool, verification: VerificationRequest | None) -> list[Step]:
    """The next steps of a new company, ticked off as they are done; none for a viewer (it
    can do none of them) and none once all are done."""
    if not any(
        tenancy.can(c) for c in (Capability.MANAGE_COMPANY, Capability.MANAGE_BILLING, Capability.MANAGE_SERVICE)
    ):
        return []
    company = tenancy.company
    pending = company.verification_status == VerificationStatus.PENDING
    first = board.profiles[0].profile if board.profiles else None
    connected = any(row.now.registered for row in board.profiles) or company_has_calls(company=company)
    steps = [
        Step(
            "Verify your company",
            company.is_verified,
            "Documents sent: staff are reviewing them."
            if pending
            else "Raises the purchase limit and allows landline caller IDs.",
            **({} if pending else _link(tenancy, Capability.MANAGE_COMPANY, reverse("verification"), "Verify")),
        ),
        Step(
            "Buy credit",
            bought,
            "Card, PayPal or bank wire.",
            **_link(tenancy, Capability.MANAGE_BILLING, reverse("credit"), "Buy credit"),
        ),
        Step(
            "Create a SIP profile",
            board.profile_count > 0,
            "A trunk for your PBX, with its channels.",
            **_link(tenancy, Capability.MANAGE_SERVICE, reverse("sip-profile-create"), "Create a profile"),
        ),
        Step(
            "Connect your PBX",
            connected,
            "Point it at the SIP edge; ticked when it registers or makes its first call.",
            **(
                {"url": reverse("sip-profile-connect", args=[first.public_id]), "link": "How to connect"}
                if first is not None
                else {}
            ),
        ),
    ]
    return [] if all(step.done for step in steps) else steps
