"""The Leaderboard screen: players per category and the model board, with intervals.

Reads the store in a worker (a big database must not freeze the UI) and shows three
tables: players (rank, rounds, accuracy with its 95% Wilson interval, best streak), models
(fool rate with its interval) and the fakes that fooled the most. Names and tweets are
shown literally, never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Select, Static

from turing_tui.game.leaderboard import MIN_ROUNDS_TO_RANK, FoolingFake, FoolRate, PlayerStanding

PLAYER_COLUMNS = ("#", "Category", "Player", "Rounds", "Accuracy", "95% interval", "Best streak", "Human", "Machine")
MODEL_COLUMNS = ("Category", "Model", "Rounds", "Fooled", "Fool rate", "95% interval")


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


class LeaderboardScreen(Screen[None]):
    """Who tells humans from machines best, and which model fools players most."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("q,escape", "back", "Back"),
    ]

    DEFAULT_CSS = """
    LeaderboardScreen #board { padding: 0 1; }
    LeaderboardScreen #category { width: 40; margin: 1 0 0 0; }
    LeaderboardScreen .board-title { text-style: bold; margin-top: 1; }
    LeaderboardScreen DataTable { height: auto; max-height: 16; }
    LeaderboardScreen #fooling { height: auto; color: $text-muted; }
    """

    @dataclass
    class Loaded(Message):
        """The boards were read from the store."""

        categories: list[str]
        players: list[PlayerStanding]
        models: list[FoolRate]
        fakes: list[FoolingFake]

    def __init__(self, *, category: str | None = None, min_rounds: int = MIN_ROUNDS_TO_RANK) -> None:
        super().__init__()
        self.category = category
        self.min_rounds = min_rounds
        self._categories: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="board"):
            yield Select([], prompt="All categories", id="category", allow_blank=True)
            yield Static(f"Players (ranked after {self.min_rounds} rounds, by the lower bound of the 95% interval)", classes="board-title")
            yield DataTable(id="players", zebra_stripes=True, cursor_type="row")
            yield Static("Models: share of their tweets judged human (fool rate)", classes="board-title")
            yield DataTable(id="models", zebra_stripes=True, cursor_type="row")
            yield Static("The fakes that fooled the most", classes="board-title")
            yield Static("", id="fooling")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "turing-tui · leaderboard"
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load(self) -> None:
        from turing_tui.game.leaderboard import fooling_fakes, model_board, player_board

        store = self.app.store  # type: ignore[attr-defined]
        categories = sorted({row[0] for row in store.query("SELECT DISTINCT category FROM rounds")})
        self.post_message(
            self.Loaded(
                categories,
                player_board(store, self.category, self.min_rounds),
                model_board(store, self.category),
                fooling_fakes(store, self.category, limit=5),
            )
        )

    def on_leaderboard_screen_loaded(self, message: Loaded) -> None:
        select = self.query_one("#category", Select)
        if message.categories != self._categories:
            self._categories = message.categories
            with self.prevent(Select.Changed):
                select.set_options([(c, c) for c in message.categories])
                if self.category in message.categories:
                    select.value = self.category
        # Columns are rebuilt with the rows so their widths are measured in one go.
        players = self.query_one("#players", DataTable)
        players.clear(columns=True)
        players.add_columns(*PLAYER_COLUMNS)
        for p in message.players:
            low, high = p.interval
            players.add_row(
                str(p.rank) if p.rank else "–",
                Text(p.category),
                Text(p.player),
                str(p.rounds),
                _pct(p.accuracy),
                f"{_pct(low)}–{_pct(high)}",
                str(p.best_streak),
                f"{p.human_correct}/{p.human_rounds}",
                f"{p.machine_correct}/{p.machine_rounds}",
            )
        models = self.query_one("#models", DataTable)
        models.clear(columns=True)
        models.add_columns(*MODEL_COLUMNS)
        for m in message.models:
            low, high = m.interval
            models.add_row(Text(m.category), Text(m.model), str(m.rounds), str(m.fooled), _pct(m.fool_rate), f"{_pct(low)}–{_pct(high)}")
        fooling = Text()
        for item in message.fakes:
            fooling.append(f"{item.fooled}/{item.judged} fooled · ", style="bold")
            fooling.append(f"{item.fake.model}: ")
            fooling.append(item.fake.text.replace("\n", " ") + "\n")
        self.query_one("#fooling", Static).update(fooling or Text("No fake has fooled anyone yet."))
        if not message.players:
            players.add_row("", "", Text("No rounds yet: play a game!"), "", "", "", "", "", "")

    @on(Select.Changed, "#category")
    def _category_changed(self, event: Select.Changed) -> None:
        self.category = None if event.value is Select.BLANK else str(event.value)
        self.load()

    def action_refresh(self) -> None:
        self.load()

    def action_back(self) -> None:
        self.app.go_back()  # type: ignore[attr-defined]
