"""Replay every event twice and out of order: identical balances, invoices and notices."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from shared import events as ev
from tests.billing.harness import Harness, Story, open_harness
from tests.conftest import truncate_schema

PERIOD_CLOSE_AT = datetime(2026, 12, 1, 6, 10, tzinfo=UTC)  # 00:10 in Chicago


def history() -> list[list[ev.Event]]:
    """S7 for three organizations in two phases; a settle runs after each phase (the events of
    one phase are what a queue may deliver in any order within the settle delay)."""
    story = Story()
    acme, acme_created = story.organization("Acme", "hourly")
    globex, globex_created = story.organization("Globex", "agreement")
    initech, initech_created = story.organization("Initech", "block")
    phase_one = [acme_created, globex_created, initech_created]

    t1, t2 = story.ticket(acme), story.ticket(acme)
    first, e = story.log(t1, 40, "Diagnosis")
    phase_one.append(e)
    phase_one.append(story.log(t1, 50, "Repair")[1])
    phase_one.append(story.correct(first, minutes=55))
    phase_one.append(story.log(t2, 10, "Chat", billable=False)[1])
    phase_one.append(story.log(t2, 20, "Reset")[1])
    phase_one += [story.close(t1), story.close(t2)]

    t3, t4 = story.ticket(globex), story.ticket(globex)
    phase_one.append(story.log(t3, 300, "Migration")[1])
    phase_one.append(story.close(t3))
    phase_one.append(story.log(t4, 200, "Training")[1])
    phase_one.append(story.close(t4))

    t5, t6 = story.ticket(initech), story.ticket(initech)
    big, e = story.log(t5, 1000, "Rollout")
    phase_one += [e, story.close(t5)]
    gone, e = story.log(t6, 100, "Logged by mistake")
    phase_one += [e, story.delete(gone), story.log(t6, 150, "Audit")[1], story.close(t6)]

    story.tick(60)
    phase_two = [story.log(t1, 15, "Noted after closing")[1]]
    story.reopen(t1)
    phase_two += [story.log(t1, 30, "Follow-up")[1], story.close(t1)]
    phase_two.append(story.log(t3, 150, "Noted after closing")[1])  # swept at the period close
    t7 = story.ticket(globex)
    phase_two += [story.log(t7, 60, "Call")[1], story.close(t7)]
    phase_two.append(story.correct(big, minutes=900))  # a credit back to the block
    story.reopen(t5)
    phase_two.append(story.close(t5))
    return [phase_one, phase_two]


async def play(harness: Harness, phases: list[list[ev.Event]], *, seed: int | None) -> dict:
    settle_at = datetime(2026, 11, 20, tzinfo=UTC)
    for phase in phases:
        events = list(phase)
        if seed is not None:
            events = events * 2
            random.Random(seed).shuffle(events)
        await harness.deliver(*events)
        await harness.settle(settle_at)
        settle_at += timedelta(days=1)
    await harness.close_periods(PERIOD_CLOSE_AT)
    return await harness.snapshot()


async def test_replaying_twice_out_of_order_gives_identical_results(postgres_url: str) -> None:
    phases = history()
    results = []
    for seed in (None, 1, 2, 3):
        await truncate_schema(postgres_url, "billing")
        async with open_harness(postgres_url) as harness:
            results.append(await play(harness, phases, seed=seed))
    reference = results[0]
    assert len(reference["invoices"]) == 4  # Acme ×3 (T1 twice), Globex overage (720 of 600 minutes)
    assert len(reference["notices"]) == 3  # Globex 80 % and 100 %; Initech low
    for replay in results[1:]:
        assert replay == reference


@pytest.mark.parametrize("seed", [7])
async def test_replay_on_sqlite_matches_postgres(pg: Harness, sqlite_template, tmp_path, seed: int) -> None:
    from shared.events import Service
    from tests.conftest import sqlite_copy

    phases = history()
    expected = await play(pg, phases, seed=None)
    async with open_harness(sqlite_copy(sqlite_template, Service.BILLING, tmp_path)) as lite:
        assert await play(lite, phases, seed=seed) == expected
