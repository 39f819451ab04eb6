"""Bring human tweets from elsewhere into a category, never twice.

Tweets arrive from many places — a twint JSON-lines file, a Twitter archive export, a
CSV, a scraper — and all end the same way: :func:`add_tweets` filters them, drops the
ones the category already holds (same id or same normalised text), and writes the rest
as a new twint JSON-lines file ``data/<category>/<source>-<timestamp>.txt`` atomically.
Re-importing the same tweets therefore adds nothing, and an import never rewrites the
files already there (the published mirror stays a faithful copy). :func:`import_path`
recognises the format of a file or folder and feeds :func:`add_tweets`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import orjson

from turing_tui.corpus.filters import FilterReport, TweetFilter, text_key
from turing_tui.corpus.tweet import HumanTweet
from turing_tui.corpus.twint import Problem, ProblemHook, atomic_write_bytes, data_files, dumps_line, parse_lines
from turing_tui.errors import UserError
from turing_tui.paths import CATEGORY_RE, Paths, validate_category

try:  # POSIX advisory locks; elsewhere concurrent adds are simply not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


# -- adding tweets to a category ---------------------------------------------------------


@dataclass
class AddReport:
    """What :func:`add_tweets` did: the file it wrote (if any) and every drop, counted."""

    category: str
    source: str
    path: Path | None = None  # the new file, or None when nothing was new
    added: int = 0
    filter: FilterReport = field(default_factory=FilterReport)
    problems: list[Problem] = field(default_factory=list)  # lines skipped while reading input

    def as_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "source": self.source,
            "path": str(self.path) if self.path else None,
            "added": self.added,
            "filter": self.filter.as_dict(),
            "problems": [str(p) for p in self.problems],
        }

    def summary(self) -> str:
        where = f" in {self.path}" if self.path else ""
        noun = "tweet" if self.added == 1 else "tweets"
        return f"Added {self.added:,} new {noun} to '{self.category}'{where}. {self.filter.summary()}"


# Per file: (size, mtime_ns, ids, text keys). A scraper calls add_tweets once per page;
# parsing vc's 489 files each time costs ~0.6 s, re-reading only changed files ~5 ms.
_FileKeys = tuple[int, int, frozenset[str], frozenset[str]]
_keys_cache: dict[Path, _FileKeys] = {}
_keys_lock = threading.Lock()


def existing_keys(folder: Path) -> tuple[set[str], set[str]]:
    """Ids and text keys of every tweet already in a category folder (bad lines ignored)."""
    ids: set[str] = set()
    texts: set[str] = set()
    for path in data_files(folder):
        st = path.stat()
        with _keys_lock:
            known = _keys_cache.get(path)
        if known is None or known[:2] != (st.st_size, st.st_mtime_ns):
            file_ids: set[str] = set()
            file_texts: set[str] = set()
            for tweet in parse_lines(path.read_bytes(), path):
                file_ids.add(tweet.id)
                file_texts.add(text_key(tweet.text))
            known = (st.st_size, st.st_mtime_ns, frozenset(file_ids), frozenset(file_texts))
            with _keys_lock:
                _keys_cache[path] = known
        ids |= known[2]
        texts |= known[3]
    return ids, texts


@contextlib.contextmanager
def category_lock(folder: Path) -> Iterator[None]:
    """Serialise writers of one category (an import and a scrape at once cannot both
    decide the same tweet is new)."""
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(folder / ".lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _new_file(folder: Path, source: str, now: datetime) -> Path:
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = folder / f"{source}-{stamp}.txt"
    n = 2
    while path.exists():  # two adds in one second: keep both, never overwrite
        path = folder / f"{source}-{stamp}-{n}.txt"
        n += 1
    return path


def add_tweets(
    paths: Paths,
    category: str,
    tweets: Iterable[HumanTweet],
    source: str = "import",
    *,
    apply_filters: bool = True,
    now: datetime | None = None,
) -> AddReport:
    """Append the new, fit ``tweets`` to ``category`` as one new file; return the report.

    A tweet is dropped when the filters reject it (replies to others, links, retweets,
    too short, empty; skipped with ``apply_filters=False``) or when the category already
    holds its id or its normalised text, or an earlier tweet of this batch did. Kept tweets
    go to ``data/<category>/<source>-<YYYYmmdd-HHMMSS>.txt``, written atomically; when
    nothing is new no file is written and ``report.path`` is None.
    """
    validate_category(category)
    if not CATEGORY_RE.match(source or ""):
        raise UserError(f"{source!r} is not a valid source name: use letters, digits, '-' or '_'.")
    folder = paths.category_dir(category)
    report = AddReport(category=category, source=source)
    with category_lock(folder):
        seen_ids, seen_texts = existing_keys(folder)
        keep = TweetFilter(report=report.filter)
        keep.seen_ids = seen_ids
        keep.seen_texts = seen_texts
        lines: list[bytes] = []
        for tweet in tweets:
            if apply_filters:
                if keep.check(tweet) is not None:
                    continue
            else:  # only the duplicate rule
                report.filter.seen += 1
                key = text_key(tweet.text)
                if not key or tweet.id in seen_ids or key in seen_texts:
                    report.filter.dropped["empty" if not key else "duplicate"] += 1
                    continue
                seen_ids.add(tweet.id)
                seen_texts.add(key)
                report.filter.kept += 1
            lines.append(dumps_line(tweet))
        if lines:
            report.path = _new_file(folder, source, now or datetime.now(timezone.utc))
            atomic_write_bytes(report.path, b"".join(lines))
            report.added = len(lines)
    return report


# -- reading foreign formats ---------------------------------------------------------------

FORMATS = ("auto", "twint", "archive", "csv")
HANDLE_RE = re.compile(r"^@?[A-Za-z0-9_][A-Za-z0-9_.@-]{0,99}$")  # X, Bluesky and Mastodon handles
ARCHIVE_NAMES = ("tweets.js", "tweet.js")  # newer exports say tweets.js; older ones tweet.js
TEXT_COLUMNS = ("tweet", "full_text", "text", "content", "body")
FORMAT_HELP = "twint JSON lines, a Twitter archive export (tweets.js), or a CSV with a text column"


def _sniff(data: bytes) -> str | None:
    """The format of a file's bytes: 'twint', 'archive', 'csv', or None when unknown."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return None
    if head.startswith(b"window.YTD."):
        return "archive"
    if head.startswith(b"{"):  # JSON lines: bad lines further down are skipped one by one
        return "twint"
    if head.startswith(b"["):
        return "json-array"
    if b"\x00" in data[:65536]:  # text formats never hold NUL bytes
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = head.decode("cp1252")
        except UnicodeDecodeError:
            return None
    # Text that is mostly printable and line-oriented is taken as CSV (a one-column text
    # CSV has no delimiter at all); control characters other than whitespace mean junk.
    junk = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n")
    return "csv" if junk == 0 else None


