"""Mirror a published tweet dataset, partition by partition, resumably.

The public datasets are partitions ``<base>/<category>/NNN.txt`` (twint JSON lines, up to
100 lines each, each ending with a newline) with no index: the count is discovered by
fetching until partitions stop existing. :func:`fetch_category` copies them UNCHANGED into
``data/<category>/`` (filters apply when a category is loaded, so the mirror stays a
faithful copy), a few requests in flight, each retried with backoff.

How a partition is known to be complete:

* A download is held in memory, checked (non-empty, ends with a newline; httpx itself
  rejects a body shorter than its Content-Length) and written atomically, so a dropped
  connection never leaves a half file behind.
* ``data/<category>/.manifest.json`` records size and SHA-256 of every verified partition.
  A later run skips a partition whose file still matches; a file the manifest does not
  vouch for is kept only when it holds exactly 100 newline-terminated JSON lines (a full
  partition), otherwise it is downloaded again. The manifest is rewritten atomically every
  few partitions and when the run ends, however it ends.
* Only the last partition may be short. If a later run finds partitions beyond a short
  one that was last before (the dataset grew), that one is downloaded again.
* A body that is not twint JSON lines (a web page answering every path with 200) stops
  the run with a clear error rather than being mirrored; so does a run past
  ``MAX_PARTITIONS`` without any 404.

Where the dataset ends: the first 404 ends it unless one of the next ``gap_tolerance``
partitions exists. So ``404 for 005 while 006 exists`` is a hole, not the end: 005 is
reported as missing (event :class:`PartitionMissing`, ``FetchReport.missing``) and the
mirror carries on; a run of ``gap_tolerance + 1`` 404s is the end. The cost is
``gap_tolerance`` extra requests past the last partition, which also lets a re-run notice
a dataset that has grown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import orjson

from turing_tui.corpus.filters import FilterReport
from turing_tui.corpus.twint import Problem, atomic_write_bytes
from turing_tui.errors import NetworkError, UserError
from turing_tui.net import USER_AGENT, Backoff, arequest_with_retry
from turing_tui.paths import PUBLISHED_CATEGORIES, Paths, validate_category

ENV_DATA_URL = "TURING_TUI_DATA_URL"
DEFAULT_BASE_URL = (
    "https://raw.githubusercontent.com/model-zoo/twitter-turing-test/master/frontend/public/data"
)
# Partition counts of the published datasets (PROTOCOLS.md), only a hint for progress bars.
PUBLISHED_PARTITIONS = {"vc": 489, "democrats": 482, "republicans": 571, "covid19": 130}
PARTITION_LINES = 100
MANIFEST_NAME = ".manifest.json"
MAX_PARTITIONS = 10_000  # a million tweets; more means the URL answers every path
MANIFEST_EVERY = 25  # partitions between manifest checkpoints (each is an fsync'd write)


# -- progress events ---------------------------------------------------------------------


@dataclass(frozen=True)
class FetchStarted:
    category: str
    base_url: str
    expected: int | None  # partitions we expect (last run's count or the published one)
    verified: int  # partitions already complete on disk, which will not be downloaded


@dataclass(frozen=True)
class PartitionFetched:
    category: str
    number: int
    lines: int
    size: int
    cached: bool  # True when the local copy was already complete and nothing was downloaded


@dataclass(frozen=True)
class FetchRetry:
    category: str
    number: int
    attempt: int
    wait: float
    reason: str


@dataclass(frozen=True)
class PartitionMissing:
    """A 404 in the middle of a dataset: a later partition exists, this one does not."""

    category: str
    number: int


@dataclass(frozen=True)
class FetchFinished:
    report: FetchReport


FetchEvent = Union[FetchStarted, PartitionFetched, FetchRetry, PartitionMissing, FetchFinished]
EventHook = Callable[[FetchEvent], None]


@dataclass
class FetchReport:
    """The outcome of one mirror run."""

    category: str
    base_url: str
    folder: Path
    partitions: int = 0  # partitions that exist remotely (and now locally)
    downloaded: int = 0
    cached: int = 0  # already complete, not downloaded again
    bytes_downloaded: int = 0
    tweets: int = 0  # lines in the mirrored partitions
    missing: list[int] = field(default_factory=list)  # holes: 404 with a later partition present
    retries: int = 0
    cancelled: bool = False
    filter: FilterReport = field(default_factory=FilterReport)  # the category as loaded
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "base_url": self.base_url,
            "folder": str(self.folder),
            "partitions": self.partitions,
            "downloaded": self.downloaded,
            "cached": self.cached,
            "bytes_downloaded": self.bytes_downloaded,
            "tweets": self.tweets,
            "missing": [partition_name(n) for n in self.missing],
            "retries": self.retries,
            "cancelled": self.cancelled,
            "filter": self.filter.as_dict(),
            "problems": [str(p) for p in self.problems],
        }


# -- helpers -----------------------------------------------------------------------------


def resolve_base_url(base_url: str | None = None) -> str:
    """``base_url``, else ``$TURING_TUI_DATA_URL``, else the published GitHub location."""
    url = (base_url or os.environ.get(ENV_DATA_URL) or DEFAULT_BASE_URL).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"The data URL {url!r} must start with http:// or https://.")
    return url


def partition_name(number: int) -> str:
    return f"{number:03d}.txt"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _count_lines(data: bytes) -> int:
    return sum(1 for line in data.split(b"\n") if line.strip())


def _starts_like_twint(data: bytes) -> bool:
    """Whether the first line of ``data`` is a JSON object (the rest is checked at load)."""
    first = data.lstrip().split(b"\n", 1)[0]
    if not first.startswith(b"{"):
        return False
    try:
        return isinstance(orjson.loads(first), dict)
    except orjson.JSONDecodeError:
        return False


def looks_complete(data: bytes) -> bool:
    """A full published partition: 100 newline-terminated lines, each a JSON object."""
    if not data.endswith(b"\n"):
        return False
    lines = data.split(b"\n")[:-1]
    if len(lines) != PARTITION_LINES:
        return False
    try:
        return all(line.lstrip().startswith(b"{") and isinstance(orjson.loads(line), dict) for line in lines)
    except orjson.JSONDecodeError:
        return False


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = orjson.loads((folder / MANIFEST_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {"partitions": {}}
    if not isinstance(data, dict) or not isinstance(data.get("partitions"), dict):
        return {"partitions": {}}
    return data


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    atomic_write_bytes(folder / MANIFEST_NAME, orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS))


def verified_partitions(folder: Path, manifest: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Partitions on disk known to be complete, by number (manifest match or a full file)."""
    entries: dict[str, Any] = manifest.get("partitions", {})
    verified: dict[int, dict[str, Any]] = {}
    if not folder.is_dir():
        return verified
    for path in folder.iterdir():
        stem = path.name[:-4] if path.name.endswith(".txt") else ""
        if not (stem.isdigit() and len(stem) >= 3 and path.is_file()):
            continue
        data = path.read_bytes()
        entry = entries.get(path.name)
        if isinstance(entry, dict) and entry.get("size") == len(data) and entry.get("sha256") == _digest(data):
            verified[int(stem)] = entry
        elif looks_complete(data):  # e.g. written before a crash, ahead of the manifest
            verified[int(stem)] = {"size": len(data), "sha256": _digest(data), "lines": PARTITION_LINES}
    return verified


