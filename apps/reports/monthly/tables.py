"""Each report as one table (a header and rows of plain values): what its CSV holds, on the
page's download and the API's `?format=csv` alike."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal

from django.http import HttpResponse

from apps.reports.monthly.selectors import AllocationsReport, PurchasesReport, SummaryReport, Usage, UsageReport

Table = tuple[list[str], list[list[object]]]

USAGE_GROUPS = ("profile", "destination", "day")
USAGE_COLUMNS = [
    "calls",
    "answered",
    "minutes",
    "bundle_minutes",
    "cost",
    "refused",
    "refused_at_channel_limit",
    "unrated",
]


def summary_table(report: SummaryReport) -> Table:
    """The month's lines, then each day's spend."""
    rows: list[list[object]] = [["total", key, amount] for key, _label, amount in report.lines()]
    rows.append(["total", "spent", report.spent])
    for day in report.days:
        for name in ("calls", "channels", "bundles", "numbers"):
            rows.append([day.day.isoformat(), name, getattr(day, name)])
    return ["day", "item", f"amount_{report.currency.lower()}"], rows


def _usage_values(usage: Usage) -> list[object]:
    return [
        usage.calls,
        usage.answered,
        usage.minutes,
        usage.bundle_minutes,
        usage.cost,
        usage.refused,
        usage.refused_at_channel_limit,
        usage.unrated,
    ]


def usage_table(report: UsageReport, *, by: str) -> Table:
    if by == "day":
        return ["day", *USAGE_COLUMNS], [[u.label, *_usage_values(u)] for u in report.by_day]
    if by == "destination":
        rows = []
        for u in report.by_destination:
            direction, country, kind = u.key.split(":")
            rows.append([u.label, direction, country, kind, *_usage_values(u)])
        return ["destination", "direction", "country", "destination_class", *USAGE_COLUMNS], rows
    return ["profile", "profile_id", *USAGE_COLUMNS], [[u.label, u.key, *_usage_values(u)] for u in report.by_profile]


def purchases_table(report: PurchasesReport) -> Table:
    header = ["created_at", "id", "method", "status", "amount", "amount_received", "succeeded_at", "refunded_at"]
    rows: list[list[object]] = [
        [
            p.created_at.isoformat(),
            p.public_id,
            p.method,
            p.status,
            p.amount,
            "" if p.amount_received is None else p.amount_received,
            p.succeeded_at.isoformat() if p.succeeded_at else "",
            p.refunded_at.isoformat() if p.refunded_at else "",
        ]
        for p in report.purchases
    ]
    return header, rows


def allocations_table(report: AllocationsReport) -> Table:
    header = ["profile", "profile_id", "channels", "us_minute_bundles", "allocated", "taken_back", "net", "calls_cost"]
    rows: list[list[object]] = [
        [
            a.profile.name,
            a.profile.public_id,
            a.profile.channels,
            a.profile.us_minute_bundles,
            a.allocated,
            a.taken_back,
            a.net,
            a.charges,
        ]
        for a in report.profiles
    ]
    return header, rows


def _cell(value: object) -> object:
    # Amounts as the ledger keeps them (4 places), minutes to one: no float ever.
    return format(value, "f") if isinstance(value, Decimal) else value


def csv_response(table: Table, *, filename: str) -> HttpResponse:
    header, rows = table
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def filename(report: str, month_key: str, extra: Sequence[str] = ()) -> str:
    return "-".join(["report", report, *extra, month_key]) + ".csv"
