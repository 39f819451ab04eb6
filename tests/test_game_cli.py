"""``turing-tui leaderboard`` and ``turing-tui play`` from the command line: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from turing_tui.backends.base import FakeTweet
from turing_tui.cli import cli
from turing_tui.paths import Paths
from turing_tui.store.db import RoundRecord, Store

from tests.gamekit import offline_hub, write_corpus


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def played(paths: Paths) -> Paths:
    with Store(paths.db_path) as store:
        store.add_fakes("vc", [FakeTweet(text="A fake that fools people every time", model="vc-scratch")])
        fake = store.take_fake("vc", "vc-scratch")
        for i in range(12):
            store.record_round(RoundRecord("ann", "vc", "human", "human" if i < 9 else "machine", 1000 + i, model="vc-scratch"))
        for guess in ("human", "human", "machine"):
            store.record_round(RoundRecord("[bold]bob[/]", "vc", "machine", guess, 700, fake_id=fake.pool_id, model="vc-scratch"))  # type: ignore[union-attr]
        store.record_round(RoundRecord("ann", "covid19", "human", "human", 500, model="other"))
    return paths


def test_leaderboard_json_for_scripts(played: Paths) -> None:
    code, out, _ = run("leaderboard", "--json")
    assert code == 0
    rows = json.loads(out)
    by = {(r["player"], r["category"]): r for r in rows}
    ann = by[("ann", "vc")]
    assert (ann["rounds"], ann["correct"], ann["accuracy"], ann["best_streak"], ann["rank"]) == (12, 9, 0.75, 9, 1)
    assert 0 < ann["ci_low"] < 0.75 < ann["ci_high"] < 1
    assert by[("[bold]bob[/]", "vc")]["rounds"] == 3 and by[("ann", "covid19")]["rounds"] == 1

    code, out, _ = run("leaderboard", "--category", "vc", "--models", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"model": "vc-scratch", "category": "vc", "rounds": 3, "fooled": 2, "fool_rate": 0.6667, "ci_low": 0.2077, "ci_high": 0.9385}
    ]


def test_leaderboard_tables_show_names_literally(played: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # a wide terminal: no cell wraps
    code, out, _ = run("leaderboard", "--category", "vc")
    assert code == 0 and "[bold]bob[/]" in out and "ann" in out and "covid19" not in out
    code, out, _ = run("leaderboard", "--models")
    assert code == 0 and "vc-scratch" in out and "A fake that fools people every time" in out and "2/3 fooled" in out


def test_leaderboard_on_a_fresh_root(paths: Paths) -> None:
    assert run("leaderboard", "--json")[:2] == (0, "[]\n")
    code, out, _ = run("leaderboard")
    assert code == 0 and "No rounds played yet" in out
    code, _, err = run("leaderboard", "--category", "../etc")
    assert code == 2 and err.startswith("Error: '../etc' is not a valid category name")


def test_play_refuses_bad_generators_with_one_sentence(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    write_corpus(paths, n=10)
    offline_hub(monkeypatch, paths)
    code, _, err = run("play", "--category", "vc", "--model", str(paths.root / "nope"))
    assert code == 2 and err.strip().count("\n") == 0 and "No model at" in err
    code, _, err = run("play", "--category", "vc", "--endpoint", "localhost:8000")
    assert code == 2 and "is not a URL" in err
    code, _, err = run("play", "--category", "vc", "--endpoint", "http://h:1", "--protocol", "modelzoo")
    assert code == 2 and "/v1/models/<name>/predict" in err
    code, _, err = run("play", "--category", "vc")
    assert code == 2 and "turing-tui train --category vc --from-scratch" in err and "--endpoint" in err
    code, _, err = run("play", "--category", "no/such")
    assert code == 2 and "not a valid category name" in err


def test_play_first_run_offline_names_the_problem(paths: Paths) -> None:
    """A real subprocess: no tweets yet, and the dataset mirror cannot be reached."""
    env = {"TURING_TUI_HOME": str(paths.root), "TURING_TUI_DATA_URL": "http://127.0.0.1:9/data", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "turing_tui", "play", "--category", "vc", "--endpoint", "http://127.0.0.1:9"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Error:" in proc.stderr
