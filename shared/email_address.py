"""Email addresses as the helpdesk stores them: syntax-checked, lower-cased, no DNS lookups.

Reserved test domains (``acme.test``) are accepted: mail for them reaches our own sinks in
development and tests, and rejecting a customer's address is worse than storing it.
"""

from __future__ import annotations

import functools
from typing import Annotated

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