def _is_archive_file(path: Path) -> bool:
    name = path.name
    return name in ARCHIVE_NAMES or (name.startswith(("tweets-part", "tweet-part")) and name.endswith(".js"))


def _strip_ytd(data: bytes, path: Path) -> Any:
    """Parse ``window.YTD.<name>.partN = [...]``: everything after the first '=' is JSON."""
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"window.YTD."):
        text = text.split(b"=", 1)[1] if b"=" in text else b""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UserError(f"{path} looks like a Twitter archive file but is not valid JSON ({exc}).") from None


def read_account(folder: Path) -> dict[str, str] | None:
    """``{"username", "accountId", "accountDisplayName"}`` from ``account.js`` in ``folder``."""
    path = folder / "account.js"
    if not path.is_file():
        return None
    data = _strip_ytd(path.read_bytes(), path)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        account = data[0].get("account", data[0])
        if isinstance(account, dict) and isinstance(account.get("username"), str):
            return {k: str(v) for k, v in account.items() if isinstance(v, (str, int))}
    return None


def _archive_time(value: Any) -> int | None:
    """'Sat Feb 18 12:33:11 +0000 2023' -> epoch ms."""
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y").timestamp() * 1000)
    except ValueError:
        try:
            return int(parsedate_to_datetime(value).timestamp() * 1000)
        except (TypeError, ValueError):
            return None


