"""Where each handle's scrape got to, so a rerun fetches only what is new.

A timeline is read newest first. For each handle we keep the part already written as one
contiguous stretch: ``head`` (its newest post) and ``tail`` (the cursor that continues
below its oldest post; ``exhausted`` once history ended). A run first reads from the top
down to ``head`` (new posts), then continues from ``tail`` (older posts). When a run
stops before reaching ``head`` — cancelled, a limit, an error — the stretch it did read is
remembered as ``pending`` (where to continue, the newest post it saw, where to stop) and is
finished first next time, so no gap is left and nothing is read twice.

The file lives at ``data/<category>/.scrape-state.json`` and is rewritten atomically
after every write of tweets, and only after it: a crash can at worst make a rerun fetch
a page again (the filters then drop the repeats), never skip one. A lock file keeps two
scrapes of one category from interleaving.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from turing_tui.corpus.twint import atomic_write_bytes
from turing_tui.errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, scrapes are not serialised
    fcntl = None  # type: ignore[assignment]

STATE_VERSION = 1


@dataclass
class Mark:
    """A post that bounds a stretch: its id and its order in the timeline."""

    id: str
    order: int

    def covers(self, post_id: str, order: int) -> bool:
        """True when a post at ``order`` is this mark or older (already read)."""
        return post_id == self.id or order < self.order


@dataclass
class Position:
    """Where to continue reading: the cursor, and (when a page was cut part-way by
    ``--since``) the order below which that page's posts are still unread."""

    cursor: str | None
    floor: int | None = None


@dataclass
class Pending:
    """A top-down read that stopped before reaching ``stop_at``."""

    at: Position
    newest: Mark
    stop_at: Mark


@dataclass
class HandleState:
    head: Mark | None = None
    tail: Position | None = None
    exhausted: bool = False
    pending: Pending | None = None
    written: int = 0  # tweets this handle added to the category, over all runs
    updated: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandleState:
        def mark(d: Any) -> Mark | None:
            return Mark(str(d["id"]), int(d["order"])) if isinstance(d, dict) else None

        def position(d: Any) -> Position | None:
            if not isinstance(d, dict):
                return None
            floor = d.get("floor")
            return Position(d.get("cursor"), int(floor) if floor is not None else None)

        pending = data.get("pending")
        pend = None
        if isinstance(pending, dict):
            at, newest, stop_at = position(pending.get("at")), mark(pending.get("newest")), mark(pending.get("stop_at"))
            if at is not None and newest is not None and stop_at is not None:
                pend = Pending(at, newest, stop_at)
        return cls(
            head=mark(data.get("head")),
            tail=position(data.get("tail")),
            exhausted=bool(data.get("exhausted")),
            pending=pend,
            written=int(data.get("written") or 0),
            updated=str(data.get("updated") or ""),
        )


@dataclass
class ScrapeState:
    """Every handle's state for one category, and the file it is kept in."""

    path: Path
    handles: dict[str, HandleState] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, *, forgive: bool = False) -> ScrapeState:
        """Read the state; an unreadable file is a UserError naming the way out (or, with
        ``forgive``, an empty state: every handle is then read from the top again)."""
        path = Path(path)
        if not path.exists():
            return cls(path)
        try:
            data = orjson.loads(path.read_bytes())
            handles = {str(k): HandleState.from_dict(v) for k, v in (data.get("handles") or {}).items()}
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            if forgive:
                return cls(path)
            raise UserError(
                f"The scrape state {path} is damaged: delete it or pass --restart "
                "(the next run then reads every handle from the top; nothing is duplicated)."
            ) from None
        return cls(path, handles)

    def get(self, key: str) -> HandleState:
        return self.handles.setdefault(key, HandleState())

    def forget(self, key: str) -> None:
        self.handles.pop(key, None)

    def save(self) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        data = {"version": STATE_VERSION, "saved": now, "handles": {k: asdict(v) for k, v in sorted(self.handles.items())}}
        atomic_write_bytes(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2))


@contextlib.contextmanager
def scrape_lock(folder: Path, category: str) -> Iterator[None]:
    """Hold the category's scrape lock for the whole run, or fail at once if taken."""
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(folder / ".scrape.lock", "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"Another scrape of '{category}' is running: wait for it to finish, or stop it."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
