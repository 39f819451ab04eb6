"""The real app driven by Pilot: whole rounds, the reveal, the score bar, the database.

A temp database and a scripted generator are injected through ``build_app``; everything
else (workers, the supply thread, the store) is the real thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from turing_tui.paths import Paths
from turing_tui.store.db import Store
from turing_tui.ui.app import TuringApp, build_app

from tests.gamekit import ScriptedGenerator, fill_pool, write_corpus


async def until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


def screen_text(app: TuringApp) -> str:
    """What the terminal shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@pytest.fixture
def store(paths: Paths):  # type: ignore[no-untyped-def]
    with Store(paths.db_path) as store:
        yield store


@pytest.fixture
def game(paths: Paths, store: Store) -> Callable[..., TuringApp]:
    write_corpus(paths, n=60)
    generator = ScriptedGenerator()
    fill_pool(store, "vc", generator, 30)

    def make(**options: object) -> TuringApp:
        options.setdefault("category", "vc")
        options.setdefault("player", "ann")
        options.setdefault("seed", 7)
        gen = options.pop("generator", generator)
        return build_app(paths=paths, screen="play", store=store, generator=gen, **options)  # type: ignore[arg-type]

    return make


async def test_whole_rounds_reveal_score_and_database(game: Callable[..., TuringApp], store: Store) -> None:
    app = game()
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        await until(pilot, lambda: screen.current is not None)
        keys = ["h", "right", "left", "m", "h", "m", "left", "right"]
        nexts = ["n", "space", "enter", "n", "n", "space", "enter", "n"]
        expected: list[tuple[str, str]] = []
        for number, (key, nxt) in enumerate(zip(keys, nexts), start=1):
            round_ = screen.current
            assert round_.number == number
            assert "???" in screen_text(app)  # masked until the guess
            await pilot.press(key)
            guess = "human" if key in ("h", "left") else "machine"
            expected.append((round_.truth, guess))
            await until(pilot, lambda: store.round_count("ann") == number)
            text = screen_text(app)
            assert ("Right!" if guess == round_.truth else "Wrong.") in text
            if round_.truth == "human":
                assert round_.human.handle in text and round_.human.link in text
                assert f"♥ {round_.human.likes:,}" in text
            else:
                assert "Written by the model scripted-gpt" in text and "temperature 0.9" in text
            await pilot.press("h")  # a second guess on the same round is ignored
            await pilot.press(nxt)
            await until(pilot, lambda: screen.current.number == number + 1)
        rows = store.rounds("ann", "vc")
        assert [(r["truth"], r["guess"]) for r in rows] == expected
        assert all(r["answer_ms"] >= 0 for r in rows)
        right = sum(t == g for t, g in expected)
        human = [(t, g) for t, g in expected if t == "human"]
        await until(pilot, lambda: f"Score {right}/8" in screen_text(app))
        bar = screen_text(app).splitlines()[1]
        assert f"on human tweets {sum(t == g for t, g in human)}/{len(human)}" in bar
        assert f"on machine tweets {right - sum(t == g for t, g in human)}/{8 - len(human)}" in bar
        score = screen.dealer.score
        assert f"streak {score.streak} (best {score.best_streak})" in bar


async def test_next_before_a_guess_does_nothing(game: Callable[..., TuringApp], store: Store) -> None:
    app = game()
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: app.screen.current is not None)
        await pilot.press("n", "space", "enter")
        assert app.screen.current.number == 1 and store.round_count() == 0