def archive_tweet(obj: Any, account: dict[str, str]) -> HumanTweet:
    """One entry of an archive's tweets.js as a HumanTweet; ValueError when it is not one."""
    if isinstance(obj, dict) and isinstance(obj.get("tweet"), dict):
        obj = obj["tweet"]
    if not isinstance(obj, dict):
        raise ValueError("not a tweet object")
    text = obj.get("full_text", obj.get("text"))
    tweet_id = obj.get("id_str", obj.get("id"))
    if not isinstance(text, str):
        raise ValueError("no 'full_text'")
    if tweet_id in (None, ""):
        raise ValueError("no 'id_str'")
    tweet_id = str(tweet_id)
    username = account["username"]
    reply_to: tuple[str, ...] = (username,)
    if obj.get("in_reply_to_status_id_str") or obj.get("in_reply_to_user_id_str"):
        own_id = account.get("accountId")
        target = obj.get("in_reply_to_user_id_str")
        # Threads answer the author; anything else is a reply to others ("?" when unnamed).
        target_name = str(obj.get("in_reply_to_screen_name") or "")
        if not (own_id and target == own_id) and target_name.lower() != username.lower():
            reply_to = (str(obj.get("in_reply_to_screen_name") or "?"),)
    entities = obj.get("entities") if isinstance(obj.get("entities"), dict) else {}
    urls = tuple(
        str(u.get("expanded_url") or u.get("url") or "") for u in entities.get("urls") or () if isinstance(u, dict)
    )
    created = _archive_time(obj.get("created_at"))
    return HumanTweet(
        id=tweet_id,
        username=username,
        text=text,
        name=account.get("accountDisplayName", ""),
        created_at=created,
        likes=_int(obj.get("favorite_count")),
        retweets=_int(obj.get("retweet_count")),
        link=f"https://twitter.com/{username}/status/{tweet_id}",
        reply_to=reply_to,
        urls=tuple(u for u in urls if u),
        is_retweet=text.startswith("RT @") or bool(obj.get("retweeted")),
        user_id=account.get("accountId", ""),
    )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def read_archive(path: Path, handle: str | None, on_problem: ProblemHook) -> list[HumanTweet]:
    """The tweets of a Twitter archive's ``tweets.js`` (the handle from ``account.js``)."""
    account = read_account(path.parent)
    if handle:
        account = {**(account or {}), "username": handle.lstrip("@")}
    if account is None:
        raise UserError(
            f"{path} has no account.js beside it to name the author; pass --handle YOUR_HANDLE."
        )
    return _archive_entries(_strip_ytd(path.read_bytes(), path), path, account, on_problem)


def _archive_entries(data: Any, path: Path, account: dict[str, str], on_problem: ProblemHook) -> list[HumanTweet]:
    if not isinstance(data, list):
        raise UserError(f"{path} does not hold a list of tweets.")
    tweets = []
    for number, entry in enumerate(data, start=1):
        try:
            tweets.append(archive_tweet(entry, account))
        except ValueError as exc:
            on_problem(Problem(path, number, f"entry {number} is not an archive tweet: {exc}"))
    return tweets


def _decode_text(data: bytes, path: Path, on_problem: ProblemHook) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet exports are often Windows-1252; latin-1 decodes any byte at all.
        on_problem(Problem(path, 0, "not UTF-8; read as Windows-1252"))
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def _literal_list(value: str) -> list[Any]:
    """twint's CSV writes lists as Python reprs ("['a', 'b']", "[{'screen_name': ...}]")."""
    import ast

    value = (value or "").strip()
    if not value:
        return []
    try:
        parsed = ast.literal_eval(value) if len(value) < 100_000 else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        parsed = None
    if isinstance(parsed, (list, tuple)):
        return list(parsed)
    return [value]


