"""An invoice as a PDF (fpdf2, core fonts: no font files to ship; text stays extractable).

Rendered on request from the stored invoice, which never changes after issue except its
status, so the same invoice always renders the same document (the creation date is the issue
time, not the time of rendering).
"""

from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from services.billing.models import Invoice, InvoiceLine, InvoiceStatus
from services.billing.money import format_amount
from services.billing.settings import Settings

# Core PDF fonts cover Windows-1252 (€, –, accented Latin letters); anything else becomes "?".
ENCODING = "cp1252"


def _text(value: str) -> str:
    return value.encode(ENCODING, errors="replace").decode(ENCODING)


def _hours(minutes: int) -> str:
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}:{rest:02d}"


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` in the current font."""
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "\u2026") > width:
        text = text[:-1]
    return text.rstrip() + "\u2026"


def render_invoice(settings: Settings, invoice: Invoice, lines: list[InvoiceLine]) -> bytes:
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = ENCODING
    pdf.set_creation_date(invoice.issued_at)
    pdf.set_title(_text(f"Invoice {invoice.number}"))
    pdf.set_author(_text(settings.issuer_name))
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    width = pdf.epw

    def line(text: str, *, size: int = 10, style: str = "", height: float = 5.5, align: str = "L") -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(width, height, _text(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    line(settings.issuer_name, size=16, style="B", height=8)
    line(settings.issuer_address, size=9)
    pdf.ln(6)
    title = "CREDIT NOTE" if invoice.total < 0 else "INVOICE"
    line(f"{title} {invoice.number}", size=14, style="B", height=8)
    if invoice.status == InvoiceStatus.VOID:
        line(f"VOID - {invoice.void_reason or ''}", size=11, style="B")
    elif invoice.status == InvoiceStatus.PAID and invoice.paid_at is not None:
        line(f"PAID on {invoice.paid_at.date().isoformat()}", size=11, style="B")
    pdf.ln(2)
    line(f"Invoice date: {invoice.invoice_date.isoformat()}")
    line(f"Due date: {invoice.due_date.isoformat()}")
    line(f"Bill to: {invoice.organization_name}")
    if invoice.bill_to_email:
        line(f"Email: {invoice.bill_to_email}")
    if invoice.ticket_number:
        line(f"Ticket: {invoice.ticket_number}")
    if invoice.period_key:
        line(f"Period: {invoice.period_key}")
    pdf.ln(4)

    columns = [
        ("Date", 0.14),
        ("Description", 0.40),
        ("Ticket", 0.12),
        ("Time", 0.08),
        ("Rate/h", 0.12),
        ("Amount", 0.14),
    ]
    pdf.set_font("Helvetica", style="B", size=9)
    for name, share in columns:
        pdf.cell(
            width * share, 7, name, border="B", align="R" if name in ("Time", "Rate/h", "Amount") else "L"
        )
    pdf.ln(7)
    pdf.set_font("Helvetica", size=9)
    for item in lines:
        cells = [
            item.work_date.isoformat() if item.work_date else "",
            item.description,
            item.ticket_number or "",
            _hours(item.minutes),
            f"{item.rate_per_hour:,.2f}",
            f"{item.amount:,.2f}",
        ]
        for (name, share), value in zip(columns, cells, strict=True):
            text = _fit(pdf, _text(value), width * share - 2)
            pdf.cell(width * share, 6, text, align="R" if name in ("Time", "Rate/h", "Amount") else "L")
        pdf.ln(6)
    pdf.ln(3)

    def total(label: str, amount: str, style: str = "") -> None:
        pdf.set_font("Helvetica", style=style, size=10)
        pdf.cell(width * 0.80, 6, _text(label), align="R")
        pdf.cell(width * 0.20, 6, _text(amount), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    total("Subtotal", format_amount(invoice.subtotal, invoice.currency))
    percent = format((invoice.tax_rate * 100).normalize(), "f")
    total(f"Tax ({percent} %)", format_amount(invoice.tax, invoice.currency))
    total("Total", format_amount(invoice.total, invoice.currency), "B")
    pdf.ln(8)
    line("Payment instructions", style="B")
    line(invoice.payment_instructions)
    if invoice.total > 0:
        line(
            f"Please pay {format_amount(invoice.total, invoice.currency)} by {invoice.due_date.isoformat()}."
        )
    return bytes(pdf.output())
