"""Plain-text parts keep one field per line, whichever optional fields a mail has."""

from __future__ import annotations

from typing import Any

import pytest

from services.notifier.recording import base_context
from services.notifier.rendering import environment, render
from services.notifier.settings import Settings


def assignment_context(**fields: Any) -> dict[str, Any]:
    return {
        **base_context(Settings(env="test")),
        "recipient_name": "Bob Baker",
        "ticket": {"number": "TKT-7", "subject": "VPN drops", "url": "http://helpdesk.test/TKT-7"},
        "consultant": {"name": "Bob Baker"},
        "customer": {"name": "Pat Lee", "email": "pat@globex.test"},
        "organization": None,
        "priority": None,
        "first_response_due_at": None,
        "call_customer": False,
        **fields,
    }


def test_a_look_alike_domain_stands_out_in_the_consultants_mail() -> None:
    customer = {"name": "Pat Lee", "email": "pat@glоbex.test"}  # a Cyrillic "о"
    rendered = render("assignment_consultant", assignment_context(customer=customer))
    shown = "Customer:  Pat Lee <pat@glоbex.test> (xn--glbex-kye.test, mixed scripts)"
    assert shown in rendered.text.splitlines()
    assert "&lt;pat@glоbex.test&gt; (xn--glbex-kye.test, mixed scripts)" in rendered.html


@pytest.mark.parametrize(
    ("fields", "lines"),
    [
        (
            {
                "organization": "Globex",
                "priority": "P1",
                "first_response_due_at": "Tuesday, March 31, 2026 at 11:00 AM CDT",
                "call_customer": True,
            },
            [
                "Customer:  Pat Lee <pat@globex.test>, Globex",
                "Priority:  P1",
                "First response due: Tuesday, March 31, 2026 at 11:00 AM CDT",
                "",
                "TASK: call the customer (P1 ticket of a support-agreement customer).",
                "",
                "Open the ticket: http://helpdesk.test/TKT-7",
            ],
        ),
        (
            {"organization": "Globex", "priority": "P3"},
            [
                "Customer:  Pat Lee <pat@globex.test>, Globex",
                "Priority:  P3",
                "",
                "Open the ticket: http://helpdesk.test/TKT-7",
            ],
        ),
        ({}, ["Customer:  Pat Lee <pat@globex.test>", "", "Open the ticket: http://helpdesk.test/TKT-7"]),
    ],
)
def test_the_consultants_assignment_mail_has_one_field_per_line(
    fields: dict[str, Any], lines: list[str]
) -> None:
    text = render("assignment_consultant", assignment_context(**fields)).text.splitlines()
    start = text.index(lines[0])
    assert text[start : start + len(lines)] == lines


@pytest.mark.parametrize(
    ("after_hours", "sla_attached", "consultant"),
    [(False, False, False), (True, True, False), (False, True, True)],
)
def test_the_acknowledgment_keeps_its_paragraphs_apart(
    after_hours: bool, sla_attached: bool, consultant: bool
) -> None:
    context = {
        **base_context(Settings(env="test")),
        "recipient_name": "Jane Doe",
        "ticket": {"number": "TKT-1", "subject": "Printer offline", "url": "http://helpdesk.test/TKT-1"},
        "due_at": "Monday, April 6, 2026 at 1:00 PM CDT",
        "after_hours": after_hours,
        "next_business_day": True,
        "next_opening": "Monday, April 6, 2026 at 9:00 AM CDT",
        "closed_days": "",
        "response_target": "four business hours",
        "sla_attached": sla_attached,
        "consultant": {"name": "Alice Consultant"} if consultant else None,
        "booking_url": "http://helpdesk.test/book",
    }
    paragraphs = render("acknowledgment", context).text.split("\n\n")
    starts = [p.split(" ", 1)[0] for p in paragraphs]
    expected = ["Hello", "thank", "You" if after_hours else ("Alice" if consultant else "A")]
    expected += ["Alice"] if consultant else []
    expected += ["Our", "To"]
    expected += ["Before"] if sla_attached else []
    assert starts[: len(expected) + 1] == [*expected, "Kind"], paragraphs


def test_templates_compile_once_per_process() -> None:
    """A mail renders from compiled templates: one environment per kind, its cache kept."""
    assert environment(html=True) is environment(html=True)
    assert environment(html=False) is environment(html=False)
    assert environment(html=True) is not environment(html=False)
