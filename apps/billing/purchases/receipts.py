"""The PDF receipt of a completed purchase (reportlab, drawn on one A4 page): the seller from
settings (SELLER_NAME, SELLER_ADDRESS, SELLER_TAX_NUMBER, SELLER_EMAIL), the buyer's company
details (its verified legal name and address, its VAT/tax number), and the amounts to 2 places."""

from __future__ import annotations

import io

from django.conf import settings
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen import canvas

from apps.billing.models import CreditPurchase
from apps.billing.money import format_money
from apps.companies.selectors import company_billing_details
from apps.core.exceptions import ApplicationError

_FONT, _BOLD = "Helvetica", "Helvetica-Bold"


def receipt_number(purchase: CreditPurchase) -> str:
    return purchase.wire_reference or f"SM-{str(purchase.public_id)[:8].upper()}"


def _paid_with(purchase: CreditPurchase) -> str:
    if purchase.method == CreditPurchase.Method.CARD and purchase.card_last4:
        brand = purchase.card_brand.title() if purchase.card_brand else "Card"
        return f"{brand} ending {purchase.card_last4}"
    if purchase.method == CreditPurchase.Method.BANK_WIRE:
        return f"Bank wire, reference {purchase.wire_reference}"
    return purchase.get_method_display()


def _seller_lines() -> list[str]:
    lines = [*settings.SELLER_ADDRESS]
    if settings.SELLER_TAX_NUMBER:
        lines.append(f"VAT / tax number: {settings.SELLER_TAX_NUMBER}")
    if settings.SELLER_EMAIL:
        lines.append(settings.SELLER_EMAIL)
    return lines


def _buyer_lines(purchase: CreditPurchase) -> list[str]:
    buyer = company_billing_details(company=purchase.company)
    lines = [buyer.legal_name]
    if buyer.name != buyer.legal_name:
        lines.append(f"Trading as {buyer.name}")
    lines += [*buyer.address_lines, buyer.country]
    if buyer.registration_number:
        lines.append(f"Registration number: {buyer.registration_number}")
    if buyer.tax_number:
        lines.append(f"VAT / tax number: {buyer.tax_number}")
    return lines


def receipt_pdf(purchase: CreditPurchase) -> bytes:
    if not purchase.has_receipt or purchase.amount_received is None or purchase.succeeded_at is None:
        raise ApplicationError("A receipt exists only for a completed purchase.", code="no_receipt")
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    number = receipt_number(purchase)
    seller = settings.SELLER_NAME
    pdf.setTitle(f"Receipt {number}")
    pdf.setAuthor(seller)
    left, y = 20 * mm, A4[1] - 25 * mm
    column = (A4[0] - 2 * left) / 2

    pdf.setFont(_BOLD, 18)
    pdf.drawString(left, y, f"Receipt {number}")
    y -= 12 * mm
    # The seller on the left, the buyer on the right, each wrapped to its column.
    top, bottoms = y, []
    for x, heading, lines in (
        (left, "From", [seller, *_seller_lines()]),
        (left + column, "Billed to", _buyer_lines(purchase)),
    ):
        y = top
        pdf.setFont(_BOLD, 10)
        pdf.drawString(x, y, heading)
        y -= 5.5 * mm
        for i, line in enumerate(lines):
            font = _BOLD if i == 0 else _FONT  # the name first, in bold
            pdf.setFont(font, 10)
            for part in simpleSplit(line, font, 10, column - 5 * mm):
                pdf.drawString(x, y, part)
                y -= 5 * mm
        bottoms.append(y)
    y = min(bottoms) - 8 * mm

    rows = [
        ("Date paid", f"{purchase.succeeded_at:%d %B %Y, %H:%M} UTC"),
        ("Customer id", str(purchase.company.public_id)),
        ("Purchase id", str(purchase.public_id)),
        ("Paid with", _paid_with(purchase)),
        ("Description", f"Prepaid credit for {settings.PRODUCT_NAME} SIP trunking"),
        ("Amount paid", format_money(purchase.amount_received, purchase.currency)),
    ]
    if purchase.status == CreditPurchase.Status.REFUNDED and purchase.refunded_at is not None:
        rows.append(("Refunded", f"{purchase.refunded_at:%d %B %Y} (the credit was taken back)"))
    for label, value in rows:
        pdf.setFont(_BOLD, 11)
        pdf.drawString(left, y, label)
        pdf.setFont(_FONT, 11)
        for part in simpleSplit(value, _FONT, 11, A4[0] - 2 * left - 40 * mm):
            pdf.drawString(left + 40 * mm, y, part)
            y -= 6 * mm
        y -= 2 * mm
    y -= 6 * mm
    pdf.setFont(_BOLD, 14)
    pdf.drawString(left, y, f"Total: {format_money(purchase.amount_received, purchase.currency)}")
    pdf.setFont(_FONT, 9)
    pdf.drawString(left, 20 * mm, "Credit is added to the company balance and spent on calls, channels and numbers.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
