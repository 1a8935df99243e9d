"""``Idempotency-Key`` for ticket creation: the shared mechanism (``shared.idempotency``) on
ticket_api's ``idempotency_record`` table. The answer is stored in the same transaction as
the effect; a concurrent duplicate waits for the first to commit, then replays its answer."""

from __future__ import annotations

from services.ticket_api.db import IdempotencyRecord
from shared.idempotency import REPLAY_HEADER, IdempotencyStore, request_fingerprint

__all__ = ["REPLAY_HEADER", "STORE", "previous_answer", "remember_or_replay", "request_fingerprint"]

STORE = IdempotencyStore(IdempotencyRecord.__table__)  # type: ignore[attr-defined]
previous_answer = STORE.previous_answer
remember_or_replay = STORE.remember_or_replay
