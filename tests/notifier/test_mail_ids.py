"""Message-IDs and reply tokens name their ticket, and cannot be forged or altered."""

from __future__ import annotations

from uuid import uuid4

from hypothesis import given
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
    # Without brackets, upper-cased by some mail system: still ours.
    assert owner_of_message_id(first.strip("<>").upper(), secret=SECRET) == ticket


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
    assert token_of_plus_address(address.upper(), "support@helpdesk.test") == token
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
