"""How urgent a customer says their mail is: the client's "high importance" flag, or the words
they use ("urgent", "ASAP", "dringend" …) in the subject or the start of their text. Mail never
states more than high urgency by itself; "critical" is for a person to decide."""

from __future__ import annotations

import re

from shared.vocabulary import Urgency

_URGENT_WORDS = re.compile(
    r"(?<![\w-])(?<!not )(?<!no )(?<!nicht )(?<!pas )"
    r"(urgent(ly)?|asap|a\.s\.a\.p\.|as soon as possible|emergency|immediately|right away"
    r"|dringend|eilt|notfall|sofort|urgente|urgencia|urgence|d'urgence|inmediatamente)(?![\w-])",
    re.IGNORECASE,
)
BODY_WINDOW = 600


def stated_urgency(
    *, importance: str | None, x_priority: str | None, priority: str | None, subject: str, text: str
) -> Urgency:
    """HIGH when the headers flag importance or the words say so; MEDIUM otherwise."""
    if (importance or "").strip().lower() == "high":
        return Urgency.HIGH
    if (x_priority or "").strip()[:1] in ("1", "2") or (priority or "").strip().lower() == "urgent":
        return Urgency.HIGH
    if _URGENT_WORDS.search(subject) or _URGENT_WORDS.search(text[:BODY_WINDOW]):
        return Urgency.HIGH
    return Urgency.MEDIUM
