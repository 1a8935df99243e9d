"""Raw RFC 5322 bytes → :class:`ParsedEmail`, surviving whatever real mailers send.

The standard library's parser (``policy.default``) does the work, but it is never trusted
blindly: every header read is guarded (a broken header can raise on access), sizes are
capped before and during the walk (parts, depth, header length), charsets we cannot decode
fall back to UTF-8/Latin-1 with replacement, and :func:`parse_within` bounds the wall time.
Nothing here raises: a message we cannot understand comes back with ``understood=False``
and the reasons, so the caller stores it raw and flags it for a human.

We never re-serialize a parsed message (``as_string``/``as_bytes`` of the modern policy is
where the library's folding bugs live); the original bytes are what we keep.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import contextlib
import email
import email.policy
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import Any

__all__ = [
    "Address",
    "AttachmentPart",
    "DeliveryStatus",
    "Limits",
    "ParsedEmail",
    "clean_text",
    "html_to_text",
    "identity_doubts",
    "parse_email",
    "parse_within",
]


@dataclass(frozen=True)
class Limits:
    """Caps that keep one hostile message from costing more than its share."""

    max_message_bytes: int = 30 * 1024 * 1024
    max_header_block_bytes: int = 512 * 1024
    max_header_value_chars: int = 16 * 1024
    max_headers: int = 500
    max_parts: int = 300
    max_depth: int = 16
    max_text_chars: int = 1_000_000
    max_html_chars: int = 2_000_000
    time_limit_seconds: float = 10.0


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Address:
    email: str
    name: str | None = None


@dataclass(frozen=True)
class AttachmentPart:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True)
class DeliveryStatus:
    """One recipient block of a DSN (RFC 3464)."""

    recipient: str
    action: str
    status: str
    diagnostic: str = ""

    @property
    def permanent(self) -> bool:
        return self.action == "failed" or self.status.startswith("5")


@dataclass(frozen=True)
class ParsedEmail:
    understood: bool
    problems: tuple[str, ...] = ()
    message_id: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    from_address: Address | None = None
    reply_to: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    subject: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    content_types: tuple[str, ...] = ()
    report_types: tuple[str, ...] = ()
    calendar_methods: tuple[str, ...] = ()  # iTIP METHOD of text/calendar parts (REQUEST, REPLY …)
    text: str = ""
    html_only: bool = False
    attachments: tuple[AttachmentPart, ...] = ()
    delivery_status: tuple[DeliveryStatus, ...] = ()
    embedded_message_ids: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()
    has_header_block: bool = True
    # Why From cannot be trusted to name who wrote (see :func:`identity_doubts`); empty: no doubt.
    identity_doubts: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]


# --- text helpers -------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str, limit: int | None = None) -> str:
    """Text any database stores: no NULs or control characters, no lone surrogates, capped."""
    value = _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    value = value.encode("utf-8", "replace").decode("utf-8", "replace")
    return value[:limit] if limit is not None else value


def _one_line(value: str, limit: int) -> str:
    return " ".join(clean_text(value).split())[:limit]


def _codec(charset: str | None) -> str:
    if not charset:
        return "utf-8"
    charset = charset.strip().strip('"').lower()
    aliases = {"x-mac-cyrillic": "mac_cyrillic", "unicode-1-1-utf-7": "utf-7", "ks_c_5601-1987": "cp949"}
    charset = aliases.get(charset, charset)
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError):
        return "utf-8"


def _decode_bytes(data: bytes, charset: str | None) -> str:
    codec = _codec(charset)
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace") if codec != "cp1252" else data.decode("latin-1")


# --- HTML → text ---------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "pre"}
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template"})


class _TextOfHtml(HTMLParser):
    """Visible text with line structure; <blockquote> becomes "> " quoting so the same quote
    stripper serves HTML and plain mail."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.quote_depth = 0
        self.skip_depth = 0

    def _break(self) -> None:
        text = " ".join("".join(self.current).split())
        self.current = []
        self.lines.append("> " * self.quote_depth + text if text else "")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
        elif tag == "blockquote":
            self._break()
            self.quote_depth += 1
        elif tag in _BLOCK_TAGS:
            self._break()
            if tag == "hr":
                self.lines.append("> " * self.quote_depth + "________________________________")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in _SKIP_TAGS:
            self.skip_depth = max(self.skip_depth - 1, 0)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(self.skip_depth - 1, 0)
        elif tag == "blockquote":
            self._break()
            self.quote_depth = max(self.quote_depth - 1, 0)
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.current.append(data)

    def text(self) -> str:
        self._break()
        out: list[str] = []
        for line in self.lines:
            if line or (out and out[-1]):  # at most one blank line in a row
                out.append(line.rstrip())
        return "\n".join(out).strip()