class _Truncated(Exception):
    """The body arrived but is not a whole partition (empty or no final newline)."""


# -- the mirror --------------------------------------------------------------------------


async def afetch_category(
    paths: Paths,
    category: str,
    *,
    base_url: str | None = None,
    concurrency: int = 4,
    on_event: EventHook | None = None,
    backoff: Backoff = Backoff(),
    gap_tolerance: int = 3,
    timeout: float = 30.0,
    should_stop: Callable[[], bool] | None = None,
    max_partitions: int = MAX_PARTITIONS,
) -> FetchReport:
    """The asyncio implementation of :func:`fetch_category`."""
    import httpx

    validate_category(category)
    base = resolve_base_url(base_url)
    concurrency = max(1, int(concurrency))
    folder = paths.category_dir(category)
    folder.mkdir(parents=True, exist_ok=True)
    emit = on_event or (lambda event: None)
    report = FetchReport(category=category, base_url=base, folder=folder)

    manifest = read_manifest(folder)
    verified = verified_partitions(folder, manifest)
    entries: dict[str, Any] = {partition_name(n): e for n, e in verified.items()}
    was_last = {n for n, e in verified.items() if e.get("last")}  # before checkpoints rewrite it
    expected = manifest.get("count") if isinstance(manifest.get("count"), int) else None
    if expected is None and category in PUBLISHED_CATEGORIES and base == DEFAULT_BASE_URL:
        expected = PUBLISHED_PARTITIONS.get(category)
    emit(FetchStarted(category, base, expected, len(verified)))

    exists: set[int] = set()
    not_found: set[int] = set()
    in_flight = 0
    next_index = 0
    changed = asyncio.Condition()
    since_checkpoint = 0

    def limit() -> int | None:
        """The last index worth claiming: a 404 with nothing beyond it stops the claims
        ``gap_tolerance`` indices later; None while no such 404 is known."""
        top = max(exists, default=-1)
        ends = [k for k in not_found if k > top]
        return min(ends) + gap_tolerance if ends else None

    def save_manifest() -> None:
        last = partition_name(max(exists)) if exists else None
        for name, entry in entries.items():
            # Only the last partition may be short because the dataset had not grown yet.
            entry["last"] = name == last
        write_manifest(
            folder,
            {
                "base_url": base,
                "category": category,
                "count": max(exists, default=-1) + 1 if exists else manifest.get("count"),
                "partitions": dict(sorted(entries.items())),
            },
        )

    async def download(client: httpx.AsyncClient, number: int) -> bytes | None:
        """The body of partition ``number``, or None on 404."""
        url = f"{base}/{category}/{partition_name(number)}"

        reasons: list[str] = []

        def retried(attempt: int, wait: float, reason: str) -> None:
            report.retries += 1
            reasons.append(reason)
            emit(FetchRetry(category, number, attempt, wait, reason))

        attempt = 0
        while True:
            try:
                response = await arequest_with_retry(client, "GET", url, backoff=backoff, on_retry=retried)
            except NetworkError as exc:
                if exc.reason in ("ConnectError", "ConnectTimeout"):
                    what = f"Could not connect to {httpx.URL(url).host} ({len(reasons) + 1} attempts)"
                else:
                    what = str(exc).rstrip(".")
                raise NetworkError(
                    f"{what}; check your connection or the data URL (--base-url or ${ENV_DATA_URL}) "
                    "and run again to resume (finished partitions are kept)."
                ) from None
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise NetworkError(
                    f"{url} answered HTTP {response.status_code}; check the data URL (--base-url or ${ENV_DATA_URL})."
                )
            body = response.content
            if body and body.endswith(b"\n"):
                if not _starts_like_twint(body):
                    # e.g. a web page answering every path with 200: never a partition.
                    raise UserError(
                        f"{url} is not twint JSON lines (it starts {body[:40]!r}); "
                        f"check the data URL (--base-url or ${ENV_DATA_URL})."
                    )
                return body
            # A body that stops short of its final newline was cut off on the way.
            if attempt >= backoff.retries:
                raise NetworkError(f"{url} kept arriving cut short (no final newline) after {attempt + 1} attempts.")
            wait = backoff.delay(attempt)
            retried(attempt + 1, wait, "truncated body")
            await asyncio.sleep(wait)
            attempt += 1

    async def store(number: int, body: bytes) -> None:
        """Write a downloaded partition atomically and record it in the manifest."""
        nonlocal since_checkpoint
        path = folder / partition_name(number)
        await asyncio.to_thread(atomic_write_bytes, path, body)
        lines = _count_lines(body)
        entries[path.name] = {"size": len(body), "sha256": _digest(body), "lines": lines}
        exists.add(number)
        report.downloaded += 1
        report.bytes_downloaded += len(body)
        report.tweets += lines
        emit(PartitionFetched(category, number, lines, len(body), False))
        since_checkpoint += 1
        if since_checkpoint >= MANIFEST_EVERY:
            since_checkpoint = 0
            await asyncio.to_thread(save_manifest)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal in_flight, next_index
        while True:
            async with changed:
                while True:
                    if should_stop is not None and should_stop():
                        report.cancelled = True
                        return
                    stop = limit()
                    if next_index >= max_partitions:
                        raise UserError(
                            f"{base}/{category}/ has more than {max_partitions:,} partitions without a 404; "
                            f"check the data URL (--base-url or ${ENV_DATA_URL})."
                        )
                    if stop is None or next_index <= stop:
                        break
                    if in_flight == 0:
                        return
                    await changed.wait()  # an answer in flight may move the limit
                number = next_index
                next_index += 1
                in_flight += 1
            try:
                if number in verified:
                    entry = verified[number]
                    exists.add(number)
                    report.cached += 1
                    report.tweets += int(entry.get("lines", 0))
                    emit(PartitionFetched(category, number, int(entry.get("lines", 0)), int(entry["size"]), True))
                    continue
                body = await download(client, number)
                if body is None:
                    not_found.add(number)
                    continue
                await store(number, body)
            finally:
                async with changed:
                    in_flight -= 1
                    changed.notify_all()

    headers = {"User-Agent": USER_AGENT}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    try:
        async with httpx.AsyncClient(headers=headers, timeout=timeout, limits=limits, follow_redirects=True) as client:
            workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
            try:
                await asyncio.gather(*workers)
            except BaseException:  # the first failure stops the others; it is what we report
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
            # A short partition that was the last one on an earlier run but no longer is
            # (the dataset grew) may have grown too: fetch it again.
            top = max(exists, default=-1)
            for number in sorted(exists):
                entry = verified.get(number)
                if report.cancelled or not entry or number not in was_last or number >= top:
                    continue
                if int(entry.get("lines", 0)) < PARTITION_LINES:
                    body = await download(client, number)
                    if body is not None:
                        report.cached -= 1
                        report.tweets -= int(entry.get("lines", 0))
                        await store(number, body)
    finally:
        if exists or entries:
            save_manifest()

    if not exists and not report.cancelled:
        known = ", ".join(PUBLISHED_CATEGORIES)
        raise UserError(
            f"No partitions of '{category}' at {base}/{category}/ ({partition_name(0)} answered 404). "
            f"Published categories: {known}."
        )
    top = max(exists, default=-1)
    report.partitions = len(exists)
    report.missing = sorted(k for k in not_found if k < top)
    for number in report.missing:
        emit(PartitionMissing(category, number))
    if not report.cancelled:
        from turing_tui.corpus.load import load_category

        # The game's own load (and its cache), so the first `play` after a fetch is warm.
        corpus = await asyncio.to_thread(load_category, paths, category)
        report.filter = corpus.report
        report.problems = corpus.problems
    emit(FetchFinished(report))
    return report


def fetch_category(
    paths: Paths,
    category: str,
    *,
    base_url: str | None = None,
    concurrency: int = 4,
    on_event: EventHook | None = None,
    backoff: Backoff = Backoff(),
    gap_tolerance: int = 3,
    timeout: float = 30.0,
    should_stop: Callable[[], bool] | None = None,
) -> FetchReport:
    """Mirror ``<base>/<category>/NNN.txt`` into ``data/<category>/``; return the report.

    Blocking; safe to call from any thread (a worker, the CLI). ``on_event`` receives
    :data:`FetchEvent` objects in the calling thread's event loop, in order per partition.
    ``should_stop`` is polled between partitions; when it returns True the run stops early
    with ``report.cancelled`` set and everything already downloaded kept. Raises
    :class:`UserError` (or :class:`NetworkError`) with one sentence for anything a user can
    fix: a bad name or URL, an unreachable host, a category the server does not have.
    """
    run = afetch_category(
        paths,
        category,
        base_url=base_url,
        concurrency=concurrency,
        on_event=on_event,
        backoff=backoff,
        gap_tolerance=gap_tolerance,
        timeout=timeout,
        should_stop=should_stop,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run)
    # Called from inside an event loop: run ours on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run).result()
