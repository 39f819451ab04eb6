"""The Textual application and the one factory that builds it.

``build_app`` is what the CLI and the tests call: it takes the dependencies (paths, and
optionally a store or a generator, which tests inject) and the screen to open. Screens
live in ``ui/screens/<name>.py``, are listed in :data:`SCREENS`, take keyword options
only, and are imported on demand; a screen whose module is missing shows a placeholder.
Every screen is also reachable from the command palette (ctrl+p).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from turing_tui.backends.base import TweetGenerator
from turing_tui.paths import Paths
from turing_tui.store.db import Store

# name -> (module, class). A screen class takes keyword options only.
SCREENS: dict[str, tuple[str, str]] = {
    "home": ("turing_tui.ui.screens.home", "HomeScreen"),
    "play": ("turing_tui.ui.screens.play", "PlayScreen"),
    "leaderboard": ("turing_tui.ui.screens.leaderboard", "LeaderboardScreen"),
    "train": ("turing_tui.ui.screens.train", "TrainScreen"),
    "scrape": ("turing_tui.ui.screens.scrape", "ScrapeScreen"),
    "deploy": ("turing_tui.ui.screens.deploy", "DeployScreen"),
}

# What the command palette says about each screen.
SCREEN_HELP: dict[str, str] = {
    "home": "Pick a category, a player name and a generator",
    "play": "Play the game in the last category played",
    "leaderboard": "Players' accuracy and models' fool rates",
    "train": "Fine-tune a model on a category",
    "scrape": "Collect human tweets",
    "deploy": "Serve or deploy a model",
}


class PlaceholderScreen(Screen[None]):
    """Stands in for a screen whose module is not there yet."""

    BINDINGS = [Binding("escape,q", "app.go_back", "Back")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{self.title_text}: coming soon.", id="placeholder")
        yield Footer()


class TuringApp(App[int]):
    """The turing-tui app."""

    TITLE = "turing-tui"
    CSS_PATH = Path(__file__).with_name("app.tcss")

    def __init__(
        self,
        *,
        paths: Paths,
        screen: str = "home",
        options: dict[str, Any] | None = None,
        store: Store | None = None,
        generator: TweetGenerator | None = None,
    ) -> None:
        super().__init__()
        self.paths = paths
        self.start_screen = screen
        self.options = options or {}
        self.generator = generator  # injected by tests; otherwise each game picks its own
        self._store = store
        self._owns_store = store is None

    @property
    def store(self) -> Store:
        """The database, opened on first use (so the home screen of a bare root is instant)."""
        if self._store is None:
            self._store = Store(self.paths.db_path)
        return self._store

    def make_screen(self, name: str, **options: Any) -> Screen[Any]:
        module_name, class_name = SCREENS.get(name, ("", ""))
        try:
            module = importlib.import_module(module_name)
            return getattr(module, class_name)(**options)
        except (ImportError, AttributeError, ValueError):
            if name in ("home", "play", "leaderboard"):
                raise  # our own screens must never hide their errors
            return PlaceholderScreen(name.title())

    def open_screen(self, name: str, **options: Any) -> None:
        """Push screen ``name`` built with ``options``."""
        if name == "play" and "category" not in options:
            options["category"] = self.store.get_setting("category") or "vc"
        self.push_screen(self.make_screen(name, **options))

    def go_back(self) -> None:
        """Back to the previous screen; from the first screen, back to Home (or quit Home)."""
        if len(self.screen_stack) > 2:
            self.pop_screen()
        elif self.screen.__class__.__name__ != "HomeScreen":
            self.switch_screen(self.make_screen("home"))
        else:
            self.exit(0)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name, text in SCREEN_HELP.items():
            yield SystemCommand(f"Open {name.title()}", text, partial(self.open_screen, name))

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(self.start_screen, **self.options))

    def on_unmount(self) -> None:
        if self._store is not None and self._owns_store:
            self._store.close()


def build_app(
    *,
    paths: Paths,
    screen: str = "home",
    store: Store | None = None,
    generator: TweetGenerator | None = None,
    **options: Any,
) -> TuringApp:
    """Build the app from its dependencies; the CLI and the tests both call this.

    ``store`` and ``generator`` are injected by tests (a temp database, a fake
    generator); ``options`` go to the first screen's constructor.
    """
    return TuringApp(paths=paths, screen=screen, options=options, store=store, generator=generator)
