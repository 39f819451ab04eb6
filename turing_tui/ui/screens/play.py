"""The Play screen: one tweet at a time, guess Human or Machine, see who really wrote it.

The screen is a thin shell over :mod:`turing_tui.game.rounds`. A worker thread loads the
category (fetching it on first run), opens the generator through a
:class:`~turing_tui.game.rounds.FakeSupply`, and deals rounds; the next round is dealt
while the player reads the current one, so pressing ``n`` shows it at once. Each guess is
committed to the store by a short worker the moment it is made.
"""

from __future__ import annotations

import gc
import getpass
import threading
import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from turing_tui.backends.base import TweetGenerator
from turing_tui.errors import UserError
from turing_tui.game.rounds import (
    HUMAN,
    MACHINE,
    FakeSupply,
    GeneratorFailed,
    GeneratorReady,
    PoolRefilled,
    Round,
    RoundDealer,
    SupplyEvent,
)
from turing_tui.ui.messages import GameFailed, GameReady, GameStatus, RoundDealt, RoundScored
from turing_tui.ui.widgets.score_bar import ScoreBar
from turing_tui.ui.widgets.tweet_card import TweetCard


def describe_sampling(sampling: dict[str, Any]) -> str:
    keys = ("temperature", "top_p", "top_k", "max_new_tokens", "shots", "seed")
    shown = [f"{k} {sampling[k]}" for k in keys if sampling.get(k) is not None]
    shown += [f"{k} {v}" for k, v in sampling.items() if k not in keys and v is not None]
    return ", ".join(shown) or "default sampling"


def reveal_text(round_: Round) -> Text:
    """The reveal under the card: the real author, or the model and how it sampled."""
    text = Text()
    if round_.human is not None:
        tweet = round_.human
        text.append("Written by ", style="bold")
        text.append(f"{tweet.name or tweet.username} ({tweet.handle})")
        when = " ".join(p for p in (tweet.date, tweet.time) if p)
        text.append(f"\n♥ {tweet.likes:,} likes" + (f" · {when}" if when else ""))
        if tweet.link:
            text.append("\n")
            text.append(tweet.link, style=f"link {tweet.link}" if tweet.link.startswith("https://") else "")
    elif round_.fake is not None:
        fake = round_.fake
        text.append("Written by the model ", style="bold")
        text.append(fake.model)
        if fake.source == "few-shot":
            text.append(f"\nbase {fake.base or '?'} prompted with real tweets (few-shot), not fine-tuned")
        else:
            via = {"local": "a local checkpoint", "modelzoo": "a Model Zoo endpoint", "openai": "an OpenAI-compatible endpoint"}
            origin = "trained from scratch" if fake.base == "scratch" else f"fine-tuned from {fake.base or 'an unknown base'}"
            text.append(f"\n{origin}, via {via.get(fake.source, fake.source or 'a generator')}")
        text.append(f"\nsampling: {describe_sampling(fake.sampling)}")
    return text


