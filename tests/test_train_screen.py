"""The Train screen driven by Pilot: a real (tiny) training process run to the end."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import invented_tweet_texts, make_tweet
from turing_tui.corpus.twint import write_jsonl
from turing_tui.model.checkpoint import list_checkpoints
from turing_tui.paths import Paths
from turing_tui.ui.app import build_app

pytestmark = pytest.mark.slow


@pytest.fixture
def vc_paths(paths: Paths) -> Paths:
    write_jsonl(paths.category_dir("vc") / "000.txt", [make_tweet(i, t) for i, t in enumerate(invented_tweet_texts(60))])
    return paths


async def _wait_for(condition, pilot, seconds: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting for the screen"
        await pilot.pause(0.2)


async def test_train_screen_runs_a_tiny_training_to_the_end(vc_paths: Paths) -> None:
    app = build_app(paths=vc_paths, screen="train", category="vc", size="tiny", max_steps=6, eval_every=3, batch_size=4, block_size=64)
    async with app.run_test(size=(110, 40)) as pilot:
        screen = app.screen
        assert screen.__class__.__name__ == "TrainScreen"
        command = screen.build_command()
        assert isinstance(command, list) and "--from-scratch" in command and command[command.index("--max-steps") + 1] == "6"
        await pilot.press("ctrl+r")
        assert screen.running and not screen.query_one("#cancel").disabled
        await _wait_for(lambda: not screen.running, pilot)
        status = str(screen.query_one("#status").render())
        assert "Finished after 6 steps" in status, status
        assert [s for s, _ in screen.eval_points] == [3, 6]
        assert screen.train_points and screen.train_points[-1][0] == 6
        assert screen.query_one("#bar").progress == 6
        assert "tokens/s" in str(screen.query_one("#stats").render())
        logged = [line.text for line in screen.query_one("#samples").lines]
        assert len(logged) >= 2 and any(text.startswith("Schedule: 6 steps of 4 blocks") for text in logged), logged
        assert not screen.query_one("#start").disabled
    found = list_checkpoints(vc_paths, "vc")
    assert len(found) == 1 and found[0].status == "complete" and found[0].metadata["steps"] == 6


async def test_train_screen_explains_bad_input_without_starting(paths: Paths) -> None:
    app = build_app(paths=paths, screen="train")
    async with app.run_test(size=(110, 40)) as pilot:
        screen = app.screen
        await pilot.press("ctrl+r")
        assert not screen.running
        assert "No category has tweets" in str(screen.query_one("#status").render())


async def test_cancel_in_the_app_saves_a_resumable_checkpoint(vc_paths: Paths) -> None:
    app = build_app(paths=vc_paths, screen="train", category="vc", size="tiny", max_steps=3000, eval_every=1000, batch_size=4, block_size=64)
    async with app.run_test(size=(110, 40)) as pilot:
        screen = app.screen
        await pilot.press("ctrl+r")
        await _wait_for(lambda: bool(screen.train_points), pilot)
        await pilot.press("ctrl+x")
        await _wait_for(lambda: not screen.running, pilot)
        status = str(screen.query_one("#status").render())
        assert status.startswith("Cancelled"), status
    found = list_checkpoints(vc_paths, "vc")
    assert len(found) == 1 and found[0].status == "cancelled" and found[0].resumable
    assert 0 < found[0].metadata["steps"] < 3000
