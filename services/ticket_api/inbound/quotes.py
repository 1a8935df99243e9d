"""What the person wrote this time: a reply without the quoted history and the signature.

Covers the reply styles of Outlook ("-----Original Message-----", a "From:/Sent:" header
block, localized: "Von:/Gesendet:", "De :/Envoyé :", "De:/Enviado:"…), Gmail and Apple Mail
("On <date>, <name> wrote:" and its translations: "Am … schrieb …:", "Le … a écrit :",
"El … escribió:", "Il … ha scritto:", "Op … schreef …:", "Em … escreveu:", "Den … skrev …:"),
Thunderbird ("-------- Original Message --------", attribution above a bottom-posted answer)
and "> " quoting in general; signatures after "-- " and the mobile "Sent from my …" lines.

Pure text in, text out. When stripping would leave nothing (a bare forward, or a message
that is all quote), the text is kept whole: losing what someone wrote is worse than keeping
a quote. Callers keep the full original besides.
"""

from __future__ import annotations

import re

__all__ = ["strip_quotes_and_signature"]

# "On Mon, Apr 2, 2012 at 6:26 PM, Megan One <x@y> wrote:" and its translations. Gmail wraps
# long attributions, so up to three lines are joined before matching.
_ATTRIBUTION = re.compile(
    r"^\s*(?:"
    r"On\b.{3,300}\bwrote\s*:"
    r"|Am\b.{3,300}\bschrieb\b.{0,300}:"
    r"|Le\b.{3,300}\ba\s+écrit\s*:"
    r"|El\b.{3,300}\bescribió\s*:"
    r"|Il\b.{3,300}\bha\s+scritto\s*:"
    r"|Op\b.{3,300}\bschreef\b.{0,300}:"
    r"|Em\b.{3,300}\bescreveu\s*:"
    r"|(?:Den|På)\b.{3,300}\bskrev\b.{0,300}:"
    r"|W\s+dniu\b.{3,300}\bpisze\s*:"
    r"|.{0,300}\d.{0,300}\b(?:wrote|schrieb|a\s+écrit|escribió|ha\s+scritto|schreef|escreveu|skrev|"
    r"napisał\(a\)|napisał|kirjoitti|написал\(а\)|написал|писал)\s*:"
    r")\s*$",
    re.IGNORECASE,
)

# How a wrapped attribution starts: "On …", its translations, or a date ("02.04.2012 14:20 …").
_OPENER = re.compile(r"^\s*(?:on|am|le|el|il|op|em|den|på|w\s+dniu)\b|^\s*\d", re.IGNORECASE)

_ORIGINAL_MESSAGE = re.compile(
    r"^\s*[-_=]{2,}\s*(?:original\s+message|ursprüngliche\s+nachricht|message\s+d'origine|"
    r"mensaje\s+original|messaggio\s+originale|oorspronkelijk\s+bericht|mensagem\s+original|"
    r"ursprungligt\s+meddelande|oprindelig\s+meddelelse|opprinnelig\s+melding|"
    r"wiadomość\s+oryginalna|původní\s+zpráva|исходное\s+сообщение|reply\s+message)\s*[-_=]{2,}\s*$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{20,}\s*$")

_FROM = r"(?:from|von|de|da|van|från|fra|od|от|kimden)"
_SENT = (
    r"(?:sent|date|gesendet|datum|envoyé|date\s+d'envoi|enviado|fecha|inviato|data|verzonden|"
    r"skickat|sendt|wysłano|wysłane|отправлено|tarih)"
)
_TO_SUBJECT = (
    r"(?:to|an|à|para|a|aan|till|til|do|кому|"
    r"subject|betreff|objet|asunto|oggetto|onderwerp|ämne|emne|temat|тема)"
)
_HEADER_FROM = re.compile(rf"^\s*\*?{_FROM}\s*\*?\s*:\s*\S", re.IGNORECASE)
_HEADER_OTHER = re.compile(rf"^\s*\*?(?:{_SENT}|{_TO_SUBJECT})\s*\*?\s*:", re.IGNORECASE)