class PlayScreen(Screen[None]):
    """Guess whether a person or a model wrote each tweet."""

    BINDINGS = [
        Binding("h,left", "guess('human')", "Human", key_display="h/←"),
        Binding("m,right", "guess('machine')", "Machine", key_display="m/→"),
        Binding("n,space,enter", "next_round", "Next", key_display="n/space/enter"),
        Binding("l", "leaderboard", "Leaderboard"),
        Binding("q,escape", "back", "Back", key_display="q/esc"),
    ]

    DEFAULT_CSS = """
    PlayScreen #stage { height: 1fr; padding: 1 2; }
    PlayScreen #banner { width: 72; max-width: 100%; height: 1; margin-top: 1; text-style: bold; }
    PlayScreen #banner.right { color: $success; }
    PlayScreen #banner.wrong { color: $error; }
    PlayScreen #reveal { width: 72; max-width: 100%; height: 4; color: $text-muted; }
    PlayScreen #problem { width: 72; max-width: 100%; height: auto; margin-top: 1; color: $error; display: none; }
    PlayScreen #problem.shown { display: block; }
    PlayScreen #guess-buttons { width: 72; max-width: 100%; height: 3; margin-top: 1; }
    PlayScreen #guess-buttons Button { width: 1fr; margin: 0 1; }
    PlayScreen #status { height: 1; padding: 0 1; color: $text-muted; background: $panel; }
    PlayScreen #status.warning { color: $warning; }
    """

    def __init__(
        self,
        *,
        category: str = "vc",
        player: str | None = None,
        seed: int | None = None,
        spec: Any = None,
        generator: TweetGenerator | None = None,
        model: str | None = None,
        endpoint: str | None = None,
        protocol: str | None = None,
        api_key: str | None = None,
        model_name: str | None = None,
        pool_low_water: int = 8,
        pool_batch: int = 8,
        fetch_base_url: str | None = None,
    ) -> None:
        super().__init__()
        self.category = category
        self.player_option = player
        self.seed = seed
        self.spec = spec
        self.generator_option = generator
        self.choose_options = dict(model=model, endpoint=endpoint, protocol=protocol, api_key=api_key, model_name=model_name)
        self.pool_low_water = pool_low_water
        self.pool_batch = pool_batch
        self.fetch_base_url = fetch_base_url
        self.player = ""
        self.dealer: RoundDealer | None = None
        self.supply: FakeSupply | None = None
        self.current: Round | None = None
        self.pending: Round | None = None
        self.answered = False
        self.waiting_for_next = False
        self.shown_at = 0.0

    # -- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield ScoreBar(id="score")
        with VerticalScroll(id="stage"):
            with Center():
                yield TweetCard(id="card")
            with Center():
                yield Static("", id="banner")
            with Center():
                yield Static("", id="reveal")
            with Center():
                yield Static("", id="problem")
            with Center():
                with Horizontal(id="guess-buttons"):
                    yield Button(Text("Human  [h / ←]"), id="guess-human", variant="success")
                    yield Button(Text("Machine  [m / →]"), id="guess-machine", variant="error")
        yield Static("Loading tweets…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        # Buttons are for the mouse (and `textual serve`); keys stay with the screen, so
        # Enter means "next round" and never presses a focused button.
        for button in self.query(Button):
            button.can_focus = False
        self.query_one("#stage").can_focus = False  # arrows are guesses, not scrolling
        store = self.app.store  # type: ignore[attr-defined]
        self.player = (self.player_option or store.get_setting("player") or getpass.getuser() or "player").strip()
        self.title = f"turing-tui · {self.category}"
        self.sub_title = f"playing as {self.player}"
        self.prepare()

    # -- workers ----------------------------------------------------------------------
    def _status(self, text: str, warning: bool = False) -> None:
        self.post_message(GameStatus(text, warning))

    def _on_supply(self, event: SupplyEvent) -> None:
        """Called in the supply thread: only post messages from here."""
        if isinstance(event, GeneratorFailed):
            if event.retry_in is None:
                self.post_message(GameFailed(event.message))
            else:
                self._status(f"Generator problem: {event.message} Retrying in {event.retry_in:.0f} s.", True)
        elif isinstance(event, PoolRefilled):
            self._status(f"{event.pool_size} machine tweets ready.")
        elif isinstance(event, GeneratorReady):
            self._status(f"Generator ready: {event.model_id} ({event.pool_size} machine tweets pooled).")

    def _load_corpus(self) -> Any:
        from turing_tui.corpus.load import load_category
        from turing_tui.errors import UnknownCategory
        from turing_tui.paths import PUBLISHED_CATEGORIES

        paths = self.app.paths  # type: ignore[attr-defined]
        try:
            return load_category(paths, self.category)
        except UnknownCategory:
            if self.category not in PUBLISHED_CATEGORIES:
                raise
        # First run: fetch the published tweets instead of failing.
        from turing_tui.corpus.fetch import PartitionFetched, fetch_category

        worker = get_current_worker()
        done = 0

        def progress(event: object) -> None:
            nonlocal done
            if isinstance(event, PartitionFetched):
                done += 1
                self._status(f"First run: downloading the {self.category} tweets… {done} files")

        self._status(f"First run: downloading the {self.category} tweets…")
        fetch_category(
            paths, self.category, base_url=self.fetch_base_url, on_event=progress, should_stop=lambda: worker.is_cancelled
        )
        return load_category(paths, self.category)

    @work(thread=True, exclusive=True, exit_on_error=False, group="deal")
    def prepare(self) -> None:
        """Load tweets, start the machine-tweet supply, then deal the first round."""
        from turing_tui.backends.choose import choose_generator, open_generator

        worker = get_current_worker()
        store = self.app.store  # type: ignore[attr-defined]
        try:
            corpus = self._load_corpus()
            if worker.is_cancelled:
                return
            # ~50k tweets live as long as the game: move them out of the collector's sight.
            # Without this each full collection walks them all, a ~150 ms stall that lands
            # on some keypress (measured with benchmarks/bench_game.py).
            gc.freeze()
            texts = [t.text for t in corpus.tweets]
            generator = self.generator_option or getattr(self.app, "generator", None)
            if generator is not None:
                label, model_id = getattr(generator, "label", generator.model_id), generator.model_id

                def opener() -> TweetGenerator:
                    return generator
            else:
                spec = self.spec or choose_generator(self.app.paths, self.category, **self.choose_options)  # type: ignore[attr-defined]
                label, model_id = spec.label, spec.model_id_hint()

                def opener() -> TweetGenerator:
                    return open_generator(spec, category=self.category, training_texts=texts, seed=self.seed)
        except UserError as exc:
            self.post_message(GameFailed(str(exc)))
            return
        store.set_setting("player", self.player)
        store.set_setting("category", self.category)
        self.supply = FakeSupply(
            store,
            self.category,
            opener,
            model_id=model_id,
            player=self.player,
            owns_generator=self.generator_option is None and getattr(self.app, "generator", None) is None,
            low_water=self.pool_low_water,
            batch=self.pool_batch,
            training_texts=texts,
            on_event=self._on_supply,
        ).start()
        self.dealer = RoundDealer(store, corpus, self.supply, self.player, seed=self.seed)
        self.post_message(GameReady(len(corpus), self.dealer.unseen_human_tweets, label))
        self._deal(worker)

    def _deal(self, worker: Worker[Any]) -> None:
        dealer, supply = self.dealer, self.supply
        assert dealer is not None and supply is not None
        while not worker.is_cancelled:
            round_ = dealer.deal(timeout=0.5, cancelled=lambda: worker.is_cancelled)
            if round_ is not None:
                self.post_message(RoundDealt(round_))
                return
            if supply.failed is not None:
                return  # GameFailed was posted by the supply's event
            if self.waiting_for_next or self.current is None:
                self._status(f"Waiting for a machine tweet: {supply.status}.", True)

    @work(thread=True, exclusive=True, exit_on_error=False, group="deal")
    def deal_next(self) -> None:
        self._deal(get_current_worker())

    @work(thread=True, exit_on_error=False, group="answer")
    def record(self, round_: Round, guess: str, answer_ms: int) -> None:
        assert self.dealer is not None
        self.post_message(RoundScored(self.dealer.answer(round_, guess, answer_ms)))  # type: ignore[arg-type]

    # -- messages -----------------------------------------------------------------------
    def on_game_ready(self, message: GameReady) -> None:
        self._set_status(f"{message.tweets:,} human tweets ({message.unseen:,} new to you) · opponent: {message.generator}")

    def on_round_dealt(self, message: RoundDealt) -> None:
        if self.current is None or (self.answered and self.waiting_for_next):
            self.show(message.round)
        else:
            self.pending = message.round

    def on_round_scored(self, message: RoundScored) -> None:
        assert self.dealer is not None
        self.query_one(ScoreBar).update_score(self.dealer.score)

    def on_game_status(self, message: GameStatus) -> None:
        # While a tweet is on screen the status line holds the round's hint; background
        # news (a refill) only shows while the player waits, problems always show.
        if message.warning or self.current is None or self.waiting_for_next:
            self._set_status(message.text, message.warning)

    def on_game_failed(self, message: GameFailed) -> None:
        self._set_status(message.text, True)  # with no round yet, this also fills the card
        if self.current is None:
            self.query_one("#guess-buttons").display = False
        else:  # the round on screen can still be answered; say why none will follow
            problem = self.query_one("#problem", Static)
            problem.update(Text(message.text))
            problem.set_classes("shown")
        self.notify(message.text, title="The game cannot go on", severity="error", timeout=15, markup=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            text = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
            self.post_message(GameFailed(text))

    def _set_status(self, text: str, warning: bool = False) -> None:
        if self.current is None:
            self.query_one(TweetCard).waiting(text)
        status = self.query_one("#status", Static)
        status.update(Text(text), layout=False)
        status.set_class(warning, "warning")

    # -- the round ----------------------------------------------------------------------
    def show(self, round_: Round) -> None:
        self.current, self.pending = round_, None
        self.answered = self.waiting_for_next = False
        # Banner and reveal keep their place (fixed heights) and are only emptied, so a new
        # round changes text, not layout: keypress to next tweet stays one cheap frame.
        self.query_one(TweetCard).show(round_)
        self.query_one("#banner", Static).update("", layout=False)
        self.query_one("#reveal", Static).update("", layout=False)
        self._set_status(f"Round {round_.number}: who wrote this? h = Human, m = Machine")
        self.shown_at = time.monotonic()
        # Deal the next round while the player reads this one, once this frame is out
        # (the dealing thread would otherwise compete with the render for the GIL).
        self.call_after_refresh(self.deal_next)

    def action_guess(self, guess: str) -> None:
        round_ = self.current
        if round_ is None or self.answered or guess not in (HUMAN, MACHINE):
            return
        answer_ms = int((time.monotonic() - self.shown_at) * 1000)
        self.answered = True
        self.record(round_, guess, answer_ms)
        right = guess == round_.truth
        kind = "a human" if round_.truth == HUMAN else "a machine"
        banner = self.query_one("#banner", Static)
        banner.update(Text(("✔ Right! " if right else "✘ Wrong. ") + f"It was {kind}."), layout=False)
        banner.set_classes("right" if right else "wrong")
        self.query_one(TweetCard).reveal(round_)
        self.query_one("#reveal", Static).update(reveal_text(round_), layout=False)
        self._set_status("n, space or enter: next tweet · l: leaderboard · q: back")

    def action_next_round(self) -> None:
        if self.current is None or not self.answered:
            return
        if self.pending is not None:
            self.show(self.pending)
        else:
            self.waiting_for_next = True
            self._set_status("Getting the next tweet…")

    def action_back(self) -> None:
        self.app.go_back()  # type: ignore[attr-defined]

    def action_leaderboard(self) -> None:
        self.app.open_screen("leaderboard", category=self.category)  # type: ignore[attr-defined]

    @on(Button.Pressed, "#guess-human")
    def _human_pressed(self) -> None:
        self.action_guess(HUMAN)

    @on(Button.Pressed, "#guess-machine")
    def _machine_pressed(self) -> None:
        self.action_guess(MACHINE)

    def on_unmount(self) -> None:
        supply, self.supply = self.supply, None
        if supply is not None:  # joining the supply thread may take a moment: not on the UI thread
            threading.Thread(target=supply.close, name="close-supply", daemon=True).start()