def html_to_text(html: str, limit: int = DEFAULT_LIMITS.max_html_chars) -> str:
    parser = _TextOfHtml()
    try:
        parser.feed(html[:limit])
        parser.close()
    except Exception:
        return clean_text(re.sub(r"<[^>]{0,2000}>", " ", html[:limit]))
    return parser.text()


# --- guarded header reads ------------------------------------------------------------------


def _raw_value(message: Message, name: str) -> str | None:
    wanted = name.lower()
    try:
        for key, value in message.raw_items():
            if key.lower() == wanted:
                return str(value)
    except Exception:
        return None
    return None


def _decoded(raw: str) -> str:
    try:
        return str(make_header(decode_header(raw)))
    except Exception:
        return raw


def _header_text(message: Message, name: str, limits: Limits) -> str | None:
    """A header's decoded text; never raises (broken headers fall back to their raw text)."""
    try:
        value = message.get(name)
        if value is None:
            return None
        text = str(value)
    except Exception:
        raw = _raw_value(message, name)
        if raw is None:
            return None
        text = _decoded(raw)
    return clean_text(text, limits.max_header_value_chars)


_ANGLE_ID = re.compile(r"<([^<>\s]{1,250})>")


def _message_ids(value: str | None, limit: int = 50) -> tuple[str, ...]:
    if not value:
        return ()
    found = [f"<{match}>" for match in _ANGLE_ID.findall(value)]
    if not found:
        found = [f"<{token}>" for token in value.split() if "@" in token and len(token) <= 250][:1]
    seen: dict[str, None] = {}
    for message_id in found:
        seen.setdefault(message_id, None)
    return tuple(seen)[:limit]


def _address_headers(message: Message, name: str) -> list[Any]:
    """Every ``name`` header, parsed. Raw UTF-8 (RFC 6532, sent with SMTPUTF8) is read as
    UTF-8: the parser would otherwise see undecodable bytes where a name or address is."""
    wanted = name.lower()
    headers = []
    for key, value in message.raw_items():
        if key.lower() != wanted:
            continue
        if isinstance(value, str) and not value.isascii():
            with contextlib.suppress(UnicodeError):
                value = value.encode("ascii", "surrogateescape").decode("utf-8")
        headers.append(email.policy.default.header_fetch_parse(key, value))
    return headers


def _addresses(message: Message, name: str, limits: Limits) -> tuple[Address, ...]:
    result: list[Address] = []
    try:
        for header in _address_headers(message, name)[:1]:
            for address in getattr(header, "addresses", ()):
                addr = str(address.addr_spec or "")
                if "@" in addr:
                    result.append(Address(_one_line(addr, 320), _one_line(address.display_name, 200) or None))
    except Exception:
        result = []
    if not result:
        raw = _raw_value(message, name)
        if raw:
            try:
                pairs = getaddresses([_decoded(raw)[: limits.max_header_value_chars]])
            except Exception:
                pairs = []
            for display, addr in pairs:
                if "@" in addr:
                    result.append(Address(_one_line(addr, 320), _one_line(display, 200) or None))
    return tuple(result[:100])


# --- who wrote: what makes From untrustworthy ----------------------------------------------

_IDENTITY_HEADERS = ("From", "Sender", "Reply-To")
_LINE_END = re.compile(rb"\r\n|\r|\n")
# A UTF-8 local part is RFC 6532 (internationalized mail), not a repair.
_INTERNATIONALIZED = frozenset({"NonASCIILocalPartDefect"})


def identity_doubts(message: Message, header_block: bytes) -> tuple[str, ...]:
    """Why the From of ``message`` may not name who wrote, when the parser had to repair it:
    defects the parser recorded on From, Sender or Reply-To (display-name tricks, unbalanced
    quotes and brackets: the class of CVE-2023-27043, where what a parser reads and what the
    sender's domain vouched for differ), more than one From mailbox, From twice, or header
    lines ending in a mix of CR LF, bare CR and bare LF (a bare CR can smuggle a header line
    that one program sees and another does not). Empty when there is none."""
    doubts: list[str] = []
    for name in _IDENTITY_HEADERS:
        try:
            values = _address_headers(message, name)
            defects = sorted(
                {type(d).__name__ for value in values for d in getattr(value, "defects", ())}
                - _INTERNATIONALIZED
            )
            mailboxes = sum(len(getattr(value, "addresses", ())) for value in values)
        except Exception as error:
            doubts.append(f"{name} could not be parsed ({type(error).__name__})")
            continue
        if defects:
            doubts.append(f"{name} had to be repaired ({', '.join(defects)})")
        if name == "From" and len(values) > 1:
            doubts.append(f"From appears {len(values)} times")
        elif name == "From" and mailboxes > 1:
            doubts.append(f"From names {mailboxes} mailboxes")
    endings = {match.group() for match in _LINE_END.finditer(header_block)}
    if len(endings) > 1:
        doubts.append("header lines end in a mix of CR LF, bare CR and bare LF")
    return tuple(doubts)


