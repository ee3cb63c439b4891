"""Writes about Online Numbers: buying, assigning, renewing and releasing them, and the
staff-kept stock (single rows and CSV imports).

Every service is atomic and writes its audit event in the same transaction. Purchases
and renewals are charged through apps.billing.charges.services.charge_record, one charge per
period (its idempotency key), paid from the company balance.

Locks are always taken in the same order, subscription before stock row, so that a
release and the periodic job cannot deadlock each other.
"""

from __future__ import annotations

import calendar
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.billing.charges.services import charge_record, charges_cancel_for_item
from apps.billing.quotes import Quote, quote_make
from apps.business_accounts.models import BusinessAccount
from apps.callerid.services import caller_id_remove_everywhere
from apps.companies.models import Company, Notice
from apps.companies.notices import notice_create
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError, Conflict
from apps.core.import_jobs import CsvImport, RowError, csv_import_queue, csv_import_run
from apps.core.models import ImportJob
from apps.core.phone import e164, parse_number
from apps.numbers import imports
from apps.numbers.models import QUARANTINE_DAYS, TERMS, NumberSubscription, OnlineNumber
from apps.numbers.selectors import charge_item
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_mark_for_provisioning

logger = logging.getLogger(__name__)

RELEASED_REASON = "the number was released"
BACK_IN_STOCK = {"status": {"before": OnlineNumber.Status.QUARANTINE, "after": OnlineNumber.Status.AVAILABLE}}
PERIOD_BATCH = 200
PERIOD_LIMIT = 5_000
IMPORT_KIND = "numbers"
IMPORT_PROGRESS_EVERY = 500
IMPORT_INSERT_BATCH = 2_000
IMPORT_LOOKUP_BATCH = 5_000


# --- Periods ----------------------------------------------------------------------


