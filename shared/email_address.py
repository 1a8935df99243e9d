"""Email addresses as the helpdesk stores them: syntax-checked, lower-cased, no DNS lookups.

Reserved test domains (``acme.test``) are accepted: mail for them reaches our own sinks in
development and tests, and rejecting a customer's address is worse than storing it.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Annotated

import idna
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field


@functools.lru_cache(maxsize=8192)
def normalize_email(value: str) -> str:
    """The address as stored (validated, lower-cased). Remembered: the same addresses come back
    in every event a consumer parses, and validation is the costly part of reading an event."""
    try:
        result = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as error:
        raise ValueError(f"not a valid email address: {error}") from None
    return result.normalized.lower()


EmailAddress = Annotated[
    str, Field(max_length=320, examples=["jane@acme.test"]), AfterValidator(normalize_email)
]


def _a_label_domain(domain: str) -> str | None:
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None


def ascii_form(address: str) -> str | None:
    """The address as plain ASCII mail carries it, an internationalized domain in its
    ``xn--`` form; None when its local part is not ASCII (only SMTPUTF8 can carry it)."""
    local, _, domain = address.rpartition("@")
    a_domain = _a_label_domain(domain)
    if not local.isascii() or a_domain is None:
        return None
    return f"{local}@{a_domain}"


def _scripts(text: str) -> set[str]:
    return {unicodedata.name(ch, "?").split()[0] for ch in text if ch.isalpha()}


def display_address(address: str) -> str:
    """An address for people to read: an internationalized domain is shown with its ``xn--``
    form beside it (and said to mix scripts when a label does, e.g. a Cyrillic "а" among Latin
    letters), so a look-alike of a domain one knows stands out."""
    domain = address.rpartition("@")[2]
    a_domain = _a_label_domain(domain)
    if domain.isascii() or a_domain is None:
        return address
    mixed = any(len(_scripts(label)) > 1 for label in domain.split("."))
    return f"{address} ({a_domain}{', mixed scripts' if mixed else ''})"
