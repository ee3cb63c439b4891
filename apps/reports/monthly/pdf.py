"""A report's Document (tables.py) as a PDF, drawn with reportlab's platypus: the product's and
the company's name, the report's title and month on every page, then each table with its
total row, the header row repeated on every page a table runs onto. Amounts to 2 decimal
places as people are shown them (rates to 4), minutes as the report gives them."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from apps.core.money import format_money
from apps.reports.monthly.tables import Document, Section

PAGE = landscape(A4)
MARGIN = 15 * mm
MAX_TEXT = 60  # characters of a text cell (a long name would push the table off the page)


def _heading(name: str, currency: str) -> str:
    """ "amount_received" → "Amount received"; an amount's column names its currency."""
    text = name.replace("_", " ").capitalize()
    return text.replace(f"amount {currency.lower()}", f"amount ({currency})")


def cell(header: str, value: object) -> str:
    if isinstance(value, Decimal):
        if "rate" in header:
            return format_money(value, places=4)
        if "minutes" in header:
            return f"{value:,}"
        return format_money(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _table(section: Section, currency: str) -> Table:
    header = [_heading(name, currency) for name in section.header]
    body = [[cell(name, value) for name, value in zip(section.header, row, strict=True)] for row in section.rows]
    if section.totals is not None:
        body.append([cell(name, value) for name, value in zip(section.header, section.totals, strict=True)])
    table = Table([header, *body], repeatRows=1, hAlign="LEFT")
    numeric = [
        i
        for i in range(1, len(section.header))
        if any(
            isinstance(row[i], int | Decimal) for row in [*section.rows, *([section.totals] if section.totals else [])]
        )
    ]
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf2")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.HexColor("#8a94a6")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f7f9")]),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    style += [("ALIGN", (i, 0), (i, -1), "RIGHT") for i in numeric]
    if section.totals is not None:
        style += [
            ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8),
            ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
        ]
    table.setStyle(TableStyle(style))
    return table


def report_pdf(document: Document, *, company_name: str) -> bytes:
    buffer = io.BytesIO()
    product = settings.PRODUCT_NAME
    heading = f"{document.title} · {document.month.label}" + (f" · {document.subtitle}" if document.subtitle else "")

    def on_page(canvas: Any, doc: Any) -> None:
        # Who and what on every page, so a printed page is never anonymous.
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(MARGIN, PAGE[1] - 9 * mm, f"{product} · {company_name} · {heading}")
        canvas.drawRightString(PAGE[0] - MARGIN, 8 * mm, f"Page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buffer,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"{document.title} · {document.month.label}",
        author=product,
        subject=company_name,
    )
    styles = getSampleStyleSheet()
    story: list[Any] = [
        Paragraph(f"{_escape(product)}: {_escape(document.title)}", styles["Title"]),
        Paragraph(
            f"{_escape(company_name)} · {document.month.label}"
            + (f" · {_escape(document.subtitle)}" if document.subtitle else "")
            + f" · amounts in {_escape(document.currency)}",
            styles["Normal"],
        ),
    ]
    for part in document.sections:
        story += [Spacer(1, 5 * mm), Paragraph(_escape(part.title), styles["Heading3"])]
        story.append(
            _table(part, document.currency) if part.rows else Paragraph("Nothing this month.", styles["Normal"])
        )
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


def _escape(text: str) -> str:
    # Paragraph reads a little markup: a company called "A & B <Ltd>" is text, not tags.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def pdf_response(document: Document, *, company_name: str) -> HttpResponse:
    response = HttpResponse(report_pdf(document, company_name=company_name), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{document.filename}"'
    return response
