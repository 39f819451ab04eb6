"""Read and write twint JSON lines, the corpus format.

The reader never gives up on a file because of one bad line: it skips the line and
reports file, line number and reason through ``on_problem``, keeping every valid line.
Writers are atomic (write a temp file beside the target, then rename), so a crash never
leaves a half-written partition behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from turing_tui.corpus.tweet import HumanTweet

MAX_LINE_BYTES = 1 << 20  # a tweet object is ~1 KB; a megabyte line is junk


@dataclass(frozen=True)
class Problem:
    """A line the reader skipped."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


ProblemHook = Callable[[Problem], None]


def parse_lines(data: bytes, path: Path, on_problem: ProblemHook | None = None) -> Iterator[HumanTweet]:
    """Parse the bytes of a twint JSON-lines file, skipping (and reporting) bad lines."""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.strip()
        if not raw:
            continue
        reason = None
        if len(raw) > MAX_LINE_BYTES:
            reason = f"line is {len(raw):,} bytes long, over the {MAX_LINE_BYTES:,} byte limit"
        else:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    reason = "not UTF-8 text"
                else:
                    reason = f"not valid JSON ({str(exc).split(':')[0]})"
            else:
                try:
                    yield HumanTweet.from_twint(obj)
                    continue
                except ValueError as exc:
                    reason = f"not a twint tweet: {exc}"
        if on_problem is not None:
            on_problem(Problem(path, number, reason))


def read_jsonl(path: Path, on_problem: ProblemHook | None = None) -> Iterator[HumanTweet]:
    """Yield the tweets of one twint JSON-lines file."""
    path = Path(path)
    yield from parse_lines(path.read_bytes(), path, on_problem)


DATA_SUFFIXES = (".txt", ".jsonl", ".json")


def is_data_file(name: str) -> bool:
    """True for a tweet file of a category folder.

    Hidden names are bookkeeping, never tweets: the fetch manifest (``.manifest.json``),
    locks, and the temp files of atomic writes (``.NNN.txt.xxxx.part``).
    """
    return not name.startswith(".") and name.endswith(DATA_SUFFIXES)


def data_files(folder: Path) -> list[Path]:
    """The JSON-lines files of a category folder, in a stable order."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if is_data_file(p.name) and p.is_file())


def read_folder(folder: Path, on_problem: ProblemHook | None = None) -> Iterator[HumanTweet]:
    for path in data_files(folder):
        yield from read_jsonl(path, on_problem)


def dumps_line(tweet: HumanTweet) -> bytes:
    return orjson.dumps(tweet.to_twint()) + b"\n"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_jsonl(path: Path, tweets: Iterable[HumanTweet]) -> int:
    """Atomically write ``tweets`` as twint JSON lines; returns how many were written."""
    lines = [dumps_line(t) for t in tweets]
    atomic_write_bytes(path, b"".join(lines))
    return len(lines)
