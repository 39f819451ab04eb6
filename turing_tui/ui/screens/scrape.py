"""The Scrape screen: edit a category's handle list, pick a backend, watch every handle.

A thin shell over :mod:`turing_tui.scrape.run` — the same plan and engine as
``turing-tui scrape`` — run in a worker thread that turns the engine's progress events
into messages. One table row per handle shows pages, posts read, tweets added, drops by
reason and its state in words; totals and errors sit below. Cancel stops the run soon
after, keeping everything already read and each handle's resume point, so the next Start
carries on where this one stopped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, RichLog, Select, Static, TextArea
from textual.worker import get_current_worker

from turing_tui.errors import UserError
from turing_tui.net import Backoff
from turing_tui.scrape.run import DEFAULT_CONCURRENCY, DEFAULT_LIMIT, HandleReport, ScrapePlan, ScrapeSummary, dropped_words

# The backend for bare lines (a prefixed line keeps its own).
BACKEND_CHOICES = [
    ("X API (default)", "auto"),
    ("Bluesky: name.bsky.social", "bluesky"),
    ("Mastodon: user@instance", "mastodon"),
    ("X API: X_BEARER_TOKEN", "x"),
    ("twint (legacy)", "twint"),
]
NEW_LIST = """\
# One account a line; '#' starts a comment. A prefix picks the network:
#   bsky:name.bsky.social   mastodon:user@instance   x:handle   twint:handle
# A bare line is a Twitter handle and uses the backend chosen on the left.
"""
STATE_STYLES = {"failed": "red", "cancelled": "yellow", "retrying": "yellow", "waiting": "dim", "done": "green"}
COLUMNS = (("handle", "Handle"), ("state", "State"), ("pages", "Pages"), ("read", "Read"), ("added", "Added"), ("dropped", "Dropped"))


def _dropped(report: HandleReport) -> str:
    return dropped_words(report.filter)


class ScrapeScreen(Screen[None]):
    """Collect human tweets for a category from a list of accounts."""

    BINDINGS = [
        Binding("ctrl+r", "start", "Start"),
        Binding("ctrl+s", "save", "Save list"),
        Binding("escape", "cancel_or_back", "Cancel/Back"),
    ]

    DEFAULT_CSS = """
    ScrapeScreen #scrape-body { height: 1fr; }
    ScrapeScreen #form { width: 38; padding: 0 1; border-right: solid $panel-lighten-2; }
    ScrapeScreen #form Label { margin-top: 1; text-style: bold; }
    ScrapeScreen #form Input, ScrapeScreen #form Select { width: 100%; }
    ScrapeScreen #handles { height: 1fr; min-height: 6; }
    ScrapeScreen #list-status { height: auto; color: $text-muted; }
    ScrapeScreen #list-status.bad { color: $error; }
    ScrapeScreen #actions { height: 3; margin-top: 1; }
    ScrapeScreen #actions Button { margin-right: 1; min-width: 9; }
    ScrapeScreen #watch { padding: 0 1; }
    ScrapeScreen #table { height: 1fr; }
    ScrapeScreen #totals { height: auto; margin: 1 0; }
    ScrapeScreen #totals.running { color: $accent; }
    ScrapeScreen #log { height: 9; border: round $panel-lighten-2; }
    """

    # -- messages (posted by the worker) -------------------------------------------------
    @dataclass
    class HandleUpdated(Message):
        """A handle's row changed; a flood for one handle collapses to the newest."""

        report: HandleReport

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ScrapeScreen.HandleUpdated) and message.report.source.key == self.report.source.key

    @dataclass
    class ScrapeFinished(Message):
        summary: ScrapeSummary

    @dataclass
    class ScrapeFailed(Message):
        text: str

    def __init__(
        self,
        *,
        category: str | None = None,
        backend: str | None = None,
        base_url: str | None = None,
        limit: int = DEFAULT_LIMIT,
        concurrency: int = DEFAULT_CONCURRENCY,
        since: str | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__()
        self.initial_category = category
        self.initial_backend = backend if backend in {v for _, v in BACKEND_CHOICES} else "auto"
        self.base_url = base_url
        self.initial_limit = limit
        self.concurrency = concurrency
        self.since = since
        self.backoff = backoff
        self.cancel_flag = threading.Event()
        self.running = False
        self.loaded_text = ""
        self.rows: dict[str, HandleReport] = {}
        self.summary: ScrapeSummary | None = None

    # -- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="scrape-body"):
            with Vertical(id="form"):
                yield Label("Category")
                yield Input(placeholder="letters, digits, - or _", id="category")
                yield Label("Backend for bare lines")
                yield Select(BACKEND_CHOICES, value=self.initial_backend, allow_blank=False, id="backend")
                yield Label("Posts per handle (0: no limit)")
                yield Input(str(self.initial_limit), type="integer", id="limit")
                yield Label("Handle list")
                yield TextArea("", id="handles", soft_wrap=False, show_line_numbers=True)
                yield Static("", id="list-status")
                with Horizontal(id="actions"):
                    yield Button("Start", id="start", variant="primary")
                    yield Button("Save", id="save")
                    yield Button("Cancel", id="cancel", disabled=True)
            with Vertical(id="watch"):
                yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
                yield Static("Edit the list, pick a backend, then Start (ctrl+r).", id="totals")
                yield RichLog(id="log", wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Scrape"
        self.sub_title = "collect human tweets from a list of accounts"
        table = self.query_one("#table", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        category = self.initial_category or self._default_category()
        self.query_one("#category", Input).value = category
        self._load_list(category)

    def _default_category(self) -> str:
        paths = self.app.paths  # type: ignore[attr-defined]
        for name in paths.categories():
            if paths.own_sources_file(name).exists():
                return name
        return "mine"

    # -- the handle list -----------------------------------------------------------------
    def _category(self) -> str | None:
        from turing_tui.paths import CATEGORY_RE

        name = self.query_one("#category", Input).value.strip()
        return name if CATEGORY_RE.match(name) else None

    def _load_list(self, category: str) -> None:
        paths = self.app.paths  # type: ignore[attr-defined]
        try:
            path = paths.sources_file(category)
            text = path.read_text(encoding="utf-8") if path.exists() else NEW_LIST
        except (UserError, OSError, UnicodeDecodeError) as exc:
            self._log(f"Could not read the handle list: {exc}")
            text = NEW_LIST
        self.loaded_text = text
        self.query_one("#handles", TextArea).text = text
        self._check_list()

    def _check_list(self) -> list[Any] | None:
        """Parse the list as typed; show how many accounts it names, or what is wrong."""
        from turing_tui.scrape.sources import parse_sources

        status = self.query_one("#list-status", Static)
        category = self._category()
        if category is None:
            status.update("The category needs 1-64 letters, digits, '-' or '_'.")
            status.add_class("bad")
            return None
        backend = self.query_one("#backend", Select).value
        try:
            sources = parse_sources(
                self.query_one("#handles", TextArea).text,
                default_backend="x" if backend in ("auto", Select.BLANK) else str(backend),
                origin="The list",
            )
        except UserError as exc:
            status.update(Text(str(exc)))
            status.add_class("bad")
            return None
        status.remove_class("bad")
        paths = self.app.paths  # type: ignore[attr-defined]
        edited = " (edited, not saved)" if self.query_one("#handles", TextArea).text != self.loaded_text else ""
        counts: dict[str, int] = {}
        for s in sources:
            counts[s.backend] = counts.get(s.backend, 0) + 1
        by = ", ".join(f"{n} {b}" for b, n in sorted(counts.items())) or "no accounts yet"
        status.update(Text(f"{by} · {paths.own_sources_file(category)}{edited}"))
        return sources

    @on(Input.Submitted, "#category")
    @on(Input.Blurred, "#category")
    def _category_chosen(self) -> None:
        category = self._category()
        if category is not None and not self.running:
            self._load_list(category)
        else:
            self._check_list()

    @on(TextArea.Changed, "#handles")
    @on(Select.Changed, "#backend")
    def _list_changed(self) -> None:
        self._check_list()

    @on(Button.Pressed, "#save")
    def action_save(self) -> bool:
        """Write the list as edited to sources/<category>.txt (never the bundled copy)."""
        from turing_tui.corpus.twint import atomic_write_bytes

        category = self._category()
        if category is None or self._check_list() is None:
            self.notify("Fix the category or the list first.", severity="error")
            return False
        paths = self.app.paths  # type: ignore[attr-defined]
        text = self.query_one("#handles", TextArea).text
        if not text.endswith("\n"):
            text += "\n"
        path = paths.own_sources_file(category)
        try:
            atomic_write_bytes(path, text.encode("utf-8"))
        except OSError as exc:
            self.notify(f"Could not save {path}: {exc}", severity="error", markup=False)
            return False
        self.loaded_text = self.query_one("#handles", TextArea).text
        self._check_list()
        self._log(f"Saved the handle list to {path}.")
        return True

    # -- running -------------------------------------------------------------------------
    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.running:
            return
        category = self._category()
        if category is None or self._check_list() is None:
            self.notify("Fix the category or the list first.", severity="error")
            return
        edited = self.query_one("#handles", TextArea).text != self.loaded_text
        paths = self.app.paths  # type: ignore[attr-defined]
        if (edited or not paths.sources_file(category).exists()) and not self.action_save():
            return
        from turing_tui.scrape.run import plan_scrape

        backend = self.query_one("#backend", Select).value
        limit_text = self.query_one("#limit", Input).value.strip() or "0"
        try:
            limit = int(limit_text)
            plan = plan_scrape(
                paths,
                category,
                backend=None if backend in ("auto", Select.BLANK) else str(backend),
                limit=limit,
                since=self.since,
                base_url=self.base_url,
                concurrency=self.concurrency,
                backoff=self.backoff,
            )
        except ValueError:
            self.notify("Posts per handle must be a whole number (0 = no limit).", severity="error")
            return
        except UserError as exc:
            self._log(str(exc))
            self.notify(str(exc), severity="error", timeout=8, markup=False)
            return
        table = self.query_one("#table", DataTable)
        table.clear()
        self.rows = {}
        for source in plan.sources:
            report = HandleReport(source)
            self.rows[source.key] = report
            table.add_row(*self._cells(report), key=source.key)
        self.cancel_flag.clear()
        self.summary = None
        self._set_running(True)
        self._show_totals()
        self.run_scrape(plan)

    @work(thread=True, exclusive=True, exit_on_error=False, group="scrape")
    def run_scrape(self, plan: ScrapePlan) -> None:
        from turing_tui.scrape.run import run_scrape

        worker = get_current_worker()
        paths = self.app.paths  # type: ignore[attr-defined]
        try:
            summary = run_scrape(
                paths,
                plan,
                on_progress=lambda event: self.post_message(self.HandleUpdated(event.report)),
                should_stop=lambda: worker.is_cancelled or self.cancel_flag.is_set(),
            )
        except UserError as exc:
            self.post_message(self.ScrapeFailed(str(exc)))
        except Exception as exc:  # keep the app alive; say what broke
            self.post_message(self.ScrapeFailed(f"The scrape stopped: {type(exc).__name__}: {exc}"))
        else:
            self.post_message(self.ScrapeFinished(summary))

    def action_cancel_or_back(self) -> None:
        if self.running:
            self.action_cancel()
        else:
            self.app.go_back()  # type: ignore[attr-defined]

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.running and not self.cancel_flag.is_set():
            self.cancel_flag.set()
            self.query_one("#totals", Static).update("Cancelling: writing what was read…")

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#start", Button).disabled = running
        self.query_one("#cancel", Button).disabled = not running
        self.query_one("#category", Input).disabled = running
        self.query_one("#totals", Static).set_class(running, "running")

    # -- message handlers ----------------------------------------------------------------
    def on_scrape_screen_handle_updated(self, message: HandleUpdated) -> None:
        report = message.report
        previous = self.rows.get(report.source.key)
        self.rows[report.source.key] = report
        table = self.query_one("#table", DataTable)
        if report.source.key in table.rows:
            for (key, _), value in zip(COLUMNS, self._cells(report)):
                table.update_cell(report.source.key, key, value)
        if report.status == "failed" and (previous is None or previous.status != "failed"):
            self._log(f"{report.source}: {report.error}")
        self._show_totals()

    def on_scrape_screen_scrape_finished(self, message: ScrapeFinished) -> None:
        self.summary = message.summary
        for report in message.summary.handles:
            self.on_scrape_screen_handle_updated(self.HandleUpdated(report))
        self._set_running(False)
        self._show_totals()
        self._log(message.summary.sentence())
        self.notify(message.summary.sentence(), severity="warning" if message.summary.failed else "information", markup=False)

    def on_scrape_screen_scrape_failed(self, message: ScrapeFailed) -> None:
        self._set_running(False)
        self._log(message.text)
        self.query_one("#totals", Static).update(Text(message.text, style="red"))
        self.notify(message.text, severity="error", timeout=8, markup=False)

    # -- drawing -------------------------------------------------------------------------
    @staticmethod
    def _cells(report: HandleReport) -> tuple[Any, ...]:
        state = Text(report.outcome, style=STATE_STYLES.get(report.status, ""))
        return (
            report.source.label,
            state,
            Text(f"{report.pages:,}", justify="right"),
            Text(f"{report.fetched:,}", justify="right"),
            Text(f"{report.added:,}", justify="right", style="green" if report.added else ""),
            _dropped(report),
        )

    def _show_totals(self) -> None:
        reports = list(self.rows.values())
        if not reports:
            return
        finished = sum(r.status in ("done", "failed", "cancelled") for r in reports)
        failed = sum(r.status == "failed" for r in reports)
        read = sum(r.fetched for r in reports)
        added = sum(r.added for r in reports)
        dropped = sum(r.filter.dropped_total for r in reports)
        parts = [f"{finished} of {len(reports)} handles finished", f"{read:,} posts read", f"{added:,} tweets added", f"{dropped:,} dropped"]
        if failed:
            parts.append(f"{failed} failed (see below)")
        if self.summary is not None and self.summary.cancelled:
            parts.append("cancelled; what was read is kept")
        self.query_one("#totals", Static).update(Text(" · ".join(parts)))

    def _log(self, text: str) -> None:
        self.query_one("#log", RichLog).write(text)
