"""The store as the game uses it: migrations, remembered settings, concurrent players.

Two players in two processes on one database must lose nothing, and a killed process
must lose no answered round (each answer is its own committed transaction).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from turing_tui.backends.base import FakeTweet
from turing_tui.store.db import MIGRATIONS, RoundRecord, Store


def test_version_1_database_upgrades_and_keeps_its_rounds(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO players (name, created, last_seen) VALUES ('ann', 0, 0)")
    conn.execute(
        "INSERT INTO rounds (player_id, category, truth, guess, correct, answer_ms, created) "
        "VALUES (1, 'vc', 'human', 'human', 1, 700, 0)"
    )
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.round_count("ann", "vc") == 1
        store.set_setting("player", "ann")
    with Store(path) as store:  # reopening is a no-op migration
        assert store.get_setting("player") == "ann"
        assert store.get_setting("missing", "dflt") == "dflt"


def _player_process(db: str, player: str, rounds: int, takes: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = Store(db)
    taken = []
    for i in range(max(rounds, takes)):
        if i < takes:
            fake = store.take_fake("vc", "m1")
            taken.append(fake.pool_id if fake else None)
        if i < rounds:
            store.record_round(RoundRecord(player, "vc", "human" if i % 2 else "machine", "human", 100 + i, model="m1"))
    store.close()
    out.put((player, taken))


def test_two_players_in_two_processes_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    with Store(db) as store:
        added = store.add_fakes("vc", [FakeTweet(text=f"pool tweet number {i} for the test", model="m1") for i in range(200)])
        assert added == 200
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_player_process, args=(str(db), name, 150, 100, out)) for name in ("ann", "bob")]
    for w in workers:
        w.start()
    results = dict(out.get(timeout=60) for _ in workers)
    for w in workers:
        w.join(30)
        assert w.exitcode == 0
    with Store(db) as store:
        assert store.round_count("ann", "vc") == 150
        assert store.round_count("bob", "vc") == 150
        assert [r["answer_ms"] for r in store.rounds("ann")] == [100 + i for i in range(150)]
        # 200 unshown fakes, 2 x 100 takes: every player got a different tweet.
        taken = results["ann"] + results["bob"]
        assert None not in taken and len(set(taken)) == 200
        assert store.pool_size("vc", "m1") == 0


KILL_SCRIPT = """
import sys, time
from turing_tui.store.db import RoundRecord, Store
store = Store(sys.argv[1])
for i in range(10_000):
    store.record_round(RoundRecord("kim", "vc", "human", "machine", i))
    print(i, flush=True)
    time.sleep(0.002)
"""


def test_killed_process_loses_no_answered_round(tmp_path: Path) -> None:
    db = tmp_path / "kill.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(db)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    reported = -1
    deadline = time.monotonic() + 30
    while reported < 30 and time.monotonic() < deadline:
        reported = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Store(db) as store:
        # Every round the process said it had recorded is there (it may have done one more).
        assert store.round_count("kim") >= reported + 1
