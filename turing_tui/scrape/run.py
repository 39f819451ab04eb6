"""The scrape engine: handles in flight, resume points, writes through the corpus filters.

:func:`run_scrape` takes a :class:`ScrapePlan` (category, accounts, limits) and reads
several handles at once over one HTTP client (asyncio; ``concurrency`` handles in flight).
Each handle reads its timeline newest first as laid out in :mod:`turing_tui.scrape.state`,
buffers what it reads, and every ``flush_every`` posts (and at its end, on an error, on
cancel) hands the buffer to :func:`turing_tui.corpus.importers.add_tweets` — the corpus
filters drop replies, links, retweets and duplicates by id and text, each counted — and
only then moves its resume point. A handle that fails is reported and the others go on.

Progress travels as :class:`HandleProgressed` events to a callback (the CLI draws a Rich
table, the app posts Textual messages); ``should_stop`` is polled so a UI can cancel, and
a cancel keeps everything already read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from turing_tui.corpus.filters import REASONS, FilterReport
from turing_tui.corpus.importers import AddReport, add_tweets
from turing_tui.corpus.tweet import HumanTweet
from turing_tui.errors import NetworkError, UserError
from turing_tui.net import USER_AGENT, Backoff
from turing_tui.paths import Paths, validate_category
from turing_tui.scrape.backends import (
    BACKEND_CLASSES,
    X_TOKEN_ENV,
    Account,
    Backend,
    HandleError,
    Session,
    TwintBackend,
    XBackend,
)
from turing_tui.scrape.sources import BACKENDS, DEFAULT_BARE_BACKEND, Source, read_sources
from turing_tui.scrape.state import HandleState, Mark, Pending, Position, ScrapeState, scrape_lock

DEFAULT_LIMIT = 3200  # per handle per run: what the X API can reach; 0 lifts it
DEFAULT_CONCURRENCY = 4
FLUSH_EVERY = 500  # posts buffered per handle before a write (and a resume point)

# What a handle's row says while and after it runs.
STATUS_LABELS = {
    "waiting": "waiting",
    "fetching": "fetching",
    "retrying": "retrying",
    "done": "done",
    "failed": "failed",
    "cancelled": "cancelled",
}
ENDINGS = {
    "caught_up": "up to date",
    "end": "whole history read",
    "limit": "limit reached",
    "since": "reached --since",
}


DROP_LABELS = {"reply": "replies", "link": "links", "retweet": "reposts", "duplicate": "dups", "too_short": "too short", "empty": "empty"}


def dropped_words(report: FilterReport) -> str:
    """Drops by reason in a few words: ``3 replies · 1 repost``."""
    parts = []
    for reason, label in DROP_LABELS.items():
        n = report.dropped.get(reason, 0)
        if n:
            one = {"replies": "reply", "links": "link", "reposts": "repost", "dups": "dup"}.get(label, label)
            parts.append(f"{n:,} {one if n == 1 else label}")
    return " · ".join(parts)


@dataclass(frozen=True)
class ScrapePlan:
    """Everything a run needs, decided before any request is sent."""

    category: str
    sources: tuple[Source, ...]
    limit: int | None = DEFAULT_LIMIT  # posts read per handle in this run; None: no limit
    since: int | None = None  # epoch ms: posts older than this are not wanted
    base_urls: dict[str, str] = field(default_factory=dict)  # backend -> API base URL
    concurrency: int = DEFAULT_CONCURRENCY
    backoff: Backoff = field(default_factory=Backoff)
    flush_every: int = FLUSH_EVERY
    restart: bool = False  # forget every resume point (dedup still prevents repeats)
    x_token: str | None = None  # default: $X_BEARER_TOKEN
    twint_timeout: float = 180.0
    timeout: float = 30.0  # per HTTP request


@dataclass
class HandleReport:
    """One handle's row: what it read, what the filters kept, and how it ended."""

    source: Source
    status: str = "waiting"
    pages: int = 0
    fetched: int = 0
    added: int = 0
    filter: FilterReport = field(default_factory=FilterReport)
    ending: str = ""  # a key of ENDINGS once done
    error: str | None = None
    detail: str = ""  # the latest retry, in words
    files: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """The row's last column in plain words."""
        if self.error:
            return self.error
        if self.status == "retrying":
            return self.detail
        if self.status == "done":
            return ENDINGS.get(self.ending, "done")
        if self.status == "cancelled":
            return "cancelled; what was read is kept"
        return self.detail or STATUS_LABELS.get(self.status, self.status)

    def snapshot(self) -> HandleReport:
        return replace(self, filter=copy.deepcopy(self.filter), files=list(self.files))

    def as_dict(self) -> dict[str, Any]:
        return {
            "handle": self.source.handle,
            "backend": self.source.backend,
            "status": self.status,
            "pages": self.pages,
            "fetched": self.fetched,
            "added": self.added,
            "dropped": {r: self.filter.dropped.get(r, 0) for r in REASONS},
            "ending": self.ending or None,
            "error": self.error,
            "files": self.files,
        }


