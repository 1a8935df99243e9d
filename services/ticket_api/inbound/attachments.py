"""Attachments: which ones we keep (size and count limits, no programs), what they are by
their content (never by the declared type or the name), and where their bytes live.

Bytes are stored once, content-addressed by SHA-256 under a directory
(``<root>/ab/cd/<sha256>``), written to a temporary file and renamed into place, so a crash
never leaves a half file under a real name and the same file sent twice is stored once.
Filenames and content types from mail are untrusted: they are cleaned before they are
stored and again before they go into a download's headers.
"""

from __future__ import annotations

import hashlib
import io
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
    pdf: bool = False  # by its content: PDF magic bytes, and a PDF parser opens it

    @property
    def accepted(self) -> bool:
        return self.refused_reason is None


# Programs by their first bytes: what an operating system would run whatever the file is named.
_EXECUTABLE_MAGIC = (
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\xfe\xed\xfa\xce", "a macOS program"),
    (b"\xfe\xed\xfa\xcf", "a macOS program"),
    (b"\xce\xfa\xed\xfe", "a macOS program"),
    (b"\xcf\xfa\xed\xfe", "a macOS program"),
    (b"\xca\xfe\xba\xbe", "a macOS or Java program"),
)
# Names Windows runs on a double click, whatever is inside (the last extension counts:
# ``report.pdf.exe`` is an .exe).
_EXECUTABLE_EXTENSIONS = frozenset(
    [
        "exe",
        "scr",
        "com",
        "pif",
        "bat",
        "cmd",
        "msi",
        "msp",
        "cpl",
        "dll",
        "sys",
        "hta",
        "jar",
        "js",
        "jse",
        "vbs",
        "vbe",
        "wsf",
        "wsh",
        "ps1",
        "psm1",
        "lnk",
        "reg",
        "inf",
        "scf",
        "application",
        "appref-ms",
        "gadget",
        "msc",
    ]
)


def executable_kind(filename: str, data: bytes) -> str | None:
    """What kind of program a file is (by content, then by the name Windows would run it
    by), or None when it is not one."""
    for magic, kind in _EXECUTABLE_MAGIC:
        if data.startswith(magic):
            return kind
    extension = filename.lower().rpartition(".")[2] if "." in filename else ""
    if extension in _EXECUTABLE_EXTENSIONS:
        return f"a program (a .{extension} file)"
    return None


def is_pdf_content(data: bytes) -> bool:
    """A PDF by content: the ``%PDF-`` header within the first KiB (where readers look for
    it) and a PDF parser that opens it and finds a page."""
    if b"%PDF-" not in data[:1024]:
        return False
    try:
        from pypdf import PdfReader  # imported on first use: most mail has no PDF

        return len(PdfReader(io.BytesIO(data), strict=False).pages) > 0
    except Exception:  # any parser failure: not a PDF we can take for a document
        return False


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
    """An accepted attachment that is a PDF by its content (see :func:`is_pdf_content`)."""
    return decision.accepted and decision.pdf


def select(parts: Sequence[AttachmentPart], limits: AttachmentLimits) -> list[Decision]:
    """Keep attachments in order until a limit is reached; say why each other one is refused.
    Programs are refused whatever their size. Blocking (a PDF is opened): call it in a thread."""
    decisions: list[Decision] = []
    kept = 0
    total = 0
    for part in parts:
        size = len(part.data)
        reason: str | None = None
        program = executable_kind(safe_filename(part.filename), part.data)
        if program is not None:
            reason = f"it is {program}: we do not accept programs as attachments"
        elif size > limits.max_bytes:
            reason = f"larger than {_megabytes(limits.max_bytes)} (it is {_megabytes(size)})"
        elif kept >= limits.max_count:
            reason = f"more than {limits.max_count} attachments in one message"
        elif total + size > limits.max_total_bytes:
            reason = f"the attachments of one message may total {_megabytes(limits.max_total_bytes)}"
        if reason is None:
            kept += 1
            total += size
        pdf = reason is None and is_pdf_content(part.data)
        content_type = safe_content_type(part.content_type)
        if pdf:
            content_type = "application/pdf"
        elif content_type == "application/pdf":
            content_type = "application/octet-stream"  # declared a PDF, is not one
        decisions.append(
            Decision(
                part=part,
                filename=safe_filename(part.filename),
                content_type=content_type,
                refused_reason=reason,
                pdf=pdf,
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