# --- the walk -------------------------------------------------------------------------------


@dataclass
class _Walk:
    limits: Limits
    parts: int = 0
    truncated: bool = False
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[AttachmentPart] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    report_types: list[str] = field(default_factory=list)
    calendar_methods: list[str] = field(default_factory=list)
    delivery: list[DeliveryStatus] = field(default_factory=list)
    embedded_ids: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()[:127]
    except Exception:
        return "application/octet-stream"


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:
        return None
    if isinstance(value, tuple):
        value = value[2]
    return str(value) if value is not None else None


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = _param(part, "name")
    return _one_line(name, 255) if name else None


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    try:
        raw = part.get_payload()
    except Exception:
        return b""
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _children(part: Message) -> list[Message]:
    try:
        payload = part.get_payload()
    except Exception:
        return []
    return [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else []


def _delivery_blocks(part: Message, walk: _Walk) -> None:
    blocks = _children(part)
    if not blocks:  # some MTAs send message/delivery-status as plain text
        text = _decode_bytes(_payload_bytes(part), "utf-8")
        blocks = [email.message_from_string(chunk) for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]
    for block in blocks[:100]:
        recipient = _raw_value(block, "Final-Recipient") or _raw_value(block, "Original-Recipient")
        if not recipient:
            continue
        address = recipient.split(";", 1)[-1].strip().strip("<>")
        walk.delivery.append(
            DeliveryStatus(
                recipient=_one_line(address, 320).lower(),
                action=_one_line(_raw_value(block, "Action") or "", 32).lower(),
                status=_one_line(_raw_value(block, "Status") or "", 32),
                diagnostic=_one_line(_raw_value(block, "Diagnostic-Code") or "", 500),
            )
        )


def _walk(part: Message, walk: _Walk, depth: int, inside_report: bool) -> None:
    walk.parts += 1
    if walk.parts > walk.limits.max_parts or depth > walk.limits.max_depth:
        walk.truncated = True
        return
    with contextlib.suppress(Exception):
        walk.defects.extend(type(defect).__name__ for defect in part.defects[:20])
    content_type = _content_type(part)
    walk.content_types.append(content_type)
    if content_type == "multipart/report":
        walk.report_types.append((_param(part, "report-type") or "").lower())
    if content_type == "text/calendar":
        walk.calendar_methods.append((_param(part, "method") or "").upper()[:20])
    if content_type.startswith("multipart/"):
        children = _children(part)
        if not children:  # a multipart without a usable boundary: treat its body as text
            text = _decode_bytes(_payload_bytes(part), _param(part, "charset"))
            if text.strip():
                walk.plain.append(text)
            return
        for child in children:
            _walk(child, walk, depth + 1, inside_report or content_type == "multipart/report")
        return
    if content_type == "message/delivery-status" or content_type == "message/global-delivery-status":
        _delivery_blocks(part, walk)
        return
    if content_type in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global"):
        embedded = _children(part)
        inner = embedded[0] if embedded else None
        if inner is None and content_type != "message/rfc822":
            text = _decode_bytes(_payload_bytes(part), "utf-8")
            inner = email.message_from_string(text[:200_000])
        if inner is not None:
            walk.embedded_ids.extend(_message_ids(_raw_value(inner, "Message-ID"), 1))
            if content_type == "message/rfc822" and not inside_report:
                _attach_embedded(part, inner, walk)
        return
    if content_type.startswith("message/") and _children(part):
        return  # a machine report (MDN, feedback report): its fields are in the raw message
    disposition = _disposition(part)
    filename = _filename(part)
    if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        text = _decode_bytes(_payload_bytes(part), _param(part, "charset"))
        (walk.plain if content_type == "text/plain" else walk.html).append(text)
        return
    if inside_report and content_type.startswith("text/") and not filename:
        walk.plain.append(_decode_bytes(_payload_bytes(part), _param(part, "charset")))
        return
    data = _payload_bytes(part)
    content_id = _header_text(part, "Content-ID", walk.limits)
    walk.attachments.append(
        AttachmentPart(
            filename=filename or f"attachment-{len(walk.attachments) + 1}",
            content_type=content_type,
            data=data,
            inline=disposition == "inline" or (content_id is not None and disposition != "attachment"),
            content_id=content_id.strip("<> ")[:255] if content_id else None,
        )
    )


def _attach_embedded(part: Message, inner: Message, walk: _Walk) -> None:
    try:
        data = inner.as_bytes(policy=email.policy.compat32)
    except Exception:
        return
    subject = _header_text(inner, "Subject", walk.limits) or "forwarded message"
    walk.attachments.append(
        AttachmentPart(filename=_one_line(subject, 200) + ".eml", content_type="message/rfc822", data=data)
    )


# --- entry points -----------------------------------------------------------------------------

_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,100}:")


