"""Sending one message through the configured relay, with failures sorted into what a later
attempt may fix (transient) and what it will not (permanent, with the SMTP code)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from services.notifier.settings import Settings


class TransientSmtpError(Exception):
    """Try again later: relay down, timeout, 4xx, or our credentials rejected (fix, then retry)."""


@dataclass
class PermanentSmtpError(Exception):
    """The relay refused for good (5xx). ``recipient_refused``: the address itself was refused."""

    code: int
    reason: str
    recipient_refused: bool

    def __str__(self) -> str:
        return f"{self.code} {self.reason}"


async def send_message(message: EmailMessage, settings: Settings) -> str:
    """Hand ``message`` to the relay; returns the relay's answer to DATA."""
    try:
        _, answer = await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            validate_certs=settings.smtp_validate_certs,
            username=settings.smtp_username or None,
            password=settings.smtp_password.get_secret_value() or None,
            timeout=settings.smtp_timeout_seconds,
            local_hostname=settings.mail_domain,
        )
    except aiosmtplib.SMTPRecipientsRefused as error:
        refusal = error.recipients[0]
        if refusal.code >= 500:
            raise PermanentSmtpError(refusal.code, refusal.message, recipient_refused=True) from error
        raise TransientSmtpError(f"{refusal.code} {refusal.message}") from error
    except aiosmtplib.SMTPAuthenticationError as error:
        raise TransientSmtpError(f"relay refused our credentials: {error.code} {error.message}") from error
    except aiosmtplib.SMTPResponseException as error:
        if error.code >= 500:
            raise PermanentSmtpError(error.code, error.message, recipient_refused=False) from error
        raise TransientSmtpError(f"{error.code} {error.message}") from error
    except (TimeoutError, aiosmtplib.SMTPException, OSError, ssl.SSLError) as error:
        raise TransientSmtpError(f"{type(error).__name__}: {error}") from error
    return answer
