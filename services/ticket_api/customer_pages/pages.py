"""The few HTML pages customers reach from links in our mail (no sign-in: the signed link is
the key), rendered from the Jinja templates in ``templates/`` with autoescape: whatever a page
shows is escaped by the template engine, never by hand. Every page is kept out of search
indexes, caches and frames, and sends no Referer when a link on it is followed (its own
address carries the key)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

# A signed link's token, as the last part of a page's path.
LinkToken = Annotated[str, PathParam(min_length=10, max_length=4096)]

TEMPLATE_DIR = Path(__file__).parent / "templates"

# Compiled once per process; autoescape on every template (they are all HTML).
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The page ``templates/<template>.html.j2`` with ``context`` (escaped as it is shown)."""
    html = _ENVIRONMENT.get_template(f"{template}.html.j2").render(**context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def message_page(title: str, message: str, status: int) -> HTMLResponse:
    """A page saying one sentence: why a link does not work, what to do instead."""
    return render("message", status, title=title, message=message)