def _header_block_end(raw: bytes) -> int:
    match = re.search(rb"\r\n\r\n|\n\n|\r\r", raw)
    return match.start() if match else len(raw)


def _has_header_block(raw: bytes) -> bool:
    first = raw.lstrip(b"\r\n")[:200]
    return bool(_HEADER_LINE.match(first)) or first.startswith(b"From ")


def parse_email(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedEmail:
    """Parse ``raw``; never raises. ``understood`` is False when nothing useful came out."""
    try:
        return _parse(raw, limits)
    except Exception as error:
        return ParsedEmail(
            understood=False, problems=(f"parser failed: {type(error).__name__}: {error}"[:300],)
        )


def _parse(raw: bytes, limits: Limits) -> ParsedEmail:
    problems: list[str] = []
    if len(raw) > limits.max_message_bytes:
        return ParsedEmail(
            understood=False, problems=(f"message is larger than {limits.max_message_bytes} bytes",)
        )
    if _header_block_end(raw) > limits.max_header_block_bytes:
        return ParsedEmail(understood=False, problems=("header block is too large to parse safely",))
    has_header_block = _has_header_block(raw)
    if raw.startswith(b"From ") and b"\n" in raw[:1000]:
        raw = raw.split(b"\n", 1)[1]  # an mbox "From " line is not a header
    message = email.message_from_bytes(raw, policy=email.policy.default)
    end = _header_block_end(raw)
    doubts = identity_doubts(message, raw[: end + (2 if raw[end : end + 2] == b"\r\n" else 1)])
    try:
        headers = [
            (str(key).lower()[:100], clean_text(_decoded(str(value)), limits.max_header_value_chars))
            for key, value in list(message.raw_items())[: limits.max_headers]
        ]
    except Exception:
        headers = []
        problems.append("headers could not be read")
    walk = _Walk(limits)
    _walk(message, walk, 0, False)
    if walk.truncated:
        problems.append(
            f"more than {limits.max_parts} parts or {limits.max_depth} levels: the rest was not read"
        )
    text = "\n\n".join(t for t in walk.plain if t.strip())
    html_only = False
    if not text.strip() and walk.html:
        text = "\n\n".join(html_to_text(h, limits.max_html_chars) for h in walk.html)
        html_only = True
    from_addresses = _addresses(message, "From", limits) or _addresses(message, "Sender", limits)
    return ParsedEmail(
        understood=True,
        problems=tuple(problems),
        message_id=next(iter(_message_ids(_header_text(message, "Message-ID", limits), 1)), None),
        in_reply_to=_message_ids(_header_text(message, "In-Reply-To", limits)),
        references=_message_ids(_header_text(message, "References", limits)),
        from_address=from_addresses[0] if from_addresses else None,
        reply_to=_addresses(message, "Reply-To", limits),
        to=_addresses(message, "To", limits),
        cc=_addresses(message, "Cc", limits),
        subject=_one_line(_header_text(message, "Subject", limits) or "", 1000),
        headers=tuple(headers),
        content_types=tuple(dict.fromkeys(walk.content_types)),
        report_types=tuple(dict.fromkeys(walk.report_types)),
        calendar_methods=tuple(dict.fromkeys(walk.calendar_methods)),
        text=clean_text(text, limits.max_text_chars),
        html_only=html_only,
        attachments=tuple(walk.attachments),
        delivery_status=tuple(walk.delivery),
        embedded_message_ids=tuple(dict.fromkeys(walk.embedded_ids)),
        defects=tuple(dict.fromkeys(walk.defects))[:50],
        has_header_block=has_header_block,
        identity_doubts=doubts,
    )


_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="inbound-parse")


async def parse_within(raw: bytes, limits: Limits = DEFAULT_LIMITS, parser: Any = None) -> ParsedEmail:
    """:func:`parse_email` in a worker thread, given up after ``limits.time_limit_seconds``.

    A parse that overruns comes back not understood (the message is kept raw and flagged);
    its thread cannot be killed and finishes in the background, so the pool is small and
    separate: a few pathological messages cannot starve the event loop or the database."""
    parse = parser or parse_email
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(_POOL, parse, raw, limits)
    try:
        result: ParsedEmail = await asyncio.wait_for(future, timeout=limits.time_limit_seconds)
    except TimeoutError:
        return ParsedEmail(
            understood=False, problems=(f"parsing took longer than {limits.time_limit_seconds:g} s",)
        )
    return result