async def test_text_and_names_are_shown_literally(paths: Paths, store: Store) -> None:
    write_corpus(paths, n=20, text="[bold]x[/] and [link=foo]click {i}[/link] more words", username="[red]mal[/red]")
    gen = ScriptedGenerator(model_id="[blink]m[/blink]")
    fill_pool(store, "vc", gen, 20)
    app = build_app(paths=paths, screen="play", store=store, generator=gen, category="vc", player="[b]ann[/b]", seed=3)
    async with app.run_test(size=(100, 40)) as pilot:
        seen = set()
        while seen != {"human", "machine"}:
            await until(pilot, lambda: app.screen.current is not None and not app.screen.answered)
            round_ = app.screen.current
            await pilot.press("h")
            await pilot.pause(0.05)
            text = screen_text(app)
            if round_.truth == "human":
                assert "[bold]x[/] and [link=foo]click" in text
                assert "@[red]mal[/red]" in text
            else:
                assert "[blink]m[/blink]" in text
            seen.add(round_.truth)
            await pilot.press("n")
            await until(pilot, lambda: app.screen.current.number == round_.number + 1)
        assert "playing as [b]ann[/b]" in screen_text(app)
    assert store.rounds()[0]["player"] == "[b]ann[/b]"


async def test_an_empty_pool_waits_with_a_status_then_plays(paths: Paths, store: Store) -> None:
    write_corpus(paths, n=20)
    gen = ScriptedGenerator(delay=0.6)
    app = build_app(paths=paths, screen="play", store=store, generator=gen, category="vc", player="ann", seed=1, pool_low_water=2, pool_batch=2)
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: "Waiting for a machine tweet" in screen_text(app))
        assert app.screen.current is None
        await until(pilot, lambda: app.screen.current is not None)
        assert "Round 1" in screen_text(app)


async def test_a_generator_that_cannot_start_says_so(paths: Paths, store: Store) -> None:
    write_corpus(paths, n=20)
    app = build_app(paths=paths, screen="play", store=store, category="vc", player="ann", model=str(paths.root / "no-such-model"))
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: "No model at" in screen_text(app))
        assert app.screen.current is None


async def test_missing_category_names_the_fix(paths: Paths, store: Store) -> None:
    app = build_app(paths=paths, screen="play", store=store, generator=ScriptedGenerator(), category="mine", player="ann")
    async with app.run_test(size=(100, 40)) as pilot:
        # The sentence wraps on screen; read it with the line breaks folded away.
        await until(pilot, lambda: "turing-tui scrape --category mine" in " ".join(screen_text(app).replace("│", " ").split()))
        assert not app.screen.query_one("#guess-buttons").display


async def test_back_goes_home_and_home_starts_a_game(game: Callable[..., TuringApp], store: Store) -> None:
    app = game()
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: app.screen.current is not None)
        await pilot.press("q")
        await until(pilot, lambda: type(app.screen).__name__ == "HomeScreen")
        await until(pilot, lambda: "60 tweets" in screen_text(app))
        assert app.screen.query_one("#player").value == "ann"  # remembered
        await pilot.press("p")
        await until(pilot, lambda: type(app.screen).__name__ == "PlayScreen" and app.screen.current is not None)
        await pilot.press("l")
        await until(pilot, lambda: type(app.screen).__name__ == "LeaderboardScreen")
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ == "PlayScreen")


async def test_leaderboard_screen_shows_players_models_and_fakes(game: Callable[..., TuringApp], store: Store, paths: Paths) -> None:
    from turing_tui.store.db import RoundRecord

    fake = store.take_fake("vc", "scripted-gpt")
    for i in range(12):
        store.record_round(RoundRecord("zoe", "vc", "human", "human" if i % 4 else "machine", 800, model="scripted-gpt"))
    store.record_round(RoundRecord("zoe", "vc", "machine", "human", 800, fake_id=fake.pool_id, model="scripted-gpt"))
    app = build_app(paths=paths, screen="leaderboard", store=store, category="vc")
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: "zoe" in screen_text(app))
        text = screen_text(app)
        assert "scripted-gpt" in text and "100%" in text  # fool rate of 1 judged tweet
        assert fake.text in text
        assert "1/1 fooled" in text


