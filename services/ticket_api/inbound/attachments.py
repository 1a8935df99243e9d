"""Attachments: which ones we keep (size and count limits), and where their bytes live.

Bytes are stored once, content-addressed by SHA-256 under a directory
(``<root>/ab/cd/<sha256>``), written to a temporary file and renamed into place, so a crash
never leaves a half file under a real name and the same file sent twice is stored once.
Filenames and content types from mail are untrusted: they are cleaned before they are
stored and again before they go into a download's headers.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.ticket_api.inbound.parsing import AttachmentPart

_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class AttachmentLimits:
    max_bytes: int
    max_count: int
    max_total_bytes: int


@dataclass(frozen=True)
class Decision:
    part: AttachmentPart
    filename: str
    content_type: str
    refused_reason: str | None

    @property
    def accepted(self) -> bool:
        return self.refused_reason is None


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """A filename fit for storage and a Content-Disposition header: no paths, no control
    characters, at most 200 characters, never empty."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return (name or fallback)[:200]


def safe_content_type(content_type: str) -> str:
    content_type = content_type.strip().lower()
    return content_type if _TYPE.match(content_type) else "application/octet-stream"


def is_pdf(decision: Decision) -> bool:
    return decision.accepted and (
        decision.content_type == "application/pdf"
        or (decision.filename.lower().endswith(".pdf") and decision.part.data[:5] == b"%PDF-")
    )


def select(parts: Sequence[AttachmentPart], limits: AttachmentLimits) -> list[Decision]:
    """Keep attachments in order until a limit is reached; say why each other one is refused."""
    decisions: list[Decision] = []
    kept = 0
    total = 0
    for part in parts:
        size = len(part.data)
        reason: str | None = None
        if size > limits.max_bytes:
            reason = f"larger than {_megabytes(limits.max_bytes)} (it is {_megabytes(size)})"
        elif kept >= limits.max_count:
            reason = f"more than {limits.max_count} attachments in one message"
        elif total + size > limits.max_total_bytes:
            reason = f"the attachments of one message may total {_megabytes(limits.max_total_bytes)}"
        if reason is None:
            kept += 1
            total += size
        decisions.append(
            Decision(
                part=part,
                filename=safe_filename(part.filename),
                content_type=safe_content_type(part.content_type),
                refused_reason=reason,
            )
        )
    return decisions


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


class BlobStore:
    """Content-addressed files under ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"{sha256!r} is not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its SHA-256. Blocking: call it in a thread."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_of(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            # No fsync: the raw message (in the database, committed) holds every attachment,
            # so a file lost to a crash can be extracted again; the rename keeps it whole.
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def read(self, sha256: str) -> bytes:
        return self.path_of(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()