def _text_id(text: str) -> str:
    """A stable id for a tweet that came without one, so re-imports recognise it."""
    import hashlib

    return "text-" + hashlib.blake2b(text_key(text).encode("utf-8"), digest_size=8).hexdigest()


def read_csv(path: Path, handle: str | None, on_problem: ProblemHook) -> list[HumanTweet]:
    """Tweets of a CSV: twint's CSV export, any CSV with a text column, or one text column."""
    text = _decode_text(path.read_bytes(), path, on_problem)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise UserError(f"{path} is not a readable CSV file ({exc}).") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(c) for c in TEXT_COLUMNS if c in header), None)
    if column is None:
        if max(len(r) for r in rows) > 1:
            raise UserError(
                f"{path} has no text column: name one of {', '.join(TEXT_COLUMNS)} in the header row."
            )
        return _one_column(rows, path, handle, on_problem)
    if not handle and not AUTHOR_COLUMNS.intersection(header):
        raise UserError(_no_author(path))
    tweets = []
    for number, row in enumerate(rows[1:], start=2):
        record = {name: (row[i] if i < len(row) else "") for i, name in enumerate(header)}
        try:
            tweets.append(_csv_tweet(record, header[column], handle))
        except ValueError as exc:
            on_problem(Problem(path, number, f"row is not a tweet: {exc}"))
    return tweets


AUTHOR_COLUMNS = frozenset({"username", "screen_name", "handle"})


def _no_author(path: Path) -> str:
    return f"{path} does not name the author of its tweets (no username column); pass --handle NAME."


def _csv_tweet(record: dict[str, str], text_column: str, handle: str | None) -> HumanTweet:
    text = record.get(text_column, "")
    username = (handle or record.get("username") or record.get("screen_name") or record.get("handle") or "").lstrip("@")
    if not username:
        raise ValueError("no username column and no --handle")
    obj: dict[str, Any] = {k: v for k, v in record.items() if k in TWINT_CSV_SCALARS}
    obj["tweet"] = text
    obj["username"] = username
    obj["id"] = record.get("id") or record.get("id_str") or _text_id(text)
    for key in ("urls", "reply_to", "mentions", "photos", "hashtags", "cashtags"):
        if key in record:
            obj[key] = _literal_list(record[key])
    if "reply_to" in obj:
        obj["reply_to"] = [
            r if isinstance(r, dict) else {"username": str(r)} for r in obj["reply_to"]
        ]
    retweet = record.get("retweet", "")
    obj["retweet"] = retweet.strip().lower() in ("true", "1", "yes")
    for count in ("likes_count", "retweets_count", "replies_count"):
        if count not in obj:
            short = count.split("_")[0]
            obj[count] = record.get(short, record.get(f"{short[:-1]}_count", 0))
    return HumanTweet.from_twint(obj)


TWINT_CSV_SCALARS = frozenset(
    {"id", "conversation_id", "created_at", "date", "time", "timezone", "user_id", "name", "place",
     "replies_count", "retweets_count", "likes_count", "link", "quote_url", "near", "geo", "source"}
)  # fmt: skip


def _one_column(rows: list[list[str]], path: Path, handle: str | None, on_problem: ProblemHook) -> list[HumanTweet]:
    if not handle:
        raise UserError(_no_author(path))
    username = handle.lstrip("@")
    tweets = []
    for number, row in enumerate(rows, start=1):
        text = row[0]
        if number == 1 and text.strip().lower() in TEXT_COLUMNS + ("tweets", "texts"):
            continue  # a header row
        tweet_id = _text_id(text)
        tweets.append(HumanTweet(id=tweet_id, username=username, text=text, reply_to=(username,)))
    return tweets