def add_months(moment: datetime, months: int, *, day: int | None = None) -> datetime:
    """`moment` plus whole calendar months, on `day` of the month (default: moment's own day),
    moved back to the month's last day when it has fewer days: 31 Jan + 3 months = 30 Apr."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    wanted = day or moment.day
    return moment.replace(year=year, month=month, day=min(wanted, calendar.monthrange(year, month)[1]))


def _anchor_day(subscription: NumberSubscription) -> int:
    # Periods keep the day of the month the number was bought on, so a number bought
    # on 31 January renews on 30 April and then on 31 July, not on the 30th forever
    # after. number_buy makes created_at the purchase instant, the first period's start.
    return subscription.created_at.astimezone(UTC).day


def _check_months(months: Any) -> int:
    try:
        value = int(months)
    except (TypeError, ValueError):
        value = 0
    if value not in TERMS:
        raise ApplicationError("Choose 3 or 12 months.", field="months")
    return value


def _charge(*, actor: Actor, subscription: NumberSubscription, renewal: bool) -> None:
    start, end = subscription.current_period_start, subscription.current_period_end
    charge_record(
        actor=actor,
        company=subscription.company,
        kind="number",
        description=_number_description(str(subscription.number.number), subscription.months, renewal=renewal),
        quantity=1,
        unit_price=subscription.price,
        amount=subscription.price,
        period_start=start,
        period_end=end,
        item=charge_item(subscription),
        # One charge per subscription and period: a rerun or a retried task finds it.
        idempotency_key=f"number:{subscription.public_id}:{start.isoformat()}",
    )


def _account_label(account: BusinessAccount | None) -> str | None:
    return account.name if account is not None else None


def _routes_changed(*accounts: BusinessAccount | None) -> None:
    """The edge routes a number to the SIP profile its business account is routed to: mark
    each such profile (sip_profile_mark_for_provisioning), inside the change's transaction.

    Profile rows are locked before account rows, as business_accounts locks them, and the
    accounts stay locked (FOR NO KEY UPDATE) to the end: an account being re-routed at the same
    time either waits for this change and then marks its new profile itself, or committed
    before the second read here, which marks that profile too."""
    ids = sorted({account.pk for account in accounts if account is not None})
    if not ids:
        return
    routed = BusinessAccount.objects.filter(pk__in=ids, sip_profile__isnull=False)
    marked: set[int] = set()
    for query in (routed, routed.select_for_update(no_key=True)):
        profile_ids = set(query.values_list("sip_profile_id", flat=True)) - marked
        for profile in SipProfile.objects.select_for_update().filter(pk__in=profile_ids).order_by("pk"):
            sip_profile_mark_for_provisioning(profile)
        marked |= profile_ids


def _check_account(company: Company, account: BusinessAccount | None) -> None:
    if account is not None and account.company_id != company.pk:
        raise ApplicationError("Choose a business account of your company.", field="business_account")


# --- Buying and holding ----------------------------------------------------------


def _available_stock(company: Company, wanted: str, *, lock: bool) -> OnlineNumber:
    stocks = OnlineNumber.objects.select_for_update() if lock else OnlineNumber.objects.all()
    stock = stocks.filter(number=wanted).first()
    if stock is None:
        raise ApplicationError(
            f"{wanted} is not one of our numbers. Search the available numbers and choose one of them.",
            field="number",
            code="not_in_stock",
        )
    if stock.status != OnlineNumber.Status.AVAILABLE:
        mine = NumberSubscription.objects.for_company(company).filter(
            number=stock, status=NumberSubscription.Status.ACTIVE
        )
        if mine.exists():
            raise Conflict(f"{wanted} is already yours.", field="number", code="already_yours")
        raise Conflict(
            f"{wanted} is no longer available: someone else has just taken it. Choose another number.",
            field="number",
            code="not_available",
        )
    return stock


def _number_description(number: str, months: int, *, renewal: bool) -> str:
    return f"Online Number {number}, {months} months ({'renewal' if renewal else 'purchase'})"


def number_buy_quote(*, company: Company, number: str, months: Any, at: datetime | None = None) -> Quote:
    """What number_buy charges for this number and term (its first period, in full). Refuses
    what number_buy would refuse."""
    months = _check_months(months)
    wanted = e164(parse_number(number, region=company.country.code, field="number"))
    stock = _available_stock(company, wanted, lock=False)
    price = stock.price(currency=company.currency, months=months)
    return quote_make(
        company=company,
        amount=price,
        description=_number_description(wanted, months, renewal=False),
        period_end=add_months(at or timezone.now(), months),
        basis=((f"number:{wanted}", months, price),),
    )


def number_renewal_quote(*, subscription: NumberSubscription) -> Quote:
    """What the next renewal will charge (the subscription's price for its term), on its current
    period's end, if auto-renewal is on then."""
    months = subscription.months
    return quote_make(
        company=subscription.company,
        amount=subscription.price,
        description=_number_description(str(subscription.number.number), months, renewal=True)
        + f", charged on {subscription.current_period_end:%d %b %Y}",
        period_end=add_months(subscription.current_period_end, months, day=_anchor_day(subscription)),
        basis=((f"number:{subscription.number.number}", months, subscription.price),),
    )


def number_buy(
    *,
    actor: Actor,
    company: Company,
    number: str,
    months: int,
    auto_renew: bool,
    business_account: BusinessAccount | None = None,
) -> NumberSubscription:
    """Buy an available number for 3 or 12 months. National input is read in the company's country."""
    months = _check_months(months)
    wanted = e164(parse_number(number, region=company.country.code, field="number"))
    _check_account(company, business_account)
    with transaction.atomic():
        # The row lock makes two buyers of the same number queue: the second sees it taken.
        stock = _available_stock(company, wanted, lock=True)
        price = stock.price(currency=company.currency, months=months)
        now = timezone.now()
        try:
            with transaction.atomic():
                subscription = NumberSubscription.objects.create(
                    company=company,
                    number=stock,
                    months=months,
                    auto_renew=bool(auto_renew),
                    price=price,
                    currency=company.currency,
                    current_period_start=now,
                    current_period_end=add_months(now, months),
                    business_account=business_account,
                )
        except IntegrityError:
            # The partial unique index (one active subscription per number) backs the lock up.
            raise Conflict(f"{wanted} is no longer available.", field="number", code="not_available") from None
        # Later periods keep the day of the month of this instant (_anchor_day); auto_now_add
        # stamped created_at a few microseconds later, which could be the next day.
        NumberSubscription.objects.filter(pk=subscription.pk).update(created_at=now)
        subscription.created_at = now
        stock.status = OnlineNumber.Status.ACTIVE
        stock.quarantine_until = None
        stock.save(update_fields=["status", "quarantine_until", "updated_at"])
        audit_record(
            actor=actor,
            action="number.bought",
            company=company,
            target=subscription,
            changes={
                "number": {"before": None, "after": wanted},
                "months": {"before": None, "after": months},
                "price": {"before": None, "after": f"{price} {company.currency}"},
                "auto_renew": {"before": None, "after": subscription.auto_renew},
                "current_period_end": {"before": None, "after": subscription.current_period_end},
                **(
                    {"business_account": {"before": None, "after": business_account.name}}
                    if business_account is not None
                    else {}
                ),
            },
        )
        _routes_changed(business_account)
        _charge(actor=actor, subscription=subscription, renewal=False)
    return subscription


def _lock(subscription: NumberSubscription) -> NumberSubscription:
    locked = (
        NumberSubscription.objects.select_for_update(of=("self",))
        .select_related("number", "company", "business_account")
        .get(pk=subscription.pk)
    )
    if locked.status != NumberSubscription.Status.ACTIVE:
        raise ApplicationError(
            f"{locked.number.number} ended on {locked.ended_at:%d %b %Y}; buy it again if it is available.",
            code="ended",
        )
    return locked


def number_assign(
    *, actor: Actor, subscription: NumberSubscription, business_account: BusinessAccount | None
) -> NumberSubscription:
    """Route the number's calls to a business account of the company, or to none (None)."""
    with transaction.atomic():
        subscription = _lock(subscription)
        _check_account(subscription.company, business_account)
        before = subscription.business_account
        if (before.pk if before else None) == (business_account.pk if business_account else None):
            return subscription
        subscription.business_account = business_account
        subscription.save(update_fields=["business_account", "updated_at"])
        _routes_changed(before, business_account)
        audit_record(
            actor=actor,
            action="number.assigned" if business_account is not None else "number.unassigned",
            company=subscription.company,
            target=subscription,
            changes={"business_account": {"before": _account_label(before), "after": _account_label(business_account)}},
        )
    return subscription


def number_set_auto_renew(*, actor: Actor, subscription: NumberSubscription, auto_renew: bool) -> NumberSubscription:
    with transaction.atomic():
        subscription = _lock(subscription)
        auto_renew = bool(auto_renew)
        if subscription.auto_renew == auto_renew:
            return subscription
        subscription.auto_renew = auto_renew
        subscription.save(update_fields=["auto_renew", "updated_at"])
        audit_record(
            actor=actor,
            action="number.auto_renew_changed",
            company=subscription.company,
            target=subscription,
            changes={"auto_renew": {"before": not auto_renew, "after": auto_renew}},
        )
    return subscription


UNCHANGED: Any = object()


def number_update(
    *,
    actor: Actor,
    subscription: NumberSubscription,
    business_account: BusinessAccount | None = UNCHANGED,
    auto_renew: bool = UNCHANGED,
) -> NumberSubscription:
    """Change the assignment and the auto-renewal together: both or neither."""
    with transaction.atomic():
        if business_account is not UNCHANGED:
            subscription = number_assign(actor=actor, subscription=subscription, business_account=business_account)
        if auto_renew is not UNCHANGED:
            subscription = number_set_auto_renew(actor=actor, subscription=subscription, auto_renew=auto_renew)
        return _lock(subscription)


def _end(*, actor: Actor, subscription: NumberSubscription, now: datetime, action: str) -> NumberSubscription:
    """End a locked, active subscription now: unassign it, quarantine the number, stop
    presenting it as caller ID. Nothing is deleted."""
    stock = OnlineNumber.objects.select_for_update().get(pk=subscription.number_id)
    account = subscription.business_account
    subscription.status = NumberSubscription.Status.ENDED
    subscription.ended_at = now
    subscription.business_account = None
    subscription.save(update_fields=["status", "ended_at", "business_account", "updated_at"])
    _routes_changed(account)
    stock.status = OnlineNumber.Status.QUARANTINE
    stock.quarantine_until = now + timedelta(days=QUARANTINE_DAYS)
    stock.save(update_fields=["status", "quarantine_until", "updated_at"])
    subscription.number = stock
    audit_record(
        actor=actor,
        action=action,
        company=subscription.company,
        target=subscription,
        changes={
            "status": {"before": NumberSubscription.Status.ACTIVE, "after": NumberSubscription.Status.ENDED},
            **({"business_account": {"before": account.name, "after": None}} if account is not None else {}),
        },
    )
    caller_id_remove_everywhere(
        actor=actor, company=subscription.company, subscription=subscription, reason=RELEASED_REASON
    )
    return subscription


def number_release(*, actor: Actor, subscription: NumberSubscription) -> NumberSubscription:
    """Give the number up now. The rest of the paid period is not refunded."""
    with transaction.atomic():
        subscription = _lock(subscription)
        return _end(actor=actor, subscription=subscription, now=timezone.now(), action="number.released")


# --- The periodic job ----------------------------------------------------------------


def _process_one(*, pk: int, now: datetime) -> str | None:
    actor = Actor.system()
    with transaction.atomic():
        subscription = (
            NumberSubscription.objects.select_for_update(of=("self",))
            .select_related("number", "company", "business_account")
            .filter(pk=pk, status=NumberSubscription.Status.ACTIVE, current_period_end__lte=now)
            .first()
        )
        if subscription is None:
            return None  # released, or handled by another run, since it was listed
        if not subscription.auto_renew:
            _end(actor=actor, subscription=subscription, now=now, action="number.ended")
            notice_create(
                company=subscription.company,
                kind="number_ended",
                subject=f"Online Number {subscription.number.number} ended",
                level=Notice.Level.INFO,
                message=(
                    f"Online Number {subscription.number.number} ended on {now:%d %b %Y}: it was not set to renew. "
                    f"It no longer receives calls."
                ),
            )
            return "ended"
        before = subscription.current_period_end
        anchor = _anchor_day(subscription)
        # A job that was down for longer than a term catches up one period at a time,
        # each charged once: the number was held throughout.
        while subscription.current_period_end <= now:
            start = subscription.current_period_end
            subscription.current_period_start = start
            subscription.current_period_end = add_months(start, subscription.months, day=anchor)
            _charge(actor=actor, subscription=subscription, renewal=True)
        subscription.save(update_fields=["current_period_start", "current_period_end", "updated_at"])
        audit_record(
            actor=actor,
            action="number.renewed",
            company=subscription.company,
            target=subscription,
            changes={"current_period_end": {"before": before, "after": subscription.current_period_end}},
        )
        return "renewed"


def _end_suspended(*, stock_ids: list[int], now: datetime) -> None:
    """A number suspended for an unpaid renewal whose quarantine ran out ends for good; its
    open charges are cancelled, never collected."""
    actor = Actor.system()
    for subscription in NumberSubscription.objects.select_for_update(of=("self",)).filter(
        number_id__in=stock_ids, status=NumberSubscription.Status.SUSPENDED
    ):
        subscription.status = NumberSubscription.Status.ENDED
        subscription.ended_at = now
        subscription.business_account = None
        subscription.save(update_fields=["status", "ended_at", "business_account", "updated_at"])
        charges_cancel_for_item(actor=actor, item=charge_item(subscription))
        audit_record(
            actor=actor,
            action="number.ended_unpaid",
            company=subscription.company,
            target=subscription,
            changes={"status": {"before": NumberSubscription.Status.SUSPENDED, "after": subscription.status}},
        )


def _end_quarantines(*, now: datetime, batch_size: int, limit: int) -> int:
    released = 0
    while released < limit:
        with transaction.atomic():
            # skip_locked: a staff edit of one row does not hold the whole batch up.
            batch = list(
                OnlineNumber.objects.select_for_update(skip_locked=True)
                .filter(status=OnlineNumber.Status.QUARANTINE, quarantine_until__lte=now)
                .order_by("quarantine_until", "pk")[:batch_size]
            )
            if not batch:
                break
            _end_suspended(stock_ids=[row.pk for row in batch], now=now)
            OnlineNumber.objects.filter(pk__in=[row.pk for row in batch]).update(
                status=OnlineNumber.Status.AVAILABLE, quarantine_until=None, updated_at=timezone.now()
            )
            for row in batch:
                audit_record(
                    actor=Actor.system(),
                    action="number.back_in_stock",
                    company=None,
                    target=row,
                    changes=BACK_IN_STOCK,
                )
        released += len(batch)
    return released


def number_periods_process(
    *, now: datetime | None = None, batch_size: int = PERIOD_BATCH, limit: int = PERIOD_LIMIT
) -> dict[str, int]:
    """Renew or end every subscription whose period is over, then put numbers whose
    quarantine is over back in stock. At most `limit` of each per run: the next run
    goes on where this one stopped.

    Each subscription is its own transaction, so one that fails (logged) neither
    undoes nor blocks the others; it is tried again on the next run.
    """
    now = now or timezone.now()
    counts = {"renewed": 0, "ended": 0, "failed": 0, "back_in_stock": 0}
    done: set[int] = set()
    while len(done) < limit:
        due = (
            NumberSubscription.objects.filter(status=NumberSubscription.Status.ACTIVE, current_period_end__lte=now)
            .exclude(pk__in=done)
            .order_by("current_period_end", "pk")
            .values_list("pk", flat=True)[: min(batch_size, limit - len(done))]
        )
        ids = list(due)
        if not ids:
            break
        for pk in ids:
            done.add(pk)
            try:
                outcome = _process_one(pk=pk, now=now)
            except (DatabaseError, ApplicationError):
                logger.exception("Online Number subscription %s could not be renewed or ended", pk)
                counts["failed"] += 1
                continue
            if outcome is not None:
                counts[outcome] += 1
    counts["back_in_stock"] = _end_quarantines(now=now, batch_size=batch_size, limit=limit)
    return counts


# --- Stock kept by staff -----------------------------------------------------------

STOCK_EDITABLE = ("area", "number_type", *imports.PRICE_FIELDS)


def _stock_snapshot(stock: OnlineNumber) -> dict[str, Any]:
    return {name: str(getattr(stock, name)) for name in STOCK_EDITABLE}


def number_stock_create(
    *, actor: Actor, number: str, country: str, area: str, number_type: str, **prices: Any
) -> OnlineNumber:
    values = imports.clean_stock_values(
        number=number, country=country, area=area, number_type=number_type, prices=prices
    )
    with transaction.atomic():
        if OnlineNumber.objects.filter(number=values.e164).exists():
            raise ApplicationError(f"{values.e164} is already in stock.", field="number", code="in_stock")
        try:
            with transaction.atomic():
                stock = OnlineNumber.objects.create(**values.model_fields())
        except IntegrityError:
            raise Conflict(f"{values.e164} is already in stock.", field="number", code="in_stock") from None
        audit_record(
            actor=actor,
            action="number_stock.created",
            company=None,
            target=stock,
            changes={name: {"before": None, "after": value} for name, value in _stock_snapshot(stock).items()},
        )
    return stock


def number_stock_update(*, actor: Actor, stock: OnlineNumber, **fields: Any) -> OnlineNumber:
    """Staff change a stock row's area, type or prices. Its number and country are fixed:
    a different number is a different row. Prices apply to purchases from now on;
    subscriptions renew at the price they were bought at."""
    unknown = set(fields) - set(STOCK_EDITABLE)
    if unknown:
        raise ApplicationError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        stock = OnlineNumber.objects.select_for_update().get(pk=stock.pk)
        before = _stock_snapshot(stock)
        merged = {name: fields.get(name, getattr(stock, name)) for name in STOCK_EDITABLE}
        values = imports.clean_stock_values(
            number=str(stock.number),
            country=stock.country.code,
            area=merged["area"],
            number_type=merged["number_type"],
            prices={name: merged[name] for name in imports.PRICE_FIELDS},
        )
        stock.area = values.area
        stock.number_type = values.number_type
        for name, price in values.prices.items():
            setattr(stock, name, price)
        stock.save(update_fields=[*STOCK_EDITABLE, "updated_at"])
        after = _stock_snapshot(stock)
        changes = {
            name: {"before": before[name], "after": after[name]} for name in after if before[name] != after[name]
        }
        if changes:
            audit_record(actor=actor, action="number_stock.updated", company=None, target=stock, changes=changes)
    return stock


def number_stock_end_quarantine(*, actor: Actor, stock: OnlineNumber) -> OnlineNumber:
    """Staff put a quarantined number back in stock before its 30 days are over."""
    with transaction.atomic():
        stock = OnlineNumber.objects.select_for_update().get(pk=stock.pk)
        if stock.status != OnlineNumber.Status.QUARANTINE:
            raise ApplicationError(f"{stock.number} is {stock.get_status_display().lower()}, not in quarantine.")
        stock.status = OnlineNumber.Status.AVAILABLE
        stock.quarantine_until = None
        stock.save(update_fields=["status", "quarantine_until", "updated_at"])
        audit_record(
            actor=actor,
            action="number.back_in_stock",
            company=None,
            target=stock,
            changes=BACK_IN_STOCK,
        )
    return stock


# --- CSV import of stock -------------------------------------------------------------


def number_import_create(*, actor: Actor, filename: str, content: bytes | str) -> ImportJob:
    """Keep the uploaded file and queue its import. The header is checked now, so a wrong
    file is refused on the upload form; the rows are checked by the task."""
    # Lazy: apps.numbers.tasks imports this module (import cycle).
    from apps.numbers.tasks import run_number_import

    return csv_import_queue(NumberImport, actor=actor, filename=filename, content=content, task=run_number_import)


def _already_in_stock(valid: list[tuple[int, imports.StockValues]]) -> list[dict[str, Any]]:
    errors = []
    for offset in range(0, len(valid), IMPORT_LOOKUP_BATCH):
        chunk = valid[offset : offset + IMPORT_LOOKUP_BATCH]
        # The checked numbers, not their text: the field would parse the text again.
        found = {
            str(number): status
            for number, status in OnlineNumber.objects.filter(
                number__in=[values.number for _, values in chunk]
            ).values_list("number", "status")
        }
        for line, values in chunk:
            status = found.get(values.e164)
            if status is not None:
                label = OnlineNumber.Status(status).label.lower()
                errors.append({"line": line, "error": f"number: {values.e164} is already in stock ({label})."})
    return errors


class NumberImport(CsvImport[imports.StockValues]):
    """The staff CSV import of Online Number stock, in the shared import pipeline. All or
    nothing: a number already in stock, or twice in the file, is a bad row."""

    kind = IMPORT_KIND
    columns = imports.COLUMNS
    max_bytes = imports.MAX_FILE_BYTES
    max_rows = imports.MAX_ROWS
    default_filename = "numbers.csv"
    audit_action = "number_import"
    progress_every = IMPORT_PROGRESS_EVERY

    # The app's own cleaner, called directly (no wrapper per row).
    clean_row = staticmethod(imports.clean_row)

    def key(self, values: imports.StockValues) -> str:
        return values.e164

    def duplicate(self, values: imports.StockValues, first_line: int) -> str:
        return f"number: {values.e164} is also on line {first_line}."

    def check(self, valid: list[tuple[int, imports.StockValues]]) -> list[RowError]:
        return _already_in_stock(valid)

    def insert(self, valid: list[tuple[int, imports.StockValues]]) -> int:
        # The parsed number, not its text: the field would parse the text again.
        OnlineNumber.objects.bulk_create(
            [OnlineNumber(**{**values.model_fields(), "number": values.number}) for _, values in valid],
            batch_size=IMPORT_INSERT_BATCH,
        )
        return len(valid)

    def conflict(self, valid: list[tuple[int, imports.StockValues]]) -> list[RowError]:
        # Someone added one of these numbers while the file was being checked.
        return _already_in_stock(valid) or [{"line": 1, "error": "The stock changed during the import; upload again."}]

    def audit_changes(self, *, succeeded: bool, imported: int) -> dict[str, Any]:
        return {"imported_rows": {"before": None, "after": imported}}


def number_import_run(*, job_id: int) -> ImportJob | None:
    """Check and import one staff CSV of stock (NumberImport). Safe to run twice: a finished
    job is left alone."""
    run = csv_import_run(NumberImport, job_id=job_id)
    return run.job if run is not None else None


# --- Billing: unpaid and paid again ---------------------------------------------------------


def number_subscription_suspend_unpaid(*, actor: Actor, subscription: NumberSubscription, now: datetime) -> bool:
    """Its renewal's grace period ended unpaid: the number goes to quarantine (still held for
    the company, so paying brings it back) and off every profile's caller ID. Call with the
    subscription row locked. False when there was nothing to suspend."""
    if subscription.status != NumberSubscription.Status.ACTIVE:
        return False
    stock = OnlineNumber.objects.select_for_update().get(pk=subscription.number_id)
    subscription.status = NumberSubscription.Status.SUSPENDED
    subscription.save(update_fields=["status", "updated_at"])
    _routes_changed(subscription.business_account)
    stock.status = OnlineNumber.Status.QUARANTINE
    stock.quarantine_until = now + timedelta(days=QUARANTINE_DAYS)
    stock.save(update_fields=["status", "quarantine_until", "updated_at"])
    audit_record(
        actor=actor,
        action="number.suspended_unpaid",
        company=subscription.company,
        target=subscription,
        changes={"status": {"before": NumberSubscription.Status.ACTIVE, "after": subscription.status}},
    )
    caller_id_remove_everywhere(
        actor=actor, company=subscription.company, subscription=subscription, reason="its renewal was not paid"
    )
    return True


def number_subscription_resumable(subscription: NumberSubscription) -> bool:
    """A suspended number can come back only while its quarantine still holds it."""
    if subscription.status != NumberSubscription.Status.SUSPENDED:
        return True
    return subscription.number.status == OnlineNumber.Status.QUARANTINE


def number_subscription_resume_paid(*, actor: Actor, subscription: NumberSubscription) -> bool:
    """Its unpaid renewal is paid: the number is the company's again. Call with the row locked."""
    if subscription.status != NumberSubscription.Status.SUSPENDED:
        return False
    stock = OnlineNumber.objects.select_for_update().get(pk=subscription.number_id)
    subscription.status = NumberSubscription.Status.ACTIVE
    subscription.save(update_fields=["status", "updated_at"])
    _routes_changed(subscription.business_account)
    stock.status = OnlineNumber.Status.ACTIVE
    stock.quarantine_until = None
    stock.save(update_fields=["status", "quarantine_until", "updated_at"])
    audit_record(
        actor=actor,
        action="number.resumed",
        company=subscription.company,
        target=subscription,
        changes={"status": {"before": NumberSubscription.Status.SUSPENDED, "after": subscription.status}},
    )
    return True
