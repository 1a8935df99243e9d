"""Documents attached to mail: the SLA to sign (a file from settings, else generated here)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from fpdf import FPDF

SLA_FILENAME = "service-level-agreement.pdf"

_SECTIONS = (
    (
        "1. Scope",
        "{company} provides technical support to the Customer by email, telephone, the web portal "
        "and on-site appointments, as described in this agreement.",
    ),
    (
        "2. Office hours and response times",
        "Support is available {office_hours}. Every request is acknowledged at once and answered "
        "within four business hours; requests received outside office hours are handled on the next "
        "business day. Priorities follow the urgency and impact of each request.",
    ),
    (
        "3. Appointments",
        "Appointments are booked from the consultant's availability. Cancellations or reschedules "
        "less than 24 hours before an appointment may be charged at the agreed rate.",
    ),
    (
        "4. Charges",
        "Time is billed according to the Customer's support tier (hourly, monthly agreement or "
        "prepaid block), in the increments stated in the Customer's plan.",
    ),
)


@lru_cache(maxsize=8)
def sla_document(company: str, office_hours: str, path: Path | None = None) -> bytes:
    """The SLA as PDF bytes: ``path`` when given, else a short agreement generated with fpdf2."""
    if path is not None:
        return path.read_bytes()
    pdf = FPDF(format="Letter")
    pdf.set_title(f"{company} - Service Level Agreement")
    pdf.set_author(company)
    pdf.set_creation_date(datetime(2025, 1, 1, tzinfo=UTC))  # stable bytes on every run
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(
        0, 10, _latin1(f"{company}\nService Level Agreement"), align="C", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.ln(6)
    for title, text in _SECTIONS:
        pdf.set_font("Helvetica", "B", 12)
        pdf.multi_cell(0, 7, _latin1(title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(
            0,
            6,
            _latin1(text.format(company=company, office_hours=office_hours)),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.ln(3)
    pdf.ln(10)
    pdf.set_font("Helvetica", "", 11)
    for line in (
        "Customer organization: ______________________________",
        "Name and title: ______________________________",
        "Signature and date: ______________________________",
    ):
        pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _latin1(text: str) -> str:
    # The core PDF fonts are Latin-1: replace what they cannot draw rather than fail.
    return text.replace("\u2013", "-").replace("\u2014", "-").encode("latin-1", "replace").decode("latin-1")
