"""Snapshots pin the look of the game: a tweet before and after a guess, the leaderboard.

Fixed seed, fixed invented tweets, a fixed pool: the screens are the same on every run.
Regenerate after an intended change with ``pytest tests/test_ui_snapshots.py --snapshot-update``
and look at the SVGs under tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import time

import pytest
from textual.pilot import Pilot

from turing_tui.paths import Paths
from turing_tui.store.db import RoundRecord, Store
from turing_tui.ui.app import TuringApp, build_app

from tests.gamekit import ScriptedGenerator, fill_pool, write_corpus

SIZE = (100, 34)


@pytest.fixture
def store(paths: Paths):  # type: ignore[no-untyped-def]
    with Store(paths.db_path) as store:
        yield store


def _play_app(paths: Paths, store: Store) -> TuringApp:
    write_corpus(paths, n=20)
    generator = ScriptedGenerator()
    fill_pool(store, "vc", generator, 20)
    return build_app(paths=paths, screen="play", store=store, generator=generator, category="vc", player="ann", seed=7)


async def _first_round(pilot: Pilot) -> None:
    deadline = time.monotonic() + 10
    while pilot.app.screen.current is None and time.monotonic() < deadline:  # type: ignore[attr-defined]
        await pilot.pause(0.02)
    await pilot.pause(0.1)


def test_play_before_a_guess(snap_compare, paths: Paths, store: Store) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_play_app(paths, store), terminal_size=SIZE, run_before=_first_round)


def test_play_after_a_guess(snap_compare, paths: Paths, store: Store) -> None:  # type: ignore[no-untyped-def]
    async def guess(pilot: Pilot) -> None:
        await _first_round(pilot)
        await pilot.press("h")
        deadline = time.monotonic() + 10
        while store.round_count() == 0 and time.monotonic() < deadline:
            await pilot.pause(0.02)
        await pilot.pause(0.2)

    assert snap_compare(_play_app(paths, store), terminal_size=SIZE, run_before=guess)


def test_leaderboard(snap_compare, paths: Paths, store: Store) -> None:  # type: ignore[no-untyped-def]
    from turing_tui.backends.base import FakeTweet

    store.add_fakes("vc", [FakeTweet(text=f"Fundraising is a full-time job, number {i}", model="vc-scratch", base="scratch") for i in range(3)])
    fakes = [store.take_fake("vc", "vc-scratch") for _ in range(3)]
    plan = {"ann": (14, 11), "bob": (12, 6), "cy": (4, 4)}
    for player, (rounds, right) in plan.items():
        for i in range(rounds):
            fake = fakes[i % 3]
            truth = "machine" if i % 2 else "human"
            correct = i < right
            guess = truth if correct else ("human" if truth == "machine" else "machine")
            store.record_round(
                RoundRecord(player, "vc", truth, guess, 900, fake_id=fake.pool_id if truth == "machine" else None, model="vc-scratch")  # type: ignore[union-attr]
            )

    async def loaded(pilot: Pilot) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            await pilot.pause(0.05)
            if pilot.app.screen.query_one("#players").row_count >= 3:
                break
        await pilot.pause(0.1)

    app = build_app(paths=paths, screen="leaderboard", store=store, category="vc")
    assert snap_compare(app, terminal_size=SIZE, run_before=loaded)