@pytest.mark.slow
async def test_a_round_against_a_real_tiny_checkpoint(paths: Paths, store: Store, tiny_checkpoint: Path) -> None:
    write_corpus(paths, n=30)
    app = build_app(paths=paths, screen="play", store=store, category="vc", player="ann", seed=2, model=str(tiny_checkpoint), pool_low_water=2, pool_batch=4)
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: app.screen.current is not None, timeout=60)
        await pilot.press("m")
        await until(pilot, lambda: store.round_count("ann") == 1)
        from turing_tui.backends.choose import GeneratorSpec

        row = store.rounds()[0]
        assert row["model"] == GeneratorSpec("local", str(tiny_checkpoint)).model_id_hint()
        assert store.pool_size("vc", row["model"], unshown_only=False) >= 1
        assert "Round 1" not in screen_text(app) and ("Right!" in screen_text(app) or "Wrong." in screen_text(app))


async def test_first_run_fetches_the_category_then_plays(paths: Paths, store: Store, tmp_path: Path) -> None:
    """No vc tweets yet: the screen downloads them from a real local mirror, then deals."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from turing_tui.corpus.twint import write_jsonl

    from tests.conftest import make_tweet

    mirror = tmp_path / "mirror"
    write_jsonl(mirror / "vc" / "000.txt", [make_tweet(i) for i in range(100)])
    write_jsonl(mirror / "vc" / "001.txt", [make_tweet(i) for i in range(100, 130)])

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gen = ScriptedGenerator()
        fill_pool(store, "vc", gen, 10)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        app = build_app(paths=paths, screen="play", store=store, generator=gen, category="vc", player="ann", seed=1, fetch_base_url=url)
        async with app.run_test(size=(100, 40)) as pilot:
            await until(pilot, lambda: app.screen.current is not None, timeout=30)
            assert len(app.screen.dealer.corpus) == 130
        assert sorted(p.name for p in paths.category_dir("vc").glob("*.txt")) == ["000.txt", "001.txt"]
    finally:
        server.shutdown()
        server.server_close()


async def test_command_palette_opens_every_screen(game: Callable[..., TuringApp]) -> None:
    app = game()
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: app.screen.current is not None)
        titles = {c.title: c for c in app.get_system_commands(app.screen)}
        for name in ("Home", "Play", "Leaderboard", "Train", "Scrape", "Deploy"):
            assert f"Open {name}" in titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"open leaderboard")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "LeaderboardScreen")


async def test_home_plays_against_an_endpoint_typed_in(paths: Paths, store: Store) -> None:
    """Home -> generator "An endpoint" -> URL -> play: rounds come from a real HTTP server."""
    from textual.widgets import Input, Select

    from tests.gamekit import ModelServer

    write_corpus(paths, n=30)
    with ModelServer() as server:
        app = build_app(paths=paths, screen="home", store=store)
        async with app.run_test(size=(110, 40)) as pilot:
            await until(pilot, lambda: "30 tweets" in screen_text(app))
            home = app.screen
            home.query_one("#player", Input).value = "eve"
            home.query_one("#generator", Select).value = "endpoint"
            await pilot.pause()
            assert home.query_one("#endpoint-row").has_class("shown")
            home.query_one("#endpoint", Input).value = server.url
            await pilot.click("#play")
            await until(pilot, lambda: type(app.screen).__name__ == "PlayScreen")
            play = app.screen
            # Answer until a machine round shows the endpoint's tweet and model in the reveal.
            for _ in range(20):
                await until(pilot, lambda: play.current is not None and not play.answered, timeout=15)
                round_ = play.current
                await pilot.press("m")
                await pilot.pause(0.05)
                if round_.truth == "machine":
                    assert "Served tweet" in round_.text and "openai:tiny-vc" in screen_text(app)
                    await until(pilot, lambda: store.round_count("eve") == round_.number)
                    break
                await pilot.press("n")
            else:
                raise AssertionError("twenty fair coins never picked the machine")
        assert any(path == "/v1/completions" for _, path, _, _ in server.requests)
    assert store.get_setting("player") == "eve"
    assert store.rounds("eve")[-1]["model"] == "openai:tiny-vc"
