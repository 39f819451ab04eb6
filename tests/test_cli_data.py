"""``turing-tui data fetch|import|stats``: exit codes, messages, JSON, against a real server."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from conftest import make_tweet
from test_fetch import CorpusServer, write_partitions
from turing_tui.cli import cli
from turing_tui.corpus.twint import write_jsonl
from turing_tui.paths import Paths


def run(paths: Paths, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--home", str(paths.root), "data", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "remote"
    write_partitions(root / "cats", [100, 20])
    with CorpusServer(root) as running:
        yield running


def test_fetch_prints_a_summary_and_resumes(paths: Paths, server: CorpusServer) -> None:
    code, out, _ = run(paths, "fetch", "cats", "--base-url", server.url)
    assert code == 0
    assert "cats: 2 partitions (2 downloaded, 0 already here), 120 tweets" in out
    assert "120 of 120 tweets kept" in out
    code, out, _ = run(paths, "fetch", "cats", "--base-url", server.url, "--json")
    report = orjson.loads(out)
    assert code == 0 and (report["downloaded"], report["cached"], report["tweets"]) == (0, 2, 120)


def test_fetch_retries_are_shown_and_missing_partitions_warned(paths: Paths, tmp_path: Path) -> None:
    root = tmp_path / "holey"
    write_partitions(root / "cats", [100, None, 100])
    with CorpusServer(root) as server:
        server.faults["/cats/000.txt"] = ["429"]
        code, out, err = run(paths, "fetch", "cats", "--base-url", server.url)
    assert code == 0
    assert "cats/000.txt: HTTP 429, retrying" in err
    assert "cats/001.txt is missing upstream" in err and "Missing upstream: 001." in out


def test_fetch_errors_are_one_sentence(paths: Paths, server: CorpusServer) -> None:
    code, _, err = run(paths, "fetch", "../../etc", "--base-url", server.url)
    assert code == 2 and err.startswith("Error: '../../etc' is not a valid category name")
    code, _, err = run(paths, "fetch", "dogs", "--base-url", server.url)
    assert code == 2 and "No partitions of 'dogs'" in err
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = run(paths, "fetch", "vc", "--base-url", f"http://127.0.0.1:{port}", "--retries", "0")
    assert code == 3 and "Error: Could not connect to 127.0.0.1" in err
    assert "Traceback" not in err


def test_import_then_stats(paths: Paths, tmp_path: Path) -> None:
    source = tmp_path / "mine.jsonl"
    write_jsonl(source, [make_tweet(i) for i in range(3)] + [make_tweet(9, text="see https://example.com")])
    code, out, _ = run(paths, "import", str(source), "--category", "mine")
    assert code == 0 and "Added 3 new tweets to 'mine'" in out and "1 contains a link" in out
    code, out, _ = run(paths, "import", str(source), "--category", "mine", "--json")
    assert code == 0 and orjson.loads(out)["added"] == 0

    code, out, _ = run(paths, "stats", "--category", "mine", "--json")
    stats = orjson.loads(out)
    assert code == 0 and (stats["tweets"], stats["usable"], stats["authors"]) == (3, 3, {"alice": 3})
    code, out, _ = run(paths, "stats")
    assert code == 0 and "Human tweets by category" in out and "@alice" in out and "contains a link" in out


def test_import_and_stats_errors(paths: Paths, tmp_path: Path) -> None:
    code, _, err = run(paths, "import", str(tmp_path / "missing.jsonl"), "--category", "mine")
    assert code == 2 and "does not exist" in err
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01\x02" * 100)
    code, _, err = run(paths, "import", str(junk), "--category", "mine")
    assert code == 2 and "is not a format turing-tui can import" in err
    code, _, err = run(paths, "import", str(junk), "--category", "a b")
    assert code == 2 and "not a valid category name" in err
    code, _, err = run(paths, "stats")
    assert code == 2 and "No category has data" in err and "turing-tui data fetch vc" in err
    code, _, err = run(paths, "stats", "--category", "vc")
    assert code == 2 and "Get it with: turing-tui data fetch vc" in err


def test_real_entry_point_exits_cleanly(paths: Paths, tmp_path: Path) -> None:
    """The installed command, in a subprocess: one line on stderr, exit 2, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "turing_tui", "--home", str(paths.root), "data", "import", str(tmp_path / "nope"), "-c", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "does not exist" in done.stderr
