"""Rendering a notification from its template: one file per notification under ``templates/``,
each giving a subject, a plain-text part and an HTML part (see ``templates/_base.j2``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from shared.email_address import display_address

TEMPLATE_DIR = Path(__file__).parent / "templates"
_TEXT_MARK = "%%part:text%%"
_HTML_MARK = "%%part:html%%"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def nl2br(value: object) -> Markup:
    """Escape ``value`` and keep its line breaks in HTML."""
    return Markup("<br>\n").join(escape(line) for line in str(value).splitlines())


def idn_note(address: object) -> str:
    """What follows an address shown to a consultant: its ``xn--`` form when its domain is
    internationalized (and whether it mixes scripts), so a look-alike domain stands out."""
    text = str(address)
    return display_address(text)[len(text) :]


@cache
def environment(html: bool) -> Environment:
    """One per process and kind, so each template compiles once (building one per mail made the
    notifier four times slower). The HTML part is rendered with autoescaping; subject and text
    without."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=html,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["nl2br"] = nl2br
    env.filters["idn_note"] = idn_note
    return env


def template_names() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.j2") if not p.name.startswith("_"))


def render(kind: str, context: dict[str, Any]) -> Rendered:
    """Render ``templates/<kind>.j2``; a missing variable is an error, not an empty string."""
    name = f"{kind}.j2"
    plain = environment(html=False).get_template(name).render(**context)
    marked_up = environment(html=True).get_template(name).render(**context)
    head, _, rest = plain.partition(_TEXT_MARK)
    text = rest.partition(_HTML_MARK)[0]
    html = marked_up.partition(_HTML_MARK)[2]
    # A subject is one header line: fold whitespace (and any newline) into single spaces.
    subject = re.sub(r"\s+", " ", head).strip()[:400]
    return Rendered(subject=subject, text=_tidy_text(text), html=html.strip() + "\n")


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"
