"""The SQLite store: every answered round, every player, the pool of generated tweets.

One database file in the data root, in WAL mode so a game and a ``generate --to-pool``
(or two players in two processes) can write at once. Each answer is committed as soon as
it is recorded: a killed process loses no answered round. The schema is versioned with
``PRAGMA user_version``; :data:`MIGRATIONS` upgrades older files in order.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from turing_tui.backends.base import FakeTweet
from turing_tui.corpus.filters import text_key

# Each entry upgrades the schema from version i to i + 1. Append; never edit old entries.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE players (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        created REAL NOT NULL,
        last_seen REAL NOT NULL
    );
    CREATE TABLE fakes (
        id INTEGER PRIMARY KEY,
        category TEXT NOT NULL,
        model TEXT NOT NULL,
        base TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        sampling TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        times_shown INTEGER NOT NULL DEFAULT 0,
        UNIQUE (category, model, fingerprint)
    );
    CREATE INDEX fakes_pick ON fakes (category, model, times_shown);
    CREATE TABLE rounds (
        id INTEGER PRIMARY KEY,
        player_id INTEGER NOT NULL REFERENCES players(id),
        category TEXT NOT NULL,
        truth TEXT NOT NULL CHECK (truth IN ('human', 'machine')),
        guess TEXT NOT NULL CHECK (guess IN ('human', 'machine')),
        correct INTEGER NOT NULL,
        tweet_id TEXT,
        fake_id INTEGER REFERENCES fakes(id),
        model TEXT,
        answer_ms INTEGER NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX rounds_player ON rounds (player_id, category);
    CREATE INDEX rounds_model ON rounds (model, category);
    """,
    # 2: remembered choices (player name, category, generator) and a faster model board.
    """
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE INDEX rounds_fake ON rounds (fake_id) WHERE fake_id IS NOT NULL;
    """,
]


def fingerprint(text: str) -> str:
    """Identity of a generated text: a hash of its normalised, case-folded form."""
    return hashlib.blake2b(text_key(text).encode("utf-8"), digest_size=12).hexdigest()


@dataclass(frozen=True)
class RoundRecord:
    """One answered round, as stored."""

    player: str
    category: str
    truth: str  # "human" | "machine"
    guess: str
    answer_ms: int
    tweet_id: str | None = None
    fake_id: int | None = None
    model: str | None = None

    @property
    def correct(self) -> bool:
        return self.truth == self.guess