@dataclass(frozen=True)
class HandleProgressed:
    """A handle's row changed (a page read, a retry, a write, its end)."""

    report: HandleReport


ProgressHook = Callable[[HandleProgressed], None]


@dataclass
class ScrapeSummary:
    category: str
    handles: list[HandleReport]
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def fetched(self) -> int:
        return sum(h.fetched for h in self.handles)

    @property
    def added(self) -> int:
        return sum(h.added for h in self.handles)

    @property
    def failed(self) -> list[HandleReport]:
        return [h for h in self.handles if h.status == "failed"]

    @property
    def filter(self) -> FilterReport:
        total = FilterReport()
        for h in self.handles:
            total.merge(h.filter)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
            "fetched": self.fetched,
            "added": self.added,
            "failed": len(self.failed),
            "filter": self.filter.as_dict(),
            "handles": [h.as_dict() for h in self.handles],
        }

    def sentence(self) -> str:
        verb = "Cancelled after adding" if self.cancelled else "Added"
        failed = f" {len(self.failed)} of {len(self.handles)} handles failed." if self.failed else ""
        return (
            f"{verb} {self.added:,} new tweets to '{self.category}' from {self.fetched:,} posts read "
            f"in {self.seconds:.1f} s.{failed}"
        )


# -- planning -----------------------------------------------------------------------------


def parse_since(value: str | None) -> int | None:
    """``YYYY-MM-DD`` or an ISO 8601 time to epoch ms (UTC); a UserError when unreadable."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            stamp = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        else:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=timezone.utc)
    except ValueError:
        raise UserError(f"--since {value!r} is not a date: write it as YYYY-MM-DD.") from None
    return int(stamp.timestamp() * 1000)


def plan_scrape(
    paths: Paths,
    category: str,
    *,
    sources_file: Path | None = None,
    backend: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    since: str | None = None,
    base_url: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    restart: bool = False,
    backoff: Backoff | None = None,
) -> ScrapePlan:
    """Turn the user's options into a plan, or a UserError saying what to change."""
    validate_category(category)
    if backend is not None and backend not in BACKENDS:
        raise UserError(f"Unknown backend '{backend}': use one of {', '.join(BACKENDS)}.")
    if concurrency < 1 or concurrency > 64:
        raise UserError("--concurrency must be between 1 and 64.")
    if limit is not None and limit < 0:
        raise UserError("--limit must be 0 (no limit) or more.")
    path = Path(sources_file) if sources_file else paths.sources_file(category)
    sources = read_sources(path, default_backend=backend or DEFAULT_BARE_BACKEND)
    used = sorted({s.backend for s in sources})
    base_urls: dict[str, str] = {}
    if base_url:
        if not re.match(r"^https?://", base_url):
            raise UserError(f"--base-url {base_url!r} must start with http:// or https://.")
        target = backend or (used[0] if len(used) == 1 else None)
        if target is None:
            raise UserError(
                f"{path} mixes backends ({', '.join(used)}): name the one --base-url is for with --backend."
            )
        base_urls[target] = base_url
    if used == ["x"] and not os.environ.get(X_TOKEN_ENV):
        bare = backend is None
        raise UserError(
            (f"{path} lists bare Twitter handles, which are read with the X API unless you pass --backend, "
             if bare else "The X API needs a bearer token ")
            + f"and {X_TOKEN_ENV} is not set: set it, or use --backend bluesky|mastodon|twint, "
            "or prefix lines with bsky: or mastodon:."
        )  # fmt: skip
    return ScrapePlan(
        category=category,
        sources=tuple(sources),
        limit=limit or None,
        since=parse_since(since),
        base_urls=base_urls,
        concurrency=concurrency,
        restart=restart,
        backoff=backoff or Backoff(),
    )


