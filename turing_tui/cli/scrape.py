"""``turing-tui scrape``: build a category from a list of accounts, resumably.

The work is in :mod:`turing_tui.scrape.run`; this module turns options into a plan,
draws a live table per handle on stderr while the run goes (one line per finished handle
when stderr is not a terminal), and prints the summary table — or ``--json`` — on stdout.
Ctrl+C stops the run gracefully (what was read is written, resume points kept); a second
Ctrl+C quits at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from turing_tui.cli._common import CliState, console, pass_state, print_json

if TYPE_CHECKING:
    from rich.table import Table

    from turing_tui.scrape.run import HandleReport, ScrapeSummary

EPILOG = """
\b
Examples:
  turing-tui scrape --category mine                 sources/mine.txt, each line's backend
  turing-tui scrape --category mine --backend bluesky --limit 500   bare lines are Bluesky names
  X_BEARER_TOKEN=... turing-tui scrape --category vc          the published list via the X API
  turing-tui scrape --category mine --since 2024-01-01 --concurrency 8
  turing-tui scrape --category mine --app           the same in the Scrape screen

\b
The handle list (sources/<category>.txt, or --sources FILE) has one account a line
and '#' comments. A line may name its backend:
  bsky:name.bsky.social   mastodon:user@instance   x:handle   twint:handle
A bare line is a Twitter handle (the published lists are): it goes to --backend,
else to the X API, which needs X_BEARER_TOKEN. With --backend bluesky a bare
'name' means name.bsky.social, which may not be the same person: check the list.

