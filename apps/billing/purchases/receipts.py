"""The PDF receipt of a completed purchase (reportlab, drawn on one A4 page)."""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from apps.billing.models import CreditPurchase
from apps.billing.money import format_money
from apps.core.exceptions import ApplicationError

SELLER = "Skype Manager"


def receipt_number(purchase: CreditPurchase) -> str:
    return purchase.wire_reference or f"SM-{str(purchase.public_id)[:8].upper()}"


def _paid_with(purchase: CreditPurchase) -> str:
    if purchase.method == CreditPurchase.Method.CARD and purchase.card_last4:
        brand = purchase.card_brand.title() if purchase.card_brand else "Card"
        return f"{brand} ending {purchase.card_last4}"
    if purchase.method == CreditPurchase.Method.BANK_WIRE:
        return f"Bank wire, reference {purchase.wire_reference}"
    return purchase.get_method_display()


def receipt_pdf(purchase: CreditPurchase) -> bytes:
    if not purchase.has_receipt or purchase.amount_received is None or purchase.succeeded_at is None:
        raise ApplicationError("A receipt exists only for a completed purchase.", code="no_receipt")
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    number = receipt_number(purchase)
    pdf.setTitle(f"Receipt {number}")
    pdf.setAuthor(SELLER)
    left, y = 20 * mm, A4[1] - 25 * mm

    pdf.setFont("Helvetica-Bold", 18)
    pdf.drawString(left, y, f"{SELLER}: receipt")
    y -= 14 * mm
    rows = [
        ("Receipt", number),
        ("Date paid", f"{purchase.succeeded_at:%d %B %Y, %H:%M} UTC"),
        ("Customer", purchase.company.name),
        ("Customer id", str(purchase.company.public_id)),
        ("Purchase id", str(purchase.public_id)),
        ("Paid with", _paid_with(purchase)),
        ("Description", "Prepaid credit for Skype Manager SIP trunking"),
        ("Amount paid", format_money(purchase.amount_received, purchase.currency)),
    ]
    if purchase.status == CreditPurchase.Status.REFUNDED and purchase.refunded_at is not None:
        rows.append(("Refunded", f"{purchase.refunded_at:%d %B %Y} (the credit was taken back)"))
    for label, value in rows:
        pdf.setFont("Helvetica-Bold", 11)
        pdf.drawString(left, y, label)
        pdf.setFont("Helvetica", 11)
        pdf.drawString(left + 40 * mm, y, value[:90])
        y -= 8 * mm
    y -= 6 * mm
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(left, y, f"Total: {format_money(purchase.amount_received, purchase.currency)}")
    pdf.setFont("Helvetica", 9)
    pdf.drawString(left, 20 * mm, "Credit is added to the company balance and spent on calls, channels and numbers.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
