"""The few HTML pages customers reach from links in our mail (no sign-in: the signed link is
the key). Whatever a page shows is escaped by its caller; every page is kept out of search
indexes, caches and frames, and sends no Referer when a link on it is followed (its own
address carries the key)."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import Path
from fastapi.responses import HTMLResponse

# A signed link's token, as the last part of a page's path.
LinkToken = Annotated[str, Path(min_length=10, max_length=4096)]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}
body{{line-height:1.45}}
label{{display:block;margin:.5rem 0}}textarea{{width:100%;min-height:6rem}}
.happy{{color:#1a7f37}}.unhappy{{color:#cf222e}}.muted{{color:#52606d;font-size:.9rem}}
.entry{{border-top:1px solid #d9e2ec;padding:.75rem 0}}.entry p{{white-space:pre-wrap;margin:.25rem 0}}
.customer{{background:#f5f7fa;padding:.75rem}}</style></head>
<body>{body}</body></html>"""

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """An HTML page: ``title`` is escaped here, ``body`` must be escaped HTML already."""
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status_code=status, headers=HEADERS)
