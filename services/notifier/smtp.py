"""Handing messages to the configured relay over connections kept open between messages, with
failures sorted into what a later attempt may fix (transient) and what it will not (permanent,
with the SMTP code)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass

import aiosmtplib

from services.notifier.compose import OutgoingMail
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


# A relay may drop an idle connection after a few minutes (RFC 5321 asks servers to wait at
# least five); ours are closed well before that.
IDLE_SECONDS = 30.0
MAX_IDLE_CONNECTIONS = 8


class Relay:
    """Connections to the relay, reused: one mail costs MAIL, RCPT and DATA, not a TCP (and TLS)
    handshake, greeting, EHLO, login and QUIT as well. At most ``MAX_IDLE_CONNECTIONS`` wait
    between messages; more are opened when more mails are sent at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def send(self, message: OutgoingMail) -> str:
        """Hand ``message`` to the relay; returns the relay's answer to DATA. A reused
        connection the relay has closed meanwhile is replaced once."""
        client, reused = await self._take()
        try:
            answer = await _send(client, message)
        except TransientSmtpError as error:
            _close(client)
            if not (
                reused and isinstance(error.__cause__, aiosmtplib.SMTPServerDisconnected | ConnectionError)
            ):
                raise
            client, _ = await self._take(fresh=True)
            try:
                answer = await _send(client, message)
            except Exception:
                _close(client)
                raise
        except Exception:
            _close(client)
            raise
        self._give_back(client)
        return answer

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.quit(), timeout=2)
            _close(client)

    async def _take(self, *, fresh: bool = False) -> tuple[aiosmtplib.SMTP, bool]:
        now = time.monotonic()
        while self._idle and not fresh:
            client, since = self._idle.pop()
            if client.is_connected and now - since < IDLE_SECONDS:
                return client, True
            _close(client)
        settings = self.settings
        client = aiosmtplib.SMTP(
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
        try:
            await client.connect()
        except Exception as error:
            _close(client)
            raise _classified(error) from error
        return client, False

    def _give_back(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected and len(self._idle) < MAX_IDLE_CONNECTIONS:
            self._idle.append((client, time.monotonic()))
        else:
            _close(client)


async def _send(client: aiosmtplib.SMTP, message: OutgoingMail) -> str:
    utf8 = message.needs_smtputf8
    try:
        _, answer = await client.sendmail(
            message.sender, list(message.recipients), message.data, mail_options=["SMTPUTF8"] if utf8 else []
        )
    except aiosmtplib.SMTPNotSupported as error:
        if not utf8:
            raise _classified(error) from error
        raise PermanentSmtpError(
            553,
            f"the relay does not offer SMTPUTF8, which sending to {', '.join(message.recipients)} needs "
            "(an address that is not ASCII); configure a relay that does",
            recipient_refused=False,
        ) from error
    except Exception as error:
        raise _classified(error) from error
    return answer


def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        client.close()


def _classified(error: Exception) -> Exception:
    """The relay's failure as :class:`PermanentSmtpError` or :class:`TransientSmtpError`
    (anything else, e.g. a message that cannot be encoded, as it is)."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refusal = error.recipients[0]
        if refusal.code >= 500:
            return PermanentSmtpError(refusal.code, refusal.message, recipient_refused=True)
        return TransientSmtpError(f"{refusal.code} {refusal.message}")
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return TransientSmtpError(f"relay refused our credentials: {error.code} {error.message}")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        if error.code >= 500:
            return PermanentSmtpError(error.code, error.message, recipient_refused=False)
        return TransientSmtpError(f"{error.code} {error.message}")
    if isinstance(error, TimeoutError | aiosmtplib.SMTPException | OSError | ssl.SSLError):
        return TransientSmtpError(f"{type(error).__name__}: {error}")
    return error
