"""The one table and the JSON file a bench run leaves behind."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PASS, MISS, INFO, FAILED = "pass", "MISS", "", "ERROR"


@dataclass
class Row:
    """One line of the table: a measured number, how it was measured, and its target."""

    section: str
    measure: str
    result: str
    settings: str = ""
    target: str = ""
    verdict: str = INFO
    data: dict[str, Any] = field(default_factory=dict)


def verdict(ok: bool | None) -> str:
    """pass / MISS for a number with a target, blank for one without (None)."""
    return INFO if ok is None else PASS if ok else MISS


def render_table(rows: list[Row]) -> str:
    """A plain-text table (section, measure, result, target, verdict, settings); a section's
    name is printed on its first row only."""
    headers = ("section", "measure", "result", "target", "", "settings")
    cells: list[tuple[str, ...]] = []
    previous = None
    for row in rows:
        section = row.section if row.section != previous else ""
        previous = row.section
        cells.append((section, row.measure, row.result, row.target, row.verdict, row.settings))
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths).rstrip()
    return "\n".join([line(headers), rule, *(line(c) for c in cells)])


def write_json(directory: Path, report: dict[str, Any], rows: list[Row]) -> Path:
    """Write ``<directory>/<UTC timestamp>.json`` and ``latest.json``; return the first."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {**report, "rows": [asdict(row) for row in rows]}
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = directory / f"{stamp}.json"
    text = json.dumps(document, indent=2, default=str)
    path.write_text(text)
    latest = directory / "latest.json"
    tmp = directory / ".latest.json.tmp"
    tmp.write_text(text)
    os.replace(tmp, latest)
    return path


def fmt_ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def fmt_rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.1f} {unit}"
