"""``fetch_category`` against a real HTTP server on 127.0.0.1 that can misbehave on cue.

The server serves a folder laid out like the published datasets (``<category>/NNN.txt``)
and, per URL path, a queue of faults to inject before answering properly: a 500, a 429
with Retry-After, a connection dropped halfway through the body, or a body cut short.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from conftest import make_tweet
from turing_tui.corpus.fetch import (
    MANIFEST_NAME,
    FetchFinished,
    FetchRetry,
    FetchStarted,
    PartitionFetched,
    PartitionMissing,
    fetch_category,
)
from turing_tui.corpus.load import load_category
from turing_tui.errors import NetworkError, UserError
from turing_tui.net import Backoff
from turing_tui.paths import Paths

FAST = Backoff(retries=3, base=0.01, cap=0.05)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up early (a fetch cancelling its other downloads after a
        # failure) is expected here; anything else is a bug in the fixture and is shown.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class CorpusServer:
    """A ThreadingHTTPServer serving ``root`` with injectable faults."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.faults: dict[str, list[str]] = {}
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds before each answer, to catch a fetch mid-way
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with server.lock:
                    server.hits[path] += 1
                    queue = server.faults.get(path) or []
                    fault = queue.pop(0) if queue else None
                if server.delay:
                    time.sleep(server.delay)
                target = (server.root / path.lstrip("/")).resolve()
                if fault == "500":
                    self.send_error(500, "injected")
                    return
                if fault == "429":
                    self.send_response(429)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if not target.is_file() or server.root.resolve() not in target.parents:
                    self.send_error(404)
                    return
                body = target.read_bytes()
                if fault == "drop":  # promise the whole body, send half, hang up
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if fault == "cut":  # a well-formed response whose body stops mid-line
                    body = body[: len(body) // 2].rstrip(b"\n")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def partition_hits(self, category: str) -> int:
        """GETs of partitions that exist (404 probes past the end are not downloads)."""
        return sum(n for p, n in self.hits.items() if p.startswith(f"/{category}/") and (self.root / p.lstrip("/")).is_file())

    def __enter__(self) -> CorpusServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_partitions(folder: Path, sizes: list[int | None], start: int = 0) -> int:
    """Write partitions of ``sizes`` lines (None = leave that number out); returns tweets."""
    folder.mkdir(parents=True, exist_ok=True)
    i = start
    for number, size in enumerate(sizes):
        if size is None:
            continue
        lines = []
        for _ in range(size):
            lines.append(orjson.dumps(make_tweet(i, username=f"user{i % 3}").to_twint()) + b"\n")
            i += 1
        (folder / f"{number:03d}.txt").write_bytes(b"".join(lines))
    return i - start


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[CorpusServer]:
    root = tmp_path / "remote"
    write_partitions(root / "cats", [100, 100, 37])
    with CorpusServer(root) as server:
        yield server


def fetch(paths: Paths, server: CorpusServer, category: str = "cats", **kw: object):
    events: list[object] = []
    report = fetch_category(paths, category, base_url=server.url, on_event=events.append, backoff=FAST, **kw)
    return report, events


def test_mirrors_partitions_unchanged(paths: Paths, remote: CorpusServer) -> None:
    report, events = fetch(paths, remote)
    local = paths.category_dir("cats")
    for name in ("000.txt", "001.txt", "002.txt"):
        assert (local / name).read_bytes() == (remote.root / "cats" / name).read_bytes()
    assert (report.partitions, report.downloaded, report.cached, report.tweets) == (3, 3, 0, 237)
    assert report.missing == [] and report.retries == 0
    assert report.filter.seen == 237 and report.filter.kept == 237
    assert isinstance(events[0], FetchStarted) and isinstance(events[-1], FetchFinished)
    assert sorted(e.number for e in events if isinstance(e, PartitionFetched)) == [0, 1, 2]
    # The end is a run of 404s: 003 plus gap_tolerance (3) more probes, nothing beyond.
    assert remote.hits["/cats/003.txt"] == 1 and remote.hits["/cats/006.txt"] == 1
    assert "/cats/007.txt" not in remote.hits
    manifest = orjson.loads((local / MANIFEST_NAME).read_bytes())
    assert set(manifest["partitions"]) == {"000.txt", "001.txt", "002.txt"}
    assert manifest["partitions"]["002.txt"]["lines"] == 37
    assert load_category(paths, "cats").report.seen == 237  # the manifest is not read as tweets


def test_second_run_downloads_nothing(paths: Paths, remote: CorpusServer) -> None:
    fetch(paths, remote)
    report, events = fetch(paths, remote)
    assert (report.downloaded, report.cached, report.partitions, report.tweets) == (0, 3, 3, 237)
    assert remote.partition_hits("cats") == 3  # each partition was downloaded once, ever
    assert all(e.cached for e in events if isinstance(e, PartitionFetched))
    assert events[0].verified == 3


def test_leftover_partial_file_is_downloaded_again(paths: Paths, remote: CorpusServer) -> None:
    fetch(paths, remote)
    local = paths.category_dir("cats")
    good = (local / "001.txt").read_bytes()
    (local / "001.txt").write_bytes(good[: len(good) // 3])  # as if cut off by a crash
    (local / ".002.txt.abc123.part").write_bytes(b'{"half": ')  # an atomic write's temp file
    report, _ = fetch(paths, remote)
    assert report.downloaded == 1 and report.cached == 2
    assert (local / "001.txt").read_bytes() == good
    assert load_category(paths, "cats", use_cache=False).problems == []


def test_full_partitions_without_manifest_are_kept(paths: Paths, remote: CorpusServer) -> None:
    fetch(paths, remote)
    (paths.category_dir("cats") / MANIFEST_NAME).unlink()
    report, _ = fetch(paths, remote)
    # 100-line files are certainly complete; the short last one cannot be vouched for.
    assert report.cached == 2 and report.downloaded == 1


def test_a_grown_dataset_refreshes_its_old_last_partition(paths: Paths, tmp_path: Path) -> None:
    root = tmp_path / "growing"
    write_partitions(root / "cats", [100, 37])
    with CorpusServer(root) as server:
        fetch(paths, server)
        write_partitions(root / "cats", [100, 100, 10])  # 001 filled up, 002 appeared
        report, _ = fetch(paths, server)
        assert (report.downloaded, report.cached, report.tweets) == (2, 1, 210)
        for name in ("001.txt", "002.txt"):
            assert (paths.category_dir("cats") / name).read_bytes() == (root / "cats" / name).read_bytes()
        again, _ = fetch(paths, server)
        assert (again.downloaded, again.cached) == (0, 3)


def test_a_web_page_is_not_a_partition(paths: Paths, tmp_path: Path) -> None:
    root = tmp_path / "site"
    (root / "cats").mkdir(parents=True)
    (root / "cats" / "000.txt").write_text("<!doctype html>\n<html>Not found, but 200</html>\n")
    with CorpusServer(root) as server, pytest.raises(UserError, match="is not twint JSON lines.*data URL"):
        fetch(paths, server)
    assert not list(paths.category_dir("cats").glob("*.txt"))


def test_500_then_success_is_retried(paths: Paths, remote: CorpusServer) -> None:
    remote.faults["/cats/001.txt"] = ["500", "429"]
    report, events = fetch(paths, remote)
    retries = [e for e in events if isinstance(e, FetchRetry)]
    assert [(e.number, e.reason) for e in retries] == [(1, "HTTP 500"), (1, "HTTP 429")]
    assert report.retries == 2 and report.downloaded == 3
    assert (paths.category_dir("cats") / "001.txt").read_bytes() == (remote.root / "cats/001.txt").read_bytes()


def test_dropped_connection_mid_body_is_retried(paths: Paths, remote: CorpusServer) -> None:
    remote.faults["/cats/000.txt"] = ["drop"]
    remote.faults["/cats/002.txt"] = ["cut"]
    report, events = fetch(paths, remote)
    reasons = {e.number: e.reason for e in events if isinstance(e, FetchRetry)}
    assert reasons[0] == "RemoteProtocolError" and reasons[2] == "truncated body"
    for name in ("000.txt", "002.txt"):
        assert (paths.category_dir("cats") / name).read_bytes() == (remote.root / "cats" / name).read_bytes()
    assert report.tweets == 237


def test_missing_partition_in_the_middle_is_reported(paths: Paths, tmp_path: Path) -> None:
    root = tmp_path / "holey"
    write_partitions(root / "cats", [100, 100, None, 100, 5])
    with CorpusServer(root) as server:
        report, events = fetch(paths, server)
    assert report.missing == [2] and report.partitions == 4 and report.tweets == 305
    assert [e.number for e in events if isinstance(e, PartitionMissing)] == [2]
    assert report.as_dict()["missing"] == ["002.txt"]


def test_persistent_failure_keeps_finished_partitions(paths: Paths, remote: CorpusServer) -> None:
    remote.faults["/cats/002.txt"] = ["500"] * 10
    with pytest.raises(NetworkError, match="HTTP 500.*run again to resume"):
        fetch(paths, remote, concurrency=1)
    local = paths.category_dir("cats")
    assert sorted(p.name for p in local.glob("*.txt")) == ["000.txt", "001.txt"]
    remote.faults.clear()
    report, _ = fetch(paths, remote)
    assert (report.downloaded, report.cached) == (1, 2)


def test_unreachable_host_is_one_sentence(paths: Paths) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NetworkError) as info:
        fetch_category(paths, "vc", base_url=f"http://127.0.0.1:{port}", backoff=Backoff(retries=1, base=0.01))
    message = str(info.value)
    assert message.startswith("Could not connect to 127.0.0.1") and "\n" not in message
    assert not list(paths.category_dir("vc").glob("*.txt"))


def test_category_the_server_lacks(paths: Paths, remote: CorpusServer) -> None:
    with pytest.raises(UserError, match="No partitions of 'dogs'.*vc, republicans"):
        fetch(paths, remote, category="dogs")


def test_bad_names_and_urls(paths: Paths, remote: CorpusServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="not a valid category"):
        fetch(paths, remote, category="../etc")
    with pytest.raises(UserError, match="must start with http"):
        fetch_category(paths, "cats", base_url="ftp://example.org/data")
    monkeypatch.setenv("TURING_TUI_DATA_URL", remote.url + "/")  # a trailing slash is fine
    report = fetch_category(paths, "cats", backoff=FAST)
    assert report.base_url == remote.url and report.partitions == 3


def test_stop_early_keeps_complete_partitions(paths: Paths, remote: CorpusServer) -> None:
    done: list[int] = []

    def on_event(event: object) -> None:
        if isinstance(event, PartitionFetched):
            done.append(event.number)

    report = fetch_category(
        paths, "cats", base_url=remote.url, concurrency=1, on_event=on_event, should_stop=lambda: bool(done)
    )
    assert report.cancelled and done == [0]
    assert [p.name for p in paths.category_dir("cats").glob("*.txt")] == ["000.txt"]
    again = fetch_category(paths, "cats", base_url=remote.url)
    assert (again.cached, again.downloaded) == (1, 2)


def test_interrupted_cli_leaves_only_whole_partitions(paths: Paths, tmp_path: Path) -> None:
    """Ctrl-C in the middle: exit 130, every file on disk complete, the next run resumes."""
    root = tmp_path / "slow"
    write_partitions(root / "cats", [100] * 12 + [5])
    local = paths.category_dir("cats")
    with CorpusServer(root) as server:
        server.delay = 0.1
        command = [sys.executable, "-m", "turing_tui", "--home", str(paths.root), "data", "fetch", "cats"]
        child = subprocess.Popen(
            [*command, "--base-url", server.url, "-j", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while len(list(local.glob("*.txt"))) < 3 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
        assert child.returncode == 130 and "Interrupted." in err and "Traceback" not in err
        kept = sorted(p.name for p in local.glob("*.txt"))
        assert 3 <= len(kept) < 13
        for name in kept:
            assert (local / name).read_bytes() == (root / "cats" / name).read_bytes()
        assert not [p for p in local.iterdir() if p.name.endswith(".part")]
        # The manifest vouches only for files that are there (a write that finished as the
        # interrupt landed may be missing from it: a full file is re-verified next run).
        manifest = orjson.loads((local / MANIFEST_NAME).read_bytes())
        assert set(manifest["partitions"]) <= set(kept) and len(manifest["partitions"]) >= len(kept) - 2
        server.delay = 0.0
        report, _ = fetch(paths, server)
    assert (report.cached, report.downloaded, report.tweets) == (len(kept), 13 - len(kept), 1205)


def test_called_from_inside_an_event_loop(paths: Paths, remote: CorpusServer) -> None:
    import asyncio

    async def inside() -> int:
        return fetch_category(paths, "cats", base_url=remote.url).partitions

    assert asyncio.run(inside()) == 3


@pytest.mark.slow
@pytest.mark.shared
def test_fetches_all_of_shared_vc(paths: Paths, shared_tweets: Path) -> None:
    with CorpusServer(shared_tweets) as server:
        report = fetch_category(paths, "vc", base_url=server.url, concurrency=8, backoff=FAST)
    assert report.partitions == len(list((shared_tweets / "vc").glob("*.txt"))) == 489
    assert report.tweets == 48_844 and report.missing == []
    assert report.filter.seen == 48_844
    for name in ("000.txt", "250.txt", "488.txt"):
        assert (paths.category_dir("vc") / name).read_bytes() == (shared_tweets / "vc" / name).read_bytes()
