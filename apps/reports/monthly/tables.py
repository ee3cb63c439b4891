"""Each report as one table (a header and rows of plain values): what its CSV holds, on the
page's download and the API's `?format=csv` alike; and each report as a Document (its title
and one or more titled tables with their totals), what its PDF draws (`pdf.py`, `?format=pdf`).
A new report gets both by writing its `<report>_table` and `<report>_document` here."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.http import HttpResponse

from apps.reports.monthly.bundle_usage import BundleReport
from apps.reports.monthly.channel_peaks import PeaksReport
from apps.reports.monthly.selectors import (
    AllocationsReport,
    Month,
    PurchasesReport,
    SummaryReport,
    Usage,
    UsageReport,
)

Table = tuple[list[str], list[list[object]]]

USAGE_GROUPS = ("profile", "destination", "day")
# Channel peaks and Bundle usage: a row per profile (what to do), or per profile and day.
PLAN_GROUPS = ("profile", "day")
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


def peaks_table(report: PeaksReport, *, by: str) -> Table:
    """Per profile its peak and the recommendation, or (by day) each day's peak against the
    channels and the calls refused at the limit."""
    if by == "day":
        header = ["profile", "profile_id", "day", "peak", "channels", "refused_at_channel_limit", "at_cap"]
        rows: list[list[object]] = [
            [p.profile.name, p.profile.public_id, d.day.isoformat(), d.peak, d.channels, d.refused_at_limit, d.at_cap]
            for p in report.profiles
            for d in p.days
        ]
        return header, rows
    header = [
        "profile",
        "profile_id",
        "channels",
        "peak",
        "days_at_cap",
        "days",
        "refused_at_channel_limit",
        "action",
        "change",
        f"monthly_change_{report.currency.lower()}",
        "recommendation",
    ]
    rows = []
    for p in report.profiles:
        advice = p.recommendation
        assert advice is not None  # every line of a built report has one
        rows.append(
            [
                p.profile.name,
                p.profile.public_id,
                p.profile.channels,
                p.peak,
                p.at_cap_days,
                p.counted,
                p.refused_at_limit,
                advice.action,
                advice.change,
                "" if advice.monthly_change is None else advice.monthly_change,
                advice.text,
            ]
        )
    return header, rows


def bundles_table(report: BundleReport, *, by: str) -> Table:
    """Per profile what last month would have cost with 0, 1, … bundles, or (by day) each
    day's minutes left and used."""
    if by == "day":
        header = ["profile", "profile_id", "day", "minutes_left", "landline_minutes", "mobile_minutes"]
        rows: list[list[object]] = [
            [
                p.profile.name,
                p.profile.public_id,
                d.day.isoformat(),
                "" if d.minutes_left is None else d.minutes_left,
                d.landline,
                d.mobile,
            ]
            for p in report.profiles
            for d in p.days
        ]
        return header, rows
    currency = report.currency.lower()
    header = [
        "profile",
        "profile_id",
        "bundles",
        f"bundle_cost_{currency}",
        "minutes_over",
        f"over_cost_{currency}",
        f"total_{currency}",
        "cheapest",
        "current",
        "needs_more_channels",
    ]
    rows = [
        [
            p.profile.name,
            p.profile.public_id,
            w.bundles,
            w.bundle_cost,
            w.minutes_over.quantize(Decimal("0.1")),
            w.over_cost,
            w.total,
            w.cheapest,
            w.current,
            w.needs_channels,
        ]
        for p in report.profiles
        for w in p.what_if
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


def filename(report: str, month_key: str, extra: Sequence[str] = (), *, ext: str = "csv") -> str:
    return "-".join(["report", report, *extra, month_key]) + "." + ext


# --- Documents: what a report's PDF holds ---------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One titled table of a document; `totals` is its last row, drawn in bold (None: none)."""

    title: str
    header: list[str]
    rows: list[list[object]]
    totals: list[object] | None = None


@dataclass(frozen=True)
class Document:
    report: str  # its key, e.g. "usage": the file's name
    title: str  # as the page's heading says it
    month: Month
    currency: str
    sections: list[Section]
    subtitle: str = ""  # e.g. the profile the report is limited to
    name_parts: list[str] = field(default_factory=list)  # more of the file's name (e.g. the profile id)

    @property
    def filename(self) -> str:
        return filename(self.report, self.month.key, self.name_parts, ext="pdf")


def section(title: str, table: Table, *, label: str = "Total", given: Mapping[str, object] | None = None) -> Section:
    """A table with a total row: every column whose values are all numbers is added up (empty
    cells count as none), unless `given` has its total (minutes: the sum of the seconds, not
    of rounded minutes); the first column says `label`."""
    header, rows = table
    if not rows:
        return Section(title, header, rows, None)
    totals: list[object] = [label]
    for index, name in enumerate(header[1:], start=1):
        values = [row[index] for row in rows if row[index] != ""]
        numbers = [v for v in values if isinstance(v, int | Decimal) and not isinstance(v, bool)]
        if given and name in given:
            totals.append(given[name])
        elif not numbers or len(numbers) != len(values):
            totals.append("")
        elif any(isinstance(v, Decimal) for v in numbers):
            totals.append(sum((Decimal(v) for v in numbers), Decimal(0)))
        else:
            totals.append(sum(int(v) for v in numbers))
    return Section(title, header, rows, totals)


def summary_document(report: SummaryReport) -> Document:
    lines = Section(
        "Where the credit went",
        ["item", "amount"],
        [[label, amount] for _key, label, amount in report.lines()],
        ["Spent (calls, channels, bundles, numbers)", report.spent],
    )
    days = section(
        "Spend per day",
        (
            ["day", "calls", "channels", "bundles", "numbers", "total"],
            [[d.day.isoformat(), d.calls, d.channels, d.bundles, d.numbers, d.total] for d in report.days],
        ),
    )
    return Document("summary", "Where the credit went", report.month, report.currency, [lines, days])


def _without(table: Table, names: Sequence[str]) -> Table:
    """The table less some columns (ids and codes the CSV carries for machines; people read
    the names beside them)."""
    header, rows = table
    keep = [i for i, name in enumerate(header) if name not in names]
    return [header[i] for i in keep], [[row[i] for i in keep] for row in rows]


def usage_document(report: UsageReport, *, profile_name: str = "", profile_id: str = "") -> Document:
    minutes = {"minutes": report.total.minutes}
    sections = [
        section("Per profile", _without(usage_table(report, by="profile"), ["profile_id"]), given=minutes),
        section(
            "Per destination",
            _without(usage_table(report, by="destination"), ["direction", "country", "destination_class"]),
            given=minutes,
        ),
        section("Per day", usage_table(report, by="day"), given=minutes),
    ]
    return Document(
        "usage",
        "Usage",
        report.month,
        report.currency,
        sections,
        subtitle=profile_name,
        name_parts=[profile_id] if profile_id else [],
    )


def purchases_document(report: PurchasesReport) -> Document:
    header, rows = purchases_table(report)
    # Dates to the minute: a PDF is read by people.
    shown = [[str(row[0])[:16].replace("T", " "), *row[1:6], str(row[6])[:10], str(row[7])[:10]] for row in rows]
    sections = [section("Purchases", (header, shown))]
    sections.append(
        Section("Totals", ["item", "amount"], [["Credited", report.credited], ["Refunded", report.refunded]])
    )
    return Document("purchases", "Purchases", report.month, report.currency, sections)


def allocations_document(report: AllocationsReport, *, profile_name: str = "", profile_id: str = "") -> Document:
    return Document(
        "allocations",
        "Allocations",
        report.month,
        report.currency,
        [section("Per profile", _without(allocations_table(report), ["profile_id"]))],
        subtitle=profile_name,
        name_parts=[profile_id] if profile_id else [],
    )


def peaks_document(report: PeaksReport, *, profile_name: str = "", profile_id: str = "") -> Document:
    # A peak, a count of days or of channels a day does not add up across profiles or days.
    blank = {"peak": "", "days_at_cap": "", "days": "", "channels": ""}
    per_profile = _without(peaks_table(report, by="profile"), ["profile_id", "recommendation"])
    per_day = _without(peaks_table(report, by="day"), ["profile_id"])
    return Document(
        "peaks",
        "Channel peaks",
        report.month,
        report.currency,
        [
            section("Per profile: what to do", per_profile, given=blank),
            section("Per profile and day", per_day, given=blank),
        ],
        subtitle=profile_name,
        name_parts=[profile_id] if profile_id else [],
    )


def bundles_document(report: BundleReport, *, profile_name: str = "", profile_id: str = "") -> Document:
    # Costs of different bundle counts are alternatives: no total adds them up.
    currency = report.currency.lower()
    names = ("bundles", f"bundle_cost_{currency}", "minutes_over", f"over_cost_{currency}", f"total_{currency}")
    alternatives: dict[str, object] = dict.fromkeys(names, "")
    forecast = Section(
        "The minutes this period",
        ["profile", "bundles", "minutes_included", "minutes_used", "minutes_left", "forecast"],
        [
            [
                p.profile.name,
                p.profile.us_minute_bundles,
                p.minutes_included,
                p.minutes_used,
                p.minutes_left,
                p.forecast,
            ]
            for p in report.profiles
        ],
    )
    return Document(
        "bundles",
        "Bundle usage",
        report.month,
        report.currency,
        [
            forecast,
            section(
                f"Last month ({report.month.previous.label}) with 0, 1, … bundles",
                _without(bundles_table(report, by="profile"), ["profile_id", "current"]),
                given=alternatives,
            ),
            section(
                "Per profile and day",
                _without(bundles_table(report, by="day"), ["profile_id"]),
                given={"minutes_left": ""},
            ),
        ],
        subtitle=profile_name,
        name_parts=[profile_id] if profile_id else [],
    )