def read_file(
    path: Path, *, handle: str | None = None, fmt: str = "auto", on_problem: ProblemHook | None = None
) -> list[HumanTweet]:
    """The tweets of one file in any supported format (``fmt`` forces one)."""
    report: ProblemHook = on_problem or (lambda problem: None)
    if not path.is_file():
        raise UserError(f"{path} does not exist or is not a file.")
    data = path.read_bytes()
    if not data.strip():
        raise UserError(f"{path} is empty.")
    kind = fmt if fmt != "auto" else _sniff(data)
    if kind == "json-array":
        parsed = _strip_ytd(data, path)
        first = parsed[0] if isinstance(parsed, list) and parsed else None
        if isinstance(first, dict) and isinstance(first.get("tweet"), str):
            return _json_objects(parsed, path, report)
        kind = "archive"
    if kind == "archive":
        return read_archive(path, handle, report)
    if kind == "twint":
        return list(parse_lines(data, path, report))  # twint names each tweet's author
    if kind == "csv":
        return read_csv(path, handle, report)
    raise UserError(f"{path} is not a format turing-tui can import; it takes {FORMAT_HELP}.")


def _json_objects(items: list[Any], path: Path, on_problem: ProblemHook) -> list[HumanTweet]:
    tweets = []
    for number, obj in enumerate(items, start=1):
        try:
            tweets.append(HumanTweet.from_twint(obj))
        except ValueError as exc:
            on_problem(Problem(path, number, f"item {number} is not a twint tweet: {exc}"))
    return tweets


def find_inputs(path: Path) -> list[tuple[Path, str]]:
    """The files to read under ``path`` and the format to read each as ('auto' or 'archive').

    A folder holding an archive export (``data/tweets.js`` or ``tweets.js``) is read as
    that archive; any other folder is searched for ``.txt``, ``.jsonl``, ``.json``,
    ``.csv`` and archive ``.js`` files, hidden names skipped.
    """
    if path.is_file():
        return [(path, "archive" if _is_archive_file(path) else "auto")]
    if not path.is_dir():
        raise UserError(f"{path} does not exist; give a file or folder of tweets to import.")
    for folder in (path / "data", path):
        parts = sorted(p for p in folder.glob("tweet*.js") if _is_archive_file(p))
        if parts:
            return [(p, "archive") for p in parts]
    found = []
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(path)
        if any(part.startswith(".") for part in relative.parts) or not file.is_file():
            continue
        if file.suffix.lower() in (".txt", ".jsonl", ".json", ".csv"):
            found.append((file, "auto"))
        elif _is_archive_file(file):
            found.append((file, "archive"))
    if not found:
        raise UserError(f"{path} holds no files to import; it takes {FORMAT_HELP}.")
    return found


def read_tweets(
    path: Path, *, handle: str | None = None, fmt: str = "auto", on_problem: ProblemHook | None = None
) -> list[HumanTweet]:
    """Every tweet found under ``path`` (a file or a folder), in file order."""
    if fmt not in FORMATS:
        raise UserError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if handle is not None and not HANDLE_RE.match(handle):
        raise UserError(
            f"{handle!r} is not a handle: use letters, digits, '_', '.' and '-' (e.g. jack or alice.bsky.social)."
        )
    path = Path(path).expanduser()
    inputs = find_inputs(path)
    tweets: list[HumanTweet] = []
    errors: list[str] = []
    for file, kind in inputs:
        try:
            tweets.extend(read_file(file, handle=handle, fmt=fmt if fmt != "auto" else kind, on_problem=on_problem))
        except UserError as exc:
            if len(inputs) == 1:
                raise
            errors.append(str(exc))  # one odd file in a folder does not sink the rest
            if on_problem is not None:
                on_problem(Problem(file, 0, str(exc)))
    if not tweets:
        why = f" ({errors[0]})" if errors else ""
        raise UserError(f"No tweets found in {path}{why}; it takes {FORMAT_HELP}.")
    return tweets


def import_path(
    paths: Paths,
    path: Path,
    category: str,
    *,
    handle: str | None = None,
    fmt: str = "auto",
    apply_filters: bool = True,
    source: str = "import",
) -> AddReport:
    """Read ``path`` in whatever supported format it is and add its tweets to ``category``."""
    validate_category(category)
    problems: list[Problem] = []
    tweets = read_tweets(path, handle=handle, fmt=fmt, on_problem=problems.append)
    report = add_tweets(paths, category, tweets, source=source, apply_filters=apply_filters)
    report.problems = problems
    return report