\b
Every run is resumable: a rerun reads only posts newer than the last run, then
continues older history where the last run stopped (state in
data/<category>/.scrape-state.json). Tweets pass the corpus filters (replies,
links, retweets, duplicates by id and text) and are added as new files
data/<category>/<backend>-<handle>-<time>.txt.
Exit codes: 0 done, 1 some handles failed (the others' tweets are kept),
2 bad input, 130 interrupted.
"""


@click.command("scrape", epilog=EPILOG)
@click.option("--category", "-c", required=True, help="Category to add the tweets to (data/<category>/).")
@click.option("--sources", "sources_file", type=click.Path(dir_okay=False, path_type=str), help="Handle list [sources/<category>.txt].")
@click.option("--backend", "-b", type=click.Choice(["bluesky", "mastodon", "x", "twint"]), help="Backend for bare lines [x].")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=3200, show_default=True, help="Posts read per handle this run; 0 = no limit.")
@click.option("--since", metavar="DATE", help="Skip posts older than DATE (YYYY-MM-DD, UTC).")
@click.option("--base-url", metavar="URL", help="API base of --backend (a mirror, a test server). Env: TURING_TUI_BLUESKY_URL, TURING_TUI_MASTODON_URL, TURING_TUI_X_URL.")
@click.option("--concurrency", "-j", type=click.IntRange(1, 64), default=4, show_default=True, help="Handles read at once.")
@click.option("--restart", is_flag=True, help="Forget the resume points and read every handle from the top (nothing is duplicated).")
@click.option("--retries", type=click.IntRange(0, 20), default=4, show_default=True, help="Retries per request, with backoff.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--app", "in_app", is_flag=True, help="Open the Scrape screen of the app instead.")
@pass_state
def command(
    state: CliState,
    category: str,
    sources_file: str | None,
    backend: str | None,
    limit: int,
    since: str | None,
    base_url: str | None,
    concurrency: int,
    restart: bool,
    retries: int,
    as_json: bool,
    in_app: bool,
) -> None:
    """Collect human tweets for a category from a list of Bluesky, Mastodon or X accounts."""
    from turing_tui.paths import validate_category

    validate_category(category)
    if in_app:
        from turing_tui.cli._common import run_app

        options: dict[str, Any] = {"category": category, "backend": backend, "base_url": base_url}
        options.update(limit=limit, concurrency=concurrency)
        run_app(state, screen="scrape", **{k: v for k, v in options.items() if v is not None})
        return

    from turing_tui.net import Backoff
    from turing_tui.scrape.run import plan_scrape, run_scrape

    plan = plan_scrape(
        state.paths,
        category,
        sources_file=sources_file,  # type: ignore[arg-type]
        backend=backend,
        limit=limit,
        since=since,
        base_url=base_url,
        concurrency=concurrency,
        restart=restart,
        backoff=Backoff(retries=retries),
    )
    err = console(stderr=True)
    stop = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():  # the second Ctrl+C: leave now
            raise KeyboardInterrupt
        stop.set()
        err.print("[yellow]Stopping: writing what was read… (Ctrl+C again to quit at once)[/]")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        summary = _run_with_progress(state, plan, err, stop, run_scrape)
    finally:
        signal.signal(signal.SIGINT, previous)
    if as_json:
        print_json(summary.as_dict())
    else:
        out = console()
        out.print(summary_table(summary))
        out.print(summary.sentence())
    if summary.cancelled:
        sys.exit(130)
    if summary.failed:
        sys.exit(1)


def _run_with_progress(state: CliState, plan: Any, err: Any, stop: threading.Event, run_scrape: Any) -> ScrapeSummary:
    from rich.live import Live

    from turing_tui.scrape.run import HandleReport

    rows: dict[str, HandleReport] = {s.key: HandleReport(s) for s in plan.sources}
    err.print(f"Scraping {len(rows)} handles into '{plan.category}' ({plan.concurrency} at a time)…")
    if not err.is_terminal:

        def on_line(event: Any) -> None:
            report = event.report
            if report.status in ("done", "failed") and rows[report.source.key].status != report.status:
                err.print(f"{report.source}: {report.fetched:,} read, {report.added:,} added; {report.outcome}")
            rows[report.source.key] = report

        return run_scrape(state.paths, plan, on_progress=on_line, should_stop=stop.is_set)

    class _LiveTable:
        def __rich__(self) -> Table:
            return progress_table(list(rows.values()), title=f"Scraping '{plan.category}'")

    with Live(_LiveTable(), console=err, refresh_per_second=8, transient=True):

        def on_event(event: Any) -> None:
            rows[event.report.source.key] = event.report

        return run_scrape(state.paths, plan, on_progress=on_event, should_stop=stop.is_set)


def progress_table(reports: list[HandleReport], title: str | None = None) -> Table:
    """One row per handle: pages, posts read, tweets added, drops by reason, outcome."""
    from rich.table import Table

    from turing_tui.scrape.run import dropped_words

    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("Handle", no_wrap=True, max_width=36)
    table.add_column("Pages", justify="right")
    table.add_column("Read", justify="right")
    table.add_column("Added", justify="right", style="green")
    table.add_column("Dropped", overflow="fold")
    table.add_column("Result", overflow="fold", ratio=1)
    styles = {"failed": "red", "cancelled": "yellow", "retrying": "yellow", "waiting": "dim"}
    for r in reports:
        style = styles.get(r.status)
        outcome = _escape(r.outcome)
        table.add_row(
            r.source.label, _num(r.pages), _num(r.fetched), _num(r.added), dropped_words(r.filter),
            f"[{style}]{outcome}[/]" if style else outcome,
        )  # fmt: skip
    return table


def summary_table(summary: ScrapeSummary) -> Table:
    from turing_tui.scrape.run import dropped_words

    table = progress_table(summary.handles, title=f"Scrape of '{summary.category}'")
    pages = sum(h.pages for h in summary.handles)
    table.add_section()
    failed = f"[red]{len(summary.failed)} failed[/]" if summary.failed else ""
    table.add_row("[bold]Total[/]", _num(pages), _num(summary.fetched), _num(summary.added), dropped_words(summary.filter), failed)
    return table


def _num(n: int) -> str:
    return f"{n:,}" if n else "[dim]0[/]"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


COMMAND = command
