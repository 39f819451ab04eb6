"""The Scrape screen, driven by Pilot against the fake Bluesky server (real HTTP)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.message import Message
from textual.widgets import DataTable, RichLog, TextArea

from turing_tui.corpus.twint import read_folder
from turing_tui.net import Backoff
from turing_tui.paths import Paths
from turing_tui.ui.app import build_app
from turing_tui.ui.screens.scrape import ScrapeScreen

sys.path.insert(0, str(Path(__file__).parent))
from fakes_social import FakeSocial  # noqa: E402

FAST = Backoff(retries=1, base=0.001, cap=0.01)


@pytest.fixture
def fake() -> Iterator[FakeSocial]:
    with FakeSocial() as server:
        yield server


async def wait_until_idle(pilot, screen: ScrapeScreen, limit_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(limit_s / 0.05)):
        await pilot.pause(0.05)
        if not screen.running:
            return
    raise AssertionError("the scrape did not finish")


def cell(table: DataTable, row: str, column: str) -> str:
    return str(table.get_cell(row, column))


async def test_scrape_screen_edits_the_list_runs_and_reports_each_handle(paths: Paths, fake: FakeSocial) -> None:
    fake.add("bluesky", "alice.bsky.social", 150, extras=("repost", "reply"))
    fake.add("bluesky", "bob.bsky.social", 20)
    (paths.sources_dir / "mine.txt").write_text("# my list\nalice\nbsky:ghost.bsky.social\n")
    messages: list[Message] = []
    app = build_app(paths=paths, screen="scrape", category="mine", backend="bluesky", base_url=fake.url, backoff=FAST)
    async with app.run_test(size=(110, 40), message_hook=messages.append) as pilot:
        screen = app.screen
        assert isinstance(screen, ScrapeScreen)
        area = screen.query_one("#handles", TextArea)
        assert area.text == "# my list\nalice\nbsky:ghost.bsky.social\n"
        assert "2 bluesky" in str(screen.query_one("#list-status").render())
        # The user adds an account at the end of the list, then starts with the key.
        area.focus()
        await pilot.pause()
        area.move_cursor(area.document.end)
        await pilot.press(*"bob", "ctrl+r")
        await wait_until_idle(pilot, screen)
        table = screen.query_one("#table", DataTable)
        assert table.row_count == 3, (area.text, list(table.rows))
        assert cell(table, "bluesky:alice.bsky.social", "state") == "whole history read"
        assert cell(table, "bluesky:alice.bsky.social", "added") == "150"
        assert cell(table, "bluesky:alice.bsky.social", "dropped") == "1 reply · 1 repost"
        assert cell(table, "bluesky:bob.bsky.social", "added") == "20"
        assert cell(table, "bluesky:ghost.bsky.social", "state") == "No such account (Profile not found)."
        log = "\n".join(str(line.text) for line in screen.query_one("#log", RichLog).lines)
        assert "bluesky:ghost.bsky.social: No such account" in log
        assert "Added 170 new tweets to 'mine'" in log
        totals = str(screen.query_one("#totals").render())
        assert "3 of 3 handles finished" in totals and "170 tweets added" in totals and "1 failed" in totals
        assert (paths.sources_dir / "mine.txt").read_text().endswith("bsky:ghost.bsky.social\nbob\n")
        assert any(isinstance(m, ScrapeScreen.HandleUpdated) for m in messages)
        # Start again: everything is up to date, nothing is added twice.
        await pilot.press("ctrl+r")
        await wait_until_idle(pilot, screen)
        assert cell(table, "bluesky:alice.bsky.social", "state") == "up to date"
    assert len(list(read_folder(paths.category_dir("mine")))) == 170


async def test_scrape_screen_cancel_keeps_what_was_read(paths: Paths, fake: FakeSocial) -> None:
    fake.delay = 0.05
    fake.add("bluesky", "big.bsky.social", 3000)
    (paths.sources_dir / "mine.txt").write_text("bsky:big.bsky.social\n")
    app = build_app(paths=paths, screen="scrape", category="mine", base_url=fake.url, limit=0, backoff=FAST)
    async with app.run_test(size=(110, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ScrapeScreen)
        await pilot.click("#start")
        table = screen.query_one("#table", DataTable)
        for _ in range(200):  # until two pages are in
            await pilot.pause(0.05)
            if table.row_count and int(cell(table, "bluesky:big.bsky.social", "pages")) >= 2:
                break
        await pilot.press("escape")  # while running, escape cancels (it does not leave)
        await wait_until_idle(pilot, screen)
        assert app.screen is screen
        state = cell(table, "bluesky:big.bsky.social", "state")
        added = int(cell(table, "bluesky:big.bsky.social", "added").replace(",", ""))
        assert state == "cancelled; what was read is kept"
        assert 200 <= added < 3000
        assert "cancelled" in str(screen.query_one("#totals").render())
    assert len(list(read_folder(paths.category_dir("mine")))) == added
    assert paths.scrape_state_file("mine").exists()


async def test_scrape_screen_says_what_is_wrong_with_the_list(paths: Paths) -> None:
    (paths.sources_dir / "mine.txt").write_text("insta:bob\n")
    app = build_app(paths=paths, screen="scrape", category="mine")
    async with app.run_test(size=(110, 40)) as pilot:
        screen = app.screen
        status = screen.query_one("#list-status")
        assert "line 1: unknown prefix 'insta:'" in str(status.render()) and status.has_class("bad")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not screen.running and screen.query_one("#table", DataTable).row_count == 0
