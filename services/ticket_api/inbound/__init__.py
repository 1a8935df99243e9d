"""Inbound email: every message that reaches us (SMTP listener or the API) becomes a ticket,
a message on a ticket, or a raw message kept and flagged for a human — never lost, never a
loop. ``parsing`` (bytes → ParsedEmail, guarded), ``loops`` (who sent it: a person or a
machine), ``reply_matching`` (which ticket it belongs to), ``quotes`` (what the person wrote,
without the quoted history), ``attachments`` (content-addressed storage), ``service`` (the
rules applying all of it), ``smtp_listener`` (the aiosmtpd front door)."""
