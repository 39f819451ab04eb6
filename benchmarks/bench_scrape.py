"""Scrape throughput: posts per second from HTTP to written JSON lines, 4 handles in flight.

Target (issue "Scraping"): >= 500 posts/s on the 2-core dev machine against the fake
server, with 4 handles in flight. The fake Bluesky/Mastodon server (tests/fakes_social.py)
runs in its own process, as a remote would, and each figure is a whole ``run_scrape``:
requests, JSON decoding, mapping to HumanTweet, the corpus filters, atomic writes and
resume-point saves. Printed side by side, in one process:

* 4 in flight vs 1 in flight, with no added latency (CPU-bound: what our code costs)
* the same with 30 ms of latency per request (closer to a real API, where overlapping
  requests is what concurrency buys)
* Bluesky pages of 100 vs Mastodon pages of 40
* 4 in flight into a category that already holds the 48,844 vc tweets (every write
  deduplicates against them), when ../shared/tweets/vc is present

    python benchmarks/bench_scrape.py [--posts 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SHARED_VC = REPO.parent / "shared" / "tweets" / "vc"
TARGET = 500.0
HANDLES = 4

sys.path.insert(0, str(REPO))
from turing_tui.net import Backoff  # noqa: E402
from turing_tui.paths import Paths  # noqa: E402
from turing_tui.scrape.run import plan_scrape, run_scrape  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeServer:
    """tests/fakes_social.py in a child process."""

    def __init__(self, posts: int, delay: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, str(REPO / "tests" / "fakes_social.py"), "--port", str(self.port),
                "--posts", str(posts), "--handles", str(HANDLES), "--delay", str(delay)]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{self.url}/api/v1/accounts/lookup", params={"acct": "nobody@x.y"}, timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the fake server did not start") from None
                time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def one_run(server: FakeServer, backend: str, concurrency: int, seed_vc: bool) -> tuple[float, int]:
    """Seconds and posts read for one whole scrape into a fresh data root."""
    with tempfile.TemporaryDirectory(prefix="bench-scrape-") as tmp:
        paths = Paths.resolve(tmp).ensure()
        if seed_vc:
            shutil.copytree(SHARED_VC, paths.category_dir("bench"))
        if backend == "bluesky":
            lines = [f"bsky:user{i}.bsky.social" for i in range(HANDLES)]
        else:
            lines = [f"mastodon:user{i}@fake.social" for i in range(HANDLES)]
        (paths.sources_dir / "bench.txt").write_text("\n".join(lines) + "\n")
        plan = plan_scrape(paths, "bench", base_url=server.url, backend=backend, limit=0,
                           concurrency=concurrency, backoff=Backoff(retries=0))  # fmt: skip
        start = time.perf_counter()
        summary = run_scrape(paths, plan)
        seconds = time.perf_counter() - start
        if summary.failed:
            raise RuntimeError(f"{summary.failed[0].source}: {summary.failed[0].error}")
        return seconds, summary.fetched


def measure(server: FakeServer, backend: str, concurrency: int, runs: int, seed_vc: bool = False) -> tuple[float, int]:
    one_run(server, backend, concurrency, seed_vc)  # warm-up: imports, connections, caches
    rates, posts = [], 0
    for _ in range(runs):
        seconds, posts = one_run(server, backend, concurrency, seed_vc)
        rates.append(posts / seconds)
    return statistics.median(rates), posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=2000, help="posts per handle")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    print(f"{HANDLES} handles x {args.posts:,} posts, median of {args.runs} runs; target >= {TARGET:.0f} posts/s with 4 in flight\n")
    print(f"{'scenario':<52} {'posts':>7} {'posts/s':>9}")
    rows: list[tuple[str, int, float]] = []
    for delay in (0.0, 0.03):
        server = FakeServer(args.posts, delay)
        try:
            for backend, concurrency in (("bluesky", 4), ("bluesky", 1), ("mastodon", 4)):
                if delay and backend == "mastodon":
                    continue
                rate, posts = measure(server, backend, concurrency, args.runs)
                name = f"{backend}, {concurrency} in flight, {delay * 1000:.0f} ms latency"
                rows.append((name, posts, rate))
                print(f"{name:<52} {posts:>7,} {rate:>9,.0f}", flush=True)
            if delay == 0.0 and SHARED_VC.is_dir():
                rate, posts = measure(server, "bluesky", 4, args.runs, seed_vc=True)
                name = "bluesky, 4 in flight, into vc (48,844 tweets held)"
                rows.append((name, posts, rate))
                print(f"{name:<52} {posts:>7,} {rate:>9,.0f}", flush=True)
        finally:
            server.close()
    headline = rows[0][2]
    print(f"\n4 in flight vs 1 (0 ms):  {headline:,.0f} vs {rows[1][2]:,.0f} posts/s")
    latency = [r for r in rows if "30 ms" in r[0]]
    if len(latency) == 2:
        print(f"4 in flight vs 1 (30 ms): {latency[0][2]:,.0f} vs {latency[1][2]:,.0f} posts/s ({latency[0][2] / latency[1][2]:.1f}x)")
    verdict = "meets" if headline >= TARGET else "MISSES"
    print(f"Target: >= {TARGET:.0f} posts/s with 4 handles in flight -> {headline:,.0f} posts/s, {verdict} the target.")


if __name__ == "__main__":
    main()
