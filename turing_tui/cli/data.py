"""``turing-tui data``: get human tweets (fetch, import) and see what a category holds.

The commands are thin: the work is in :mod:`turing_tui.corpus.fetch`,
:mod:`turing_tui.corpus.importers` and :mod:`turing_tui.corpus.stats`; this module parses
options and renders progress and summaries with Rich (progress on stderr, results on
stdout, ``--json`` for scripts).
"""

from __future__ import annotations

from typing import Any

import click

from turing_tui.cli._common import CliState, console, pass_state, print_json

PUBLISHED = ("vc", "republicans", "democrats", "covid19")


@click.group(
    "data",
    epilog="""
\b
Examples:
  turing-tui data fetch vc                   mirror the published vc tweets
  turing-tui data fetch all                  all four published categories
  turing-tui data import ~/twitter-archive --category me
  turing-tui data stats --category vc
""",
)
def group() -> None:
    """Fetch, import and inspect the human tweets of each category (data/<category>/)."""


# -- fetch ---------------------------------------------------------------------------------


@group.command(
    "fetch",
    epilog="""
\b
Examples:
  turing-tui data fetch vc
  turing-tui data fetch all --concurrency 8
  turing-tui data fetch vc --base-url http://127.0.0.1:8000/data
  TURING_TUI_DATA_URL=https://mirror.example/data turing-tui data fetch covid19

\b
Re-running is cheap: partitions already complete (checked against
data/<category>/.manifest.json) are not downloaded again. A partition that
answers 404 while a later one exists is reported as missing and skipped.
Exit codes: 0 done, 2 bad input, 3 network failure.
""",
)
@click.argument("category", metavar="CATEGORY|all")
@click.option(
    "--base-url", metavar="URL", help="Where the partitions live: URL/<category>/NNN.txt. Env: TURING_TUI_DATA_URL."
)
@click.option(
    "--concurrency", "-j", type=click.IntRange(1, 32), default=4, show_default=True, help="Downloads in flight."
)
@click.option(
    "--retries", type=click.IntRange(0, 20), default=4, show_default=True, help="Retries per request, with backoff."
)
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON on stdout.")
@pass_state
def fetch(state: CliState, category: str, base_url: str | None, concurrency: int, retries: int, as_json: bool) -> None:
    """Mirror the published tweets of CATEGORY (or all four) into data/<category>/."""
    from turing_tui.corpus.fetch import fetch_category, resolve_base_url
    from turing_tui.errors import UserError
    from turing_tui.net import Backoff
    from turing_tui.paths import validate_category

    from rich.markup import escape

    categories = list(PUBLISHED) if category == "all" else [validate_category(category)]
    base = resolve_base_url(base_url)
    err = console(stderr=True)
    reports: list[dict[str, Any]] = []
    failures: list[tuple[str, UserError]] = []
    for name in categories:
        try:
            with _FetchProgress(err, name) as progress:
                report = fetch_category(
                    state.paths,
                    name,
                    base_url=base,
                    concurrency=concurrency,
                    on_event=progress.on_event,
                    backoff=Backoff(retries=retries),
                )
        except UserError as exc:
            if len(categories) == 1:
                raise
            failures.append((name, exc))  # "all": one failing does not stop the others
            err.print(f"[red]{name}: {escape(str(exc))}[/]")
            continue
        reports.append(report.as_dict())
        if not as_json:
            _print_fetch_summary(report)
    if as_json:
        print_json(reports if category == "all" else reports[0])
    if failures:
        names = ", ".join(name for name, _ in failures)
        raise UserError(
            f"{len(failures)} of {len(categories)} categories failed ({names}); see the messages above.",
            exit_code=max(exc.exit_code for _, exc in failures),
        )