_SIGNATURE_MARK = re.compile(r"^--\s?$")
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(?:sent\s+(?:from|with|via)\s+(?:my\s+)?\S.{0,60}"
    r"|get\s+outlook\s+for\s+\S+.{0,30}"
    r"|von\s+meinem\s+\S.{0,40}\s+gesendet"
    r"|envoyé\s+de\s+mon\s+\S.{0,40}"
    r"|enviado\s+desde\s+mi\s+\S.{0,40}"
    r"|inviato\s+da(?:l\s+mio)?\s+\S.{0,40}"
    r"|verzonden\s+vanaf\s+mijn\s+\S.{0,40}"
    r"|skickat\s+från\s+min\s+\S.{0,40})\s*$",
    re.IGNORECASE,
)
_FORWARD_MARK = re.compile(
    r"^\s*(?:-{2,}\s*forwarded\s+message\s*-{2,}|begin\s+forwarded\s+message\s*:|"
    r"-{2,}\s*(?:weitergeleitete\s+nachricht|message\s+transféré|mensaje\s+reenviado)\s*-{2,})\s*$",
    re.IGNORECASE,
)


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _outlook_header_block(lines: list[str], index: int) -> bool:
    """``From: …`` followed within a few lines by Sent/Date/To/Subject (in any of our languages)."""
    if not _HEADER_FROM.match(lines[index]):
        return False
    following = [line for line in lines[index + 1 : index + 6] if line.strip()]
    return sum(1 for line in following[:4] if _HEADER_OTHER.match(line)) >= 2


def _attribution_at(lines: list[str], index: int) -> int:
    """How many lines (1–3) starting at ``index`` form an attribution line; 0 if none."""
    first = lines[index]
    for span in (1, 2, 3):
        if index + span > len(lines):
            break
        if span > 1 and not (
            _OPENER.match(first) and all(line.strip() for line in lines[index : index + span])
        ):
            break
        joined = " ".join(line.strip() for line in lines[index : index + span])
        if len(joined) > 400:
            break
        if _ATTRIBUTION.match(joined):
            return span
    return 0


def _quoted_text_follows(lines: list[str], index: int) -> bool:
    """Whether the first non-empty line from ``index`` on is quoted."""
    following = next((line for line in lines[index:] if line.strip()), None)
    return following is not None and _is_quoted(following)


def _cut_history(lines: list[str]) -> list[str]:
    """Drop the quoted history: everything from a top-posting marker on, attribution lines
    over quoted text, and "> " quoted lines (a bottom-posted or interleaved answer keeps its
    own lines)."""
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _FORWARD_MARK.match(line):
            kept.extend(lines[index:])  # a forward's content is the point of the message
            break
        if _ORIGINAL_MESSAGE.match(line) or _outlook_header_block(lines, index):
            break
        if _UNDERSCORES.match(line) and index + 1 < len(lines) and _outlook_header_block(lines, index + 1):
            break
        span = _attribution_at(lines, index)
        if span and _quoted_text_follows(lines, index + span):
            index += span  # an attribution counts only over quoted text: "On Monday the old
            continue  # driver wrote:" in the middle of new text is new text
        if not _is_quoted(line):
            kept.append(line)
        index += 1
    return kept


def _cut_signature(lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        if _SIGNATURE_MARK.match(line) and index > 0:
            return lines[:index]
    non_empty = [i for i, line in enumerate(lines) if line.strip()]
    for position in non_empty[-3:]:
        if _MOBILE_SIGNATURE.match(lines[position]) and position != non_empty[0]:
            return lines[:position]
    return lines


def _tidy(lines: list[str]) -> str:
    while lines and not lines[-1].strip(" \t-_=*"):
        lines = lines[:-1]  # a separator left over from a cut history
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def strip_quotes_and_signature(text: str) -> str:
    """The new part of a reply (see the module docstring); the whole text if nothing is left."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    reply = _tidy(_cut_signature(_cut_history(lines)))
    return reply or text.strip()
