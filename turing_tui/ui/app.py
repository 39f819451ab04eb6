"""The Textual application and the one factory that builds it.

``build_app`` is what the CLI and the tests call: it takes the dependencies (paths, and
optionally a store or generator for tests) and the screen to open. Workbench screens
(train, scrape, deploy) live in ``ui/screens/<name>.py`` and are imported on demand.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from turing_tui.paths import Paths

# name -> (module, class). A screen class takes keyword options only.
SCREENS: dict[str, tuple[str, str]] = {
    "train": ("turing_tui.ui.screens.train", "TrainScreen"),
    "scrape": ("turing_tui.ui.screens.scrape", "ScrapeScreen"),
    "deploy": ("turing_tui.ui.screens.deploy", "DeployScreen"),
}


class PlaceholderScreen(Screen[None]):
    """Stands in for a screen whose module is not there yet."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

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

    def __init__(self, *, paths: Paths, screen: str = "home", options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.paths = paths
        self.start_screen = screen
        self.options = options or {}

    def make_screen(self, name: str, **options: Any) -> Screen[Any]:
        module_name, class_name = SCREENS.get(name, ("", ""))
        try:
            module = importlib.import_module(module_name)
            return getattr(module, class_name)(**options)
        except (ImportError, AttributeError, ValueError):
            return PlaceholderScreen(name.title())

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(self.start_screen, **self.options))


def build_app(*, paths: Paths, screen: str = "home", **options: Any) -> TuringApp:
    """Build the app from its dependencies; the CLI and the tests both call this."""
    return TuringApp(paths=paths, screen=screen, options=options)
