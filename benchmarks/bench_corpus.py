"""How fast a category is ready for sampling: vc (48,844 tweets) against the targets.

Targets (issue "Foundation"): ready in under 1.0 s and under 200 MB on the 2-core dev
machine. Each figure is taken in a fresh interpreter (so "cold" really is cold: no
warmed-up allocator, no cache in memory), three times, and the median is printed:

* cold, no cache     ``load_folder``: parse + filter every partition
* cold, cache write  ``load_category`` with an empty cache (what the first ``play`` pays)
* warm               ``load_category`` with the cache in place (every later start)

It also times what ``add_tweets`` pays per call to learn a category's ids and texts
(first call in a process, then later calls served by its per-file cache).

"cpu s" is the process's CPU time over the same span: on a machine shared with other
work it shows what the load itself costs when wall time is inflated by contention.
Memory is the peak resident set of the child process minus its size before loading
(including the background cache write, which is not on the timed path).

    python benchmarks/bench_corpus.py [--data ../shared/tweets] [--category vc] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 1.0
TARGET_MB = 200.0

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from turing_tui.paths import Paths
from turing_tui.corpus.load import flush_cache_writes, load_category, load_folder
mode, root, category = sys.argv[1], sys.argv[2], sys.argv[3]
paths = Paths.resolve(root)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start, cpu_start = time.perf_counter(), time.process_time()
if mode == "nocache":
    corpus = load_folder(paths.category_dir(category), category)
else:
    corpus = load_category(paths, category)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
flush_cache_writes()  # the background cache write counts towards memory, not time
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "cpu": cpu, "mb": (peak - before) / 1024, "peak_mb": peak / 1024,
                  "tweets": len(corpus), "seen": corpus.report.seen}))
"""


def child(mode: str, root: Path, category: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(root), category],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "tweets")
    parser.add_argument("--category", default="vc")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    source = (args.data / args.category).resolve()
    if not source.is_dir():
        sys.exit(f"{source} not found; pass --data DIR holding <category>/NNN.txt partitions.")

    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        (root / "data" / args.category).symlink_to(source)  # read in place, never copied
        cache = root / "cache"
        rows: dict[str, list[dict[str, float]]] = {"cold, no cache": [], "cold, cache write": [], "warm (cache)": []}
        for _ in range(args.runs):
            rows["cold, no cache"].append(child("nocache", root, args.category))
            if cache.exists():
                for f in cache.rglob("*.marshal"):
                    f.unlink()
            rows["cold, cache write"].append(child("cache", root, args.category))
            rows["warm (cache)"].append(child("cache", root, args.category))

    first = rows["cold, no cache"][0]
    load = os.getloadavg()[0]
    print(
        f"{args.category}: {first['seen']:,} tweets in the files, {first['tweets']:,} usable; "
        f"median of {args.runs} runs; load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'':20} {'seconds':>8} {'cpu s':>6} {'target':>7} {'MB':>7} {'target':>7}  verdict")
    for label, samples in rows.items():
        seconds = statistics.median(s["seconds"] for s in samples)
        cpu = statistics.median(s["cpu"] for s in samples)
        mb = statistics.median(s["mb"] for s in samples)
        ok = seconds < TARGET_SECONDS and mb < TARGET_MB
        print(
            f"{label:20} {seconds:8.3f} {cpu:6.3f} {TARGET_SECONDS:7.1f} {mb:7.0f} {TARGET_MB:7.0f}  "
            f"{'meets target' if ok else 'MISSES target'} ({seconds / TARGET_SECONDS:.0%} of the time budget)"
        )
    bench_dedupe(source)


def bench_dedupe(folder: Path) -> None:
    """What add_tweets pays to learn the category's ids and texts: a scraper calls it per page."""
    import time

    sys.path.insert(0, str(REPO))
    from turing_tui.corpus.importers import existing_keys

    timings = []
    for _ in range(3):
        start = time.perf_counter()
        ids, _texts = existing_keys(folder)
        timings.append(time.perf_counter() - start)
    print(
        f"add_tweets dedupe keys ({len(ids):,} ids): first call {timings[0]:.3f} s, "
        f"later calls {min(timings[1:]):.3f} s (per-file cache, {timings[0] / min(timings[1:]):.0f}x)"
    )


if __name__ == "__main__":
    main()