class _FetchProgress:
    """A Rich progress bar fed by fetch events (total = partitions expected, if known)."""

    def __init__(self, err: Any, category: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.err = err
        self.category = category
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self.task = self.progress.add_task(category, total=None, detail="")
        self.tweets = 0
        self.retries = 0

    def __enter__(self) -> _FetchProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def on_event(self, event: object) -> None:
        from turing_tui.corpus.fetch import FetchRetry, FetchStarted, PartitionFetched, PartitionMissing

        if isinstance(event, FetchStarted):
            self.progress.update(self.task, total=event.expected)
            if event.verified:
                self.progress.console.print(f"{self.category}: {event.verified} partitions already here")
        elif isinstance(event, PartitionFetched):
            self.tweets += event.lines
            task = self.progress.tasks[0]
            if task.total is not None and task.completed + 1 > task.total:
                self.progress.update(self.task, total=None)  # more than expected: unknown end
            retries = f", {self.retries} retries" if self.retries else ""
            self.progress.update(self.task, advance=1, detail=f"{self.tweets:,} tweets{retries}")
        elif isinstance(event, FetchRetry):
            self.retries += 1
            self.progress.update(self.task, detail=f"{self.tweets:,} tweets, {self.retries} retries")
            if event.attempt == 1:  # one line per troubled partition; the count shows the rest
                self.progress.console.print(
                    f"[yellow]{self.category}/{event.number:03d}.txt: {event.reason}, retrying with backoff[/]"
                )
        elif isinstance(event, PartitionMissing):
            self.progress.console.print(
                f"[yellow]{self.category}/{event.number:03d}.txt is missing upstream (404) "
                "while later partitions exist; skipped[/]"
            )


def _print_fetch_summary(report: Any) -> None:
    from rich.markup import escape

    out = console()
    missing = ""
    if report.missing:
        names = ", ".join(f"{n:03d}" for n in report.missing)
        missing = f" [yellow]Missing upstream: {names}.[/]"
    state = " [yellow](stopped early)[/]" if report.cancelled else ""
    out.print(
        f"[bold]{report.category}[/]{state}: {report.partitions} partitions "
        f"({report.downloaded} downloaded, {report.cached} already here), "
        f"{report.tweets:,} tweets in {escape(str(report.folder))}.{missing}"
    )
    out.print(f"  Usable for the game: {report.filter.summary()}")
    if report.problems:
        out.print(f"  [yellow]{len(report.problems)} unreadable lines skipped, e.g. {escape(str(report.problems[0]))}[/]")


# -- import --------------------------------------------------------------------------------


@group.command(
    "import",
    epilog="""
\b
Formats (detected from the content):
  twint JSON lines     a file, or a folder of .txt/.jsonl files
  Twitter archive      the export folder, or its data/tweets.js (author from
                       account.js beside it, else --handle)
  CSV                  twint's CSV, any CSV with a tweet/text column, or one
                       column of texts (--handle names the author)

\b
Examples:
  turing-tui data import tweets.jsonl --category mine
  turing-tui data import ~/Downloads/twitter-2023-02-18 --category me
  turing-tui data import texts.csv --category poems --handle rilke

\b
Each import writes a new file data/<category>/import-<time>.txt; tweets
the category already has (same id or same text) are skipped, so running it
twice adds nothing. Replies to others, links, retweets and very short
tweets are dropped too (--keep-all keeps them).
""",
)
@click.argument("path", type=click.Path(path_type=str))
@click.option("--category", "-c", required=True, help="Category to add the tweets to (letters, digits, - and _).")
@click.option("--handle", help="Author handle for formats that lack one (archive without account.js, text CSV).")
@click.option(
    "--format", "fmt", type=click.Choice(["auto", "twint", "archive", "csv"]), default="auto", show_default=True,
    help="Read PATH as this format instead of detecting it.",
)  # fmt: skip
@click.option("--keep-all", is_flag=True, help="Skip the filters (duplicates are still dropped).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@pass_state
def import_(
    state: CliState, path: str, category: str, handle: str | None, fmt: str, keep_all: bool, as_json: bool
) -> None:
    """Add the tweets found in PATH to a category."""
    from pathlib import Path

    from turing_tui.corpus.importers import import_path
    from turing_tui.paths import validate_category

    validate_category(category)
    report = import_path(
        state.paths, Path(path), category, handle=handle, fmt=fmt, apply_filters=not keep_all
    )
    if as_json:
        print_json(report.as_dict())
        return
    out = console()
    out.print(report.summary(), markup=False)
    if report.problems:
        out.print(f"[yellow]{len(report.problems)} unreadable entries skipped:[/]")
        for problem in report.problems[:5]:
            out.print(f"  {problem}", markup=False)
        if len(report.problems) > 5:
            out.print(f"  ... and {len(report.problems) - 5} more")


# -- stats ---------------------------------------------------------------------------------


@group.command(
    "stats",
    epilog="""
\b
Examples:
  turing-tui data stats
  turing-tui data stats --category vc --top 20
  turing-tui data stats --json | jq '.[0].usable'
""",
)
@click.option("--category", "-c", help="One category (default: every category with data).")
@click.option("--top", type=click.IntRange(0, 1000), default=10, show_default=True, help="Authors to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON on stdout.")
@pass_state
def stats(state: CliState, category: str | None, top: int, as_json: bool) -> None:
    """Tweets per category and per author, lengths, and what the filters drop."""
    from turing_tui.corpus.stats import corpus_stats
    from turing_tui.errors import UserError

    names = [category] if category else state.paths.categories()
    if not names:
        raise UserError(
            f"No category has data in {state.paths.data_dir}; get some with: turing-tui data fetch vc"
        )
    results = [corpus_stats(state.paths, name, top=top) for name in names]
    if as_json:
        print_json([r.as_dict() for r in results] if not category else results[0].as_dict())
        return
    _print_stats(results)


def _print_stats(results: list[Any]) -> None:
    from rich.table import Table

    from rich.markup import escape

    from turing_tui.corpus.filters import REASON_LABELS, REASONS

    out = console()
    overview = Table(title="Human tweets by category", title_justify="left")
    overview.add_column("category")
    for label in ("files", "tweets", "usable", "authors", "median chars"):
        overview.add_column(label, justify="right")
    for r in results:
        overview.add_row(
            r.category, f"{r.files:,}", f"{r.tweets:,}", f"{r.usable:,}", f"{len(r.authors):,}", f"{r.lengths.median:,}"
        )
    out.print(overview)
    dropped = Table(title="Dropped by the filters", title_justify="left")
    dropped.add_column("reason")
    for r in results:
        dropped.add_column(r.category, justify="right")
    for reason in REASONS:
        dropped.add_row(REASON_LABELS[reason], *[f"{r.dropped.get(reason, 0):,}" for r in results])
    dropped.add_row("total", *[f"{sum(r.dropped.values()):,}" for r in results], style="bold")
    out.print(dropped)
    for r in results:
        if r.top_authors:
            authors = Table(title=f"{r.category}: top authors (usable tweets)", title_justify="left")
            authors.add_column("author")
            authors.add_column("tweets", justify="right")
            authors.add_column("share", justify="right")
            for name, count in r.top_authors:
                authors.add_row(escape("@" + name), f"{count:,}", f"{count / max(r.usable, 1):.1%}")
            out.print(authors)
        lengths = Table(title=f"{r.category}: length of usable tweets (characters)", title_justify="left")
        lengths.add_column("chars")
        lengths.add_column("tweets", justify="right")
        lengths.add_column("", min_width=30)
        biggest = max((n for _, n in r.lengths.histogram), default=0) or 1
        for label, count in r.lengths.histogram:
            lengths.add_row(label, f"{count:,}", "█" * round(30 * count / biggest))
        out.print(lengths)
        out.print(
            f"  min {r.lengths.min}, median {r.lengths.median}, mean {r.lengths.mean:.0f}, "
            f"90th percentile {r.lengths.p90}, max {r.lengths.max}"
        )
        if r.problems:
            out.print(f"  [yellow]{r.problems} unreadable lines skipped, e.g. {escape(r.first_problem)}[/]")


COMMAND = group
