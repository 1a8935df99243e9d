from __future__ import annotations

from uuid import uuid4

import pytest

from shared.pagination import InvalidCursor, decode_cursor, encode_cursor, page_of


def test_cursor_round_trip() -> None:
    some_id = uuid4()
    assert decode_cursor(encode_cursor(some_id)) == some_id
    assert decode_cursor(None) is None


@pytest.mark.parametrize("garbage", ["%%%", "abc", "AAAA" * 10])
def test_garbage_cursor_is_a_clear_error(garbage: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(garbage)


def test_page_of_says_whether_more_exist() -> None:
    ids = [uuid4() for _ in range(3)]
    full = page_of(["a", "b", "c"], ids, limit=2)
    assert full.items == ["a", "b"]
    assert full.next_cursor == encode_cursor(ids[1])
    last = page_of(["a", "b"], ids[:2], limit=2)
    assert last.next_cursor is None