class Store:
    """A thread-safe handle on the database (one connection, one lock)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self.migrate()

    # -- plumbing -----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so no deadlocks."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def query(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        with self.transaction() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- players ------------------------------------------------------------------------
    def player_id(self, name: str) -> int:
        """The id of player ``name``, creating the player on first use."""
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO players (name, created, last_seen) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET last_seen = excluded.last_seen",
                (name, now, now),
            )
            return int(conn.execute("SELECT id FROM players WHERE name = ?", (name,)).fetchone()[0])

    # -- the generated-tweet pool ---------------------------------------------------------
    def add_fakes(self, category: str, fakes: Iterable[FakeTweet]) -> int:
        """Add generated tweets to the pool; returns how many were new."""
        now = time.time()
        rows = [
            (category, f.model, f.base, f.source, f.text, fingerprint(f.text), orjson.dumps(f.sampling).decode(), now)
            for f in fakes
        ]
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO fakes (category, model, base, source, text, fingerprint, sampling, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return conn.total_changes - before

    def _pool_filter(
        self, category: str, model: str | None, unseen_by: str | None, exclude: Collection[int]
    ) -> tuple[str, list[object]]:
        sql = " WHERE category = ?"
        params: list[object] = [category]
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        if unseen_by is not None:
            # A player must never meet a machine tweet twice: once revealed, it would give
            # the answer away.
            sql += (
                " AND id NOT IN (SELECT r.fake_id FROM rounds r JOIN players p ON p.id = r.player_id"
                " WHERE p.name = ? AND r.fake_id IS NOT NULL)"
            )
            params.append(unseen_by)
        if exclude:
            ids = sorted({int(i) for i in exclude})
            sql += f" AND id NOT IN ({', '.join('?' * len(ids))})"
            params.extend(ids)
        return sql, params

    def pool_size(
        self,
        category: str,
        model: str | None = None,
        *,
        unshown_only: bool = True,
        unseen_by: str | None = None,
        exclude: Collection[int] = (),
    ) -> int:
        """Pooled tweets: never shown (``unshown_only``), or not yet shown to ``unseen_by``."""
        where, params = self._pool_filter(category, model, unseen_by, exclude)
        if unshown_only:
            where += " AND times_shown = 0"
        return int(self.query("SELECT COUNT(*) FROM fakes" + where, params)[0][0])

    def take_fake(
        self,
        category: str,
        model: str | None = None,
        *,
        unseen_by: str | None = None,
        exclude: Collection[int] = (),
    ) -> FakeTweet | None:
        """The least-shown pooled tweet (oldest first), marked shown; None if the pool is empty.

        With ``unseen_by``, only tweets that player has not answered; ``exclude`` skips ids
        already handed out (dealt but not answered yet).
        """
        where, params = self._pool_filter(category, model, unseen_by, exclude)
        sql = "SELECT * FROM fakes" + where + " ORDER BY times_shown, id LIMIT 1"
        with self.transaction() as conn:
            row = conn.execute(sql, params).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE fakes SET times_shown = times_shown + 1 WHERE id = ?", (row["id"],))
        return _fake_from_row(row)

    def fake(self, fake_id: int) -> FakeTweet | None:
        rows = self.query("SELECT * FROM fakes WHERE id = ?", (fake_id,))
        return _fake_from_row(rows[0]) if rows else None

    # -- rounds -------------------------------------------------------------------------
    def record_round(self, record: RoundRecord) -> int:
        """Store one answer and commit at once; returns the round id."""
        player = self.player_id(record.player)
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO rounds (player_id, category, truth, guess, correct, tweet_id, fake_id, model, answer_ms, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    player,
                    record.category,
                    record.truth,
                    record.guess,
                    int(record.correct),
                    record.tweet_id,
                    record.fake_id,
                    record.model,
                    int(record.answer_ms),
                    time.time(),
                ),
            )
            return int(cursor.lastrowid or 0)

    def seen_tweet_ids(self, player: str, category: str) -> set[str]:
        """Ids of the human tweets ``player`` has already been shown in ``category``."""
        rows = self.query(
            "SELECT r.tweet_id FROM rounds r JOIN players p ON p.id = r.player_id "
            "WHERE p.name = ? AND r.category = ? AND r.tweet_id IS NOT NULL",
            (player, category),
        )
        return {row[0] for row in rows}


    # -- remembered choices ------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        """A remembered value (last player name, category, generator), or ``default``."""
        rows = self.query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- leaderboard counts (the arithmetic lives in turing_tui.game.leaderboard) --------
    def player_counts(self, category: str | None = None) -> list[sqlite3.Row]:
        """Per player and category: rounds, correct, the split by truth, best streak.

        The best streak is a gaps-and-islands query: numbering each round by how many
        misses came before it puts every run of right answers in one group, so the
        longest run is the largest group of correct rounds.
        """
        where, params = ("WHERE r.category = ?", [category]) if category else ("", [])
        sql = f"""
            WITH ordered AS (
                SELECT r.player_id, r.category, r.correct,
                       SUM(1 - r.correct) OVER (
                           PARTITION BY r.player_id, r.category ORDER BY r.id
                       ) AS misses_before
                FROM rounds r {where}
            ), runs AS (
                SELECT player_id, category, COUNT(*) AS length
                FROM ordered WHERE correct = 1
                GROUP BY player_id, category, misses_before
            ), best AS (
                SELECT player_id, category, MAX(length) AS best_streak
                FROM runs GROUP BY player_id, category
            )
            SELECT p.name AS player, r.category AS category,
                   COUNT(*) AS rounds,
                   SUM(r.correct) AS correct,
                   SUM(r.truth = 'human') AS human_rounds,
                   SUM(r.truth = 'human' AND r.correct = 1) AS human_correct,
                   SUM(r.truth = 'machine') AS machine_rounds,
                   SUM(r.truth = 'machine' AND r.correct = 1) AS machine_correct,
                   COALESCE(b.best_streak, 0) AS best_streak,
                   CAST(AVG(r.answer_ms) AS INTEGER) AS mean_answer_ms,
                   MAX(r.created) AS last_played
            FROM rounds r
            JOIN players p ON p.id = r.player_id
            LEFT JOIN best b ON b.player_id = r.player_id AND b.category = r.category
            {where}
            GROUP BY r.player_id, r.category
        """
        return self.query(sql, params + params)

    def model_counts(self, category: str | None = None) -> list[sqlite3.Row]:
        """Per model and category: machine rounds judged, and how many were judged human."""
        where, params = (" AND category = ?", [category]) if category else ("", [])
        return self.query(
            "SELECT model, category, COUNT(*) AS rounds, SUM(guess = 'human') AS fooled "
            f"FROM rounds WHERE truth = 'machine' AND model IS NOT NULL{where} "
            "GROUP BY model, category",
            params,
        )

    def top_fooling_fakes(
        self, category: str | None = None, model: str | None = None, limit: int = 5
    ) -> list[tuple[FakeTweet, int, int]]:
        """The pooled tweets that fooled the most players: (fake, times judged, times fooled)."""
        sql = (
            "SELECT f.*, COUNT(r.id) AS judged, SUM(r.guess = 'human') AS fooled "
            "FROM rounds r JOIN fakes f ON f.id = r.fake_id WHERE r.truth = 'machine'"
        )
        params: list[object] = []
        if category:
            sql += " AND r.category = ?"
            params.append(category)
        if model:
            sql += " AND f.model = ?"
            params.append(model)
        sql += " GROUP BY f.id HAVING fooled > 0 ORDER BY fooled DESC, judged ASC, f.id ASC LIMIT ?"
        params.append(int(limit))
        return [(_fake_from_row(row), int(row["judged"]), int(row["fooled"])) for row in self.query(sql, params)]

    @staticmethod
    def _rounds_where(player: str | None, category: str | None) -> tuple[str, list[object]]:
        """``FROM rounds r JOIN players p ... WHERE`` narrowed to a player and/or category."""
        sql = " FROM rounds r JOIN players p ON p.id = r.player_id WHERE 1 = 1"
        params: list[object] = []
        if player is not None:
            sql += " AND p.name = ?"
            params.append(player)
        if category is not None:
            sql += " AND r.category = ?"
            params.append(category)
        return sql, params

    def round_count(self, player: str | None = None, category: str | None = None) -> int:
        where, params = self._rounds_where(player, category)
        return int(self.query("SELECT COUNT(*)" + where, params)[0][0])

    def rounds(self, player: str | None = None, category: str | None = None) -> list[sqlite3.Row]:
        """Every stored answer (oldest first), with the player's name: exports and tests."""
        where, params = self._rounds_where(player, category)
        return self.query("SELECT r.*, p.name AS player" + where + " ORDER BY r.id", params)


def _fake_from_row(row: sqlite3.Row) -> FakeTweet:
    return FakeTweet(
        text=row["text"],
        model=row["model"],
        base=row["base"],
        sampling=orjson.loads(row["sampling"]),
        source=row["source"],
        pool_id=int(row["id"]),
    )