def make_backend(name: str, plan: ScrapePlan) -> Backend:
    base = plan.base_urls.get(name)
    if name == "x":
        return XBackend(base, token=plan.x_token)
    if name == "twint":
        since = None
        if plan.since is not None:
            since = datetime.fromtimestamp(plan.since / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
        return TwintBackend(base, timeout=plan.twint_timeout, since=since)
    return BACKEND_CLASSES[name](base)


def source_label(source: Source) -> str:
    """A short file-name-safe name for a handle (``bluesky-alice_bsky_social``)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", source.handle).strip("_")
    return f"{source.backend}-{slug}"[:48]


# -- one handle ---------------------------------------------------------------------------


class _HandleRun:
    """Reads one handle's timeline and keeps its resume point honest."""

    def __init__(self, engine: _Engine, source: Source, backend: Backend) -> None:
        self.engine = engine
        self.source = source
        self.backend = backend
        self.report = engine.reports[source.key]
        committed = engine.state.get(source.key)
        self.live: HandleState = copy.deepcopy(committed)  # the state once the buffer is written
        self.buffer: list[HumanTweet] = []
        self.inflight: concurrent.futures.Future[AddReport] | None = None
        self.budget = engine.plan.limit
        self.session = Session(
            engine.client, backoff=engine.plan.backoff, on_retry=self._retrying,
            headers=backend.session_headers(),
        )  # fmt: skip
        self.account: Account | None = None

    # progress ----------------------------------------------------------------------------
    def _emit(self) -> None:
        self.engine.emit(self.report)

    def _retrying(self, attempt: int, wait: float, reason: str) -> None:
        self.report.status = "retrying"
        self.report.detail = f"{reason}: retry {attempt} in {wait:.1f} s"
        self._emit()

    # the run -----------------------------------------------------------------------------
    async def run(self) -> None:
        report = self.report
        report.status = "fetching"
        self._emit()
        cancelled = False
        try:
            self.account = await self.backend.resolve(self.session, self.source)
            report.ending = await self._read()
            report.status = "done"
        except asyncio.CancelledError:
            cancelled = True
            report.status = "cancelled"
        except HandleError as exc:
            report.status = "failed"
            report.error = str(exc)
        except NetworkError as exc:
            # net says "GET <url> failed after N attempts (HTTP 500)."; the row wants words.
            match = re.search(r"after (\d+) attempts \((.*)\)\.?$", str(exc))
            why = f"gave up after {match.group(1)} attempts ({match.group(2)})" if match else str(exc)
            report.status = "failed"
            report.error = f"The server kept failing; {why}."
        except httpx.HTTPError as exc:  # e.g. an invalid URL: this handle's problem only
            report.status = "failed"
            report.error = f"The request failed ({type(exc).__name__}: {exc})."
        except Exception as exc:  # a bug or a server answer we did not foresee: say so, go on
            report.status = "failed"
            report.error = f"Unexpected {type(exc).__name__}: {exc}"
        finally:
            # On cancel, write synchronously: awaiting again could be cancelled again.
            if cancelled:
                self._finish_inflight()
                self._write_buffer_now()
            elif report.pages or self.source.key in self.engine.state.handles:
                await self.flush()
            report.detail = ""
            self._emit()

    async def _read(self) -> str:
        live = self.live
        if live.pending is not None:
            ending = await self._walk("pending", live.pending.at, live.pending.stop_at)
            if ending not in ("caught_up", "end"):
                return ending
        if live.head is None:
            return await self._walk("initial", None, None)
        ending = await self._walk("top", None, live.head)
        if ending not in ("caught_up", "end"):
            return ending
        if live.tail is not None and not live.exhausted:
            return await self._walk("backfill", live.tail, None)
        return "caught_up"

    async def _walk(self, kind: str, start: Position | None, stop_at: Mark | None) -> str:
        """Read pages from ``start`` until ``stop_at``, the end, the limit or --since."""
        assert self.account is not None
        plan = self.engine.plan
        cursor = start.cursor if start else None
        floor = start.floor if start else None
        newest: Mark | None = None
        while True:
            if self.budget is not None and self.budget <= 0:
                return "limit"
            size = self.backend.page_max
            if self.budget is not None:
                size = max(self.backend.page_min, min(size, self.budget))
            page = await self.backend.page(self.session, self.account, cursor, size)
            self.report.pages += 1
            taken = []
            stop: str | None = None
            for post in page.posts:
                if floor is not None and post.order >= floor:
                    continue  # read before, from this page cut short by --since
                if stop_at is not None and stop_at.covers(post.tweet.id, post.order):
                    stop = "caught_up"
                    break
                created = post.tweet.created_at
                if plan.since is not None and created is not None and created < plan.since:
                    stop = "since"
                    break
                taken.append(post)
            if taken and newest is None:
                newest = Mark(taken[0].tweet.id, taken[0].order)
            self.buffer.extend(p.tweet for p in taken)
            self.report.fetched += len(taken)
            if self.budget is not None:
                self.budget -= len(taken)
            ended = stop == "caught_up" or (stop is None and page.cursor is None)
            if stop == "since":  # continue from this page next time, below what was taken
                next_at: Position | None = Position(cursor, taken[-1].order if taken else floor)
            else:
                next_at = Position(page.cursor) if page.cursor else None
            self._advance(kind, next_at, newest, stop_at, ended)
            floor = None
            self.report.status = "fetching"
            self.report.detail = f"page {self.report.pages}"
            if len(self.buffer) >= plan.flush_every:
                await self.flush()
            self._emit()
            if stop is not None:
                return stop
            if page.cursor is None:
                return "end"
            cursor = page.cursor

    def _advance(self, kind: str, next_at: Position | None, newest: Mark | None, stop_at: Mark | None, ended: bool) -> None:
        """Move the live resume point past the page just buffered."""
        live = self.live
        if kind == "initial":
            if newest is not None and live.head is None:
                live.head = newest
            live.tail = next_at
            live.exhausted = next_at is None
            live.pending = None
        elif kind == "top":
            assert stop_at is not None
            if ended:
                live.head = newest or live.head
                live.pending = None
            elif newest is not None and next_at is not None:
                live.pending = Pending(next_at, newest, stop_at)
        elif kind == "pending":
            assert live.pending is not None
            if ended or next_at is None:
                live.head = live.pending.newest
                live.pending = None
            else:
                live.pending.at = next_at
        elif kind == "backfill":
            live.tail = next_at
            live.exhausted = next_at is None

    # writing -----------------------------------------------------------------------------
    def _add(self, tweets: list[HumanTweet]) -> AddReport:
        return add_tweets(self.engine.paths, self.engine.plan.category, tweets, source=source_label(self.source))

    def _absorb(self, result: AddReport) -> None:
        self.report.filter.merge(result.filter)
        self.report.added += result.added
        self.live.written += result.added
        if result.path is not None:
            self.report.files.append(str(result.path))

    def _commit(self, state: HandleState) -> None:
        state.updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
        state.written = self.live.written
        self.engine.state.handles[self.source.key] = state
        self.engine.state.save()

    async def flush(self) -> None:
        """Write the buffer through the corpus filters, then move the resume point."""
        tweets, self.buffer = self.buffer, []
        target = copy.deepcopy(self.live)
        if tweets:
            self.inflight = self.engine.pool.submit(self._add, tweets)
            # Shielded: if the task is cancelled now, the write still finishes and the
            # cancel path picks up its result before committing.
            result = await asyncio.shield(asyncio.wrap_future(self.inflight))
            self.inflight = None
            self._absorb(result)
        self._commit(target)

    def _finish_inflight(self) -> None:
        if self.inflight is not None:
            self._absorb(self.inflight.result())
            self.inflight = None

    def _write_buffer_now(self) -> None:
        tweets, self.buffer = self.buffer, []
        if tweets:
            self._absorb(self._add(tweets))
        self._commit(copy.deepcopy(self.live))


# -- the run ------------------------------------------------------------------------------


class _Engine:
    def __init__(self, paths: Paths, plan: ScrapePlan, on_progress: ProgressHook | None) -> None:
        self.paths = paths
        self.plan = plan
        self.on_progress = on_progress
        self.state = ScrapeState.load(paths.scrape_state_file(plan.category), forgive=plan.restart)
        if plan.restart:
            for source in plan.sources:
                self.state.forget(source.key)
        self.reports = {s.key: HandleReport(s) for s in plan.sources}
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, plan.concurrency), thread_name_prefix="scrape-write")
        self.client: httpx.AsyncClient
        self.cancelled = False

    def emit(self, report: HandleReport) -> None:
        if self.on_progress is not None:
            self.on_progress(HandleProgressed(report.snapshot()))

    async def run(self, should_stop: Callable[[], bool] | None) -> None:
        plan = self.plan
        backends = {name: make_backend(name, plan) for name in {s.backend for s in plan.sources}}
        gate = asyncio.Semaphore(plan.concurrency)
        limits = httpx.Limits(max_connections=plan.concurrency * 2, max_keepalive_connections=plan.concurrency * 2)
        async with httpx.AsyncClient(
            timeout=plan.timeout, limits=limits, headers={"User-Agent": USER_AGENT}, follow_redirects=True
        ) as client:
            self.client = client

            async def one(source: Source) -> None:
                async with gate:
                    await _HandleRun(self, source, backends[source.backend]).run()

            tasks = [asyncio.create_task(one(s), name=f"scrape {s.key}") for s in plan.sources]
            watcher = asyncio.create_task(self._watch(tasks, should_stop)) if should_stop else None
            try:
                results = await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                if watcher is not None:
                    watcher.cancel()
                for report in self.reports.values():
                    if report.status == "waiting":
                        report.status = "cancelled"
                        self.emit(report)
            # A handle's own failures are in its report; what is left (a write that failed,
            # say the disk is full) concerns the whole run.
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                    if isinstance(result, OSError):
                        raise UserError(f"Writing to {self.paths.category_dir(plan.category)} failed: {result}.") from result
                    raise result

    async def _watch(self, tasks: list[asyncio.Task[None]], should_stop: Callable[[], bool]) -> None:
        while True:
            if should_stop():
                self.cancelled = True
                for task in tasks:
                    task.cancel()
                return
            await asyncio.sleep(0.05)


def run_scrape(
    paths: Paths,
    plan: ScrapePlan,
    *,
    on_progress: ProgressHook | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ScrapeSummary:
    """Scrape every handle of ``plan`` into ``data/<category>/``; blocking.

    Calls ``on_progress`` (on the calling thread) whenever a handle's row changes and stops
    soon after ``should_stop()`` turns true, keeping what was read. Raises UserError only
    for problems of the whole run (a damaged state file, another scrape running); a
    handle's failure is in its report.
    """
    started = time.perf_counter()
    folder = paths.category_dir(plan.category)
    with scrape_lock(folder, plan.category):
        engine = _Engine(paths, plan, on_progress)
        try:
            asyncio.run(engine.run(should_stop))
        finally:
            engine.pool.shutdown(wait=True)
    return ScrapeSummary(
        category=plan.category,
        handles=list(engine.reports.values()),
        cancelled=engine.cancelled,
        seconds=time.perf_counter() - started,
    )
