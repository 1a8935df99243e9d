"""Message-IDs and reply tokens name their ticket, and cannot be forged or altered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.mail_ids import (
    make_message_id,
    make_reply_token,
    owner_of_message_id,
    owner_of_reply_token,
    plus_address,
    token_of_plus_address,
)

SECRET = "test-secret"


def test_a_message_id_names_its_ticket_and_is_unique() -> None:
    ticket = uuid4()
    first = make_message_id(ticket, secret=SECRET, domain="helpdesk.test")
    second = make_message_id(ticket, secret=SECRET, domain="helpdesk.test")
    assert first != second
    assert first.startswith("<hd.") and first.endswith("@helpdesk.test>")
    assert owner_of_message_id(first, secret=SECRET) == ticket
    assert owner_of_message_id(first.strip("<>"), secret=SECRET) == ticket, "brackets are optional"
    # Message-IDs travel as they are (RFC 5322): another case is another id.
    assert owner_of_message_id(first.upper(), secret=SECRET) is None
    assert owner_of_message_id(first.replace("helpdesk", "Helpdesk"), secret=SECRET) is None


def test_forged_and_foreign_message_ids_name_nothing() -> None:
    ticket, other = uuid4(), uuid4()
    genuine = make_message_id(ticket, secret=SECRET, domain="helpdesk.test")
    assert owner_of_message_id(genuine, secret="another-secret") is None
    swapped = make_message_id(other, secret=SECRET, domain="helpdesk.test")
    _, nonce, ticket_part, _mac_at = genuine.strip("<>").split(".", 3)
    mac_of_other = swapped.strip("<>").split(".")[3]
    assert owner_of_message_id(f"<hd.{nonce}.{ticket_part}.{mac_of_other}>", secret=SECRET) is None
    for junk in ("", "<CAF=abc@mail.gmail.com>", "<hd.x.y.z@h>", "x" * 1000):
        assert owner_of_message_id(junk, secret=SECRET) is None


@given(st.uuids())
def test_reply_tokens_round_trip_and_fit_a_local_part(ticket: object) -> None:
    assert isinstance(ticket, type(uuid4()))
    token = make_reply_token(ticket, secret=SECRET)
    address = plus_address("support@helpdesk.test", token)
    assert len(address.split("@")[0]) <= 64
    assert token_of_plus_address(address, "support@helpdesk.test") == token
    # A mail system may fold the case of the whole local part: the same token.
    folded = token_of_plus_address(address.upper(), "support@helpdesk.test")
    assert folded == token.upper() and owner_of_reply_token(folded, secret=SECRET) == ticket
    assert owner_of_reply_token(token, secret=SECRET) == ticket
    assert owner_of_reply_token(token, secret="another-secret") is None


def test_an_altered_reply_token_names_nothing() -> None:
    token = make_reply_token(uuid4(), secret=SECRET)
    altered = ("b" if token[0] != "b" else "c") + token[1:]
    assert owner_of_reply_token(altered, secret=SECRET) is None
    assert token_of_plus_address("support@other.test", "support@helpdesk.test") is None
    assert token_of_plus_address("sales+x@helpdesk.test", "support@helpdesk.test") is None


def test_after_a_key_rotation_ids_made_with_a_listed_older_key_still_check() -> None:
    ticket = uuid4()
    before = make_message_id(ticket, secret="old-key", domain="helpdesk.test")
    token_before = make_reply_token(ticket, secret="old-key")
    rotated = ("new-key", "old-key")
    after = make_message_id(ticket, secret=rotated, domain="helpdesk.test")
    assert owner_of_message_id(after, secret="new-key") == ticket, "new ids use the current key"
    assert owner_of_message_id(before, secret=rotated) == ticket
    assert owner_of_reply_token(token_before, secret=rotated) == ticket
    assert owner_of_message_id(before, secret="new-key") is None, "once the old key is dropped, no more"
    assert owner_of_reply_token(token_before, secret=("new-key",)) is None


# --- every character counts ---------------------------------------------------------------

ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@<>-_=+ "


def single_character_changes(text: str) -> set[str]:
    """Every text one substitution, deletion or insertion away from ``text``."""
    variants: set[str] = set()
    for i in range(len(text) + 1):
        for ch in ALPHABET:
            variants.add(text[:i] + ch + text[i:])
            if i < len(text):
                variants.add(text[:i] + ch + text[i + 1 :])
        if i < len(text):
            variants.add(text[:i] + text[i + 1 :])
    variants.discard(text)
    return variants


@settings(max_examples=10, deadline=None)
@given(st.uuids(), st.sampled_from(["helpdesk.test", "mail.example.com"]), st.text(min_size=1, max_size=12))
def test_any_single_character_change_to_a_message_id_names_nothing(
    ticket: UUID, domain: str, key: str
) -> None:
    genuine = make_message_id(ticket, secret=key, domain=domain)
    assert owner_of_message_id(genuine, secret=key) == ticket
    bare = genuine[1:-1]
    variants = single_character_changes(genuine) | single_character_changes(bare)
    survivors = {v for v in variants if owner_of_message_id(v, secret=key) is not None}
    # Only the same id: without its brackets, or with folding white space around it.
    assert {v.strip() for v in survivors} <= {genuine, bare}


@settings(max_examples=10, deadline=None)
@given(st.uuids(), st.text(min_size=1, max_size=12))
def test_any_single_character_change_to_a_reply_token_names_nothing(ticket: UUID, key: str) -> None:
    genuine = make_reply_token(ticket, secret=key)
    assert owner_of_reply_token(genuine, secret=key) == ticket
    for variant in single_character_changes(genuine) | single_character_changes(genuine.upper()):
        assert owner_of_reply_token(variant, secret=key) is None, variant
    address = plus_address("support@helpdesk.test", genuine)
    for variant in single_character_changes(address):
        token = token_of_plus_address(variant, "support@helpdesk.test")
        if token is not None and token.lower() != genuine:
            assert owner_of_reply_token(token, secret=key) is None, variant


def v1_message_id(ticket: UUID, key: str, domain: str) -> str:
    """A Message-ID as releases before the full-coverage MAC made it (the MAC of the id alone,
    under its own purpose): what mail in flight carries."""
    b32 = lambda raw: base64.b32encode(raw).decode().rstrip("=").lower()  # noqa: E731
    purpose_key = hmac.new(key.encode(), b"helpdesk/message-id/v1", hashlib.sha256).digest()
    mac = hmac.new(purpose_key, ticket.bytes, hashlib.sha256).digest()[:10]
    return f"<hd.{secrets.token_hex(8)}.{b32(ticket.bytes)}.{b32(mac)}@{domain}>"


def test_message_ids_sent_before_still_name_their_ticket_canonically() -> None:
    ticket = uuid4()
    sent_before = v1_message_id(ticket, SECRET, "helpdesk.test")
    assert owner_of_message_id(sent_before, secret=SECRET) == ticket
    assert owner_of_message_id(sent_before, secret=("new-key", SECRET)) == ticket, "after a rotation"
    assert owner_of_message_id(sent_before, secret="new-key") is None, "the old key dropped: gone"
    # Canonical still: the id and MAC characters, the case, the padding bits are all checked.
    _, nonce, id_text, mac_at = sent_before.strip("<>").split(".", 3)
    mac_text, _, domain = mac_at.partition("@")
    flipped_padding = id_text[:-1] + ("b" if id_text[-1] == "a" else "a")  # last char: 3 bits + 2 unused
    for altered in (
        sent_before.upper(),
        f"<hd.{nonce}.{flipped_padding}.{mac_text}@{domain}>",
        f"<hd.{nonce}.{id_text}.{mac_text[:-1]}{'b' if mac_text[-1] != 'b' else 'c'}@{domain}>",
    ):
        assert owner_of_message_id(altered, secret=SECRET) is None, altered
