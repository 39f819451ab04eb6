"""How instant and how fair the game feels: keypress latency, waits by truth, cold start.

Three figures, printed side by side in one run (targets from the issue "The game"):

1. 200 rounds through the real app (Pilot) with a ready pool: p50/p99 of
   keypress-to-next-tweet, i.e. from pressing ``n`` until the next tweet is on the card
   and the screen has refreshed. Target: p99 < 50 ms.
2. Fairness of waiting: the mean of (1) split by the truth of the tweet that appeared,
   and the mean time ``RoundDealer.deal`` takes with an empty pool and a generator that
   needs 30 ms a batch, split by truth. Human and machine must not differ beyond noise:
   each mean is printed with its standard error and the difference in standard errors.
3. Cold start of ``turing-tui play`` to the first tweet on screen, against an
   OpenAI-compatible HTTP generator on 127.0.0.1, in a pseudo-terminal, median of 3:
   a first run (no corpus cache, empty pool: the first machine tweet comes over HTTP)
   and a later run in the same data root. Target: < 2 s.

Uses ../shared/tweets/vc when present (48,844 tweets, linked, not copied), else 2,000
invented tweets.

    python benchmarks/bench_game.py [--rounds 200] [--cold-runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import pty
import random
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import SHARED, make_tweet  # noqa: E402
from tests.gamekit import ModelServer, ScriptedGenerator  # noqa: E402
from turing_tui.corpus.twint import write_jsonl  # noqa: E402
from turing_tui.paths import Paths  # noqa: E402
from turing_tui.store.db import Store  # noqa: E402

TARGET_P99_MS = 50.0
TARGET_COLD_S = 2.0


def make_root() -> tuple[Paths, str]:
    root = Paths.resolve(tempfile.mkdtemp(prefix="bench-game-")).ensure()
    shared = SHARED / "tweets" / "vc"
    if shared.is_dir():
        os.symlink(shared, root.category_dir("vc"))
        return root, f"{shared} (linked)"
    write_jsonl(root.category_dir("vc") / "000.txt", [make_tweet(i) for i in range(2000)])
    return root, "2,000 invented tweets"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def mean_se(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0] if values else float("nan"), float("nan"))
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


# -- 1 and 2a: keypress to next tweet through Pilot ----------------------------------------
async def pilot_rounds(paths: Paths, rounds: int) -> list[tuple[str, float]]:
    from turing_tui.ui.app import build_app

    from turing_tui.backends.base import FakeTweet
    from turing_tui.corpus.load import load_category

    store = Store(paths.db_path)
    generator = ScriptedGenerator()
    # Fakes as long as real tweets (a real tweet's words, shuffled), so that the two kinds
    # of card cost the same to draw and any difference left would be the game's doing.
    rng = random.Random(0)
    corpus = load_category(paths, "vc")
    fakes = []
    for tweet in rng.sample(corpus.tweets, rounds + 20):
        words = tweet.display_text.split(" ")
        rng.shuffle(words)
        fakes.append(FakeTweet(text=" ".join(words), model=generator.model_id, base="scratch", sampling={"temperature": 0.9}, source="local"))
    store.add_fakes("vc", fakes)
    app = build_app(paths=paths, screen="play", store=store, generator=generator, category="vc", player="bench", seed=42)
    samples: list[tuple[str, float]] = []
    # The clock stops at the first frame the app sends to its driver after the new tweet
    # went on the card (App._display is the one place frames leave the app), not when
    # Pilot returns: Pilot's own settle-and-idle wait (~50 ms here) is not player latency.
    frames: list[float] = []
    display = app._display

    def timed_display(screen: object, renderable: object) -> None:
        frames.append(time.perf_counter())
        display(screen, renderable)  # type: ignore[arg-type]

    app._display = timed_display  # type: ignore[method-assign]
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        while screen.current is None:
            await pilot.pause(0.01)
        for _ in range(rounds):
            number = screen.current.number
            await pilot.press("h" if number % 2 else "m")
            while screen.pending is None:  # the next round is dealt while the player reads
                await pilot.pause(0.001)
            await pilot.pause()
            frames.clear()
            started = time.perf_counter()
            await pilot.press("n")
            while screen.current.number == number or not frames:
                await pilot.pause(0)
            samples.append((screen.current.truth, (frames[0] - started) * 1000))
    store.close()
    return samples


# -- 2b: dealing with an empty pool, by truth ----------------------------------------------
def deal_waits(paths: Paths, rounds: int) -> list[tuple[str, float]]:
    from turing_tui.corpus.load import load_category
    from turing_tui.game.rounds import FakeSupply, RoundDealer

    store = Store(paths.root / "deal.sqlite3")
    generator = ScriptedGenerator(model_id="slow-gpt", delay=0.03)
    supply = FakeSupply(store, "vc", lambda: generator, model_id="slow-gpt", low_water=1, batch=1).start()
    dealer = RoundDealer(store, load_category(paths, "vc"), supply, "bench", seed=7)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        round_ = dealer.deal(timeout=10)
        assert round_ is not None
        samples.append((round_.truth, (time.perf_counter() - started) * 1000))
        # No pause for the refill: after a machine round the next deal must wait for the
        # generator, after a human round it has its machine candidate in hand. That wait
        # depends on the previous round only, so it must not differ by this round's truth.
    supply.close()
    store.close()
    return samples


# -- 3: cold start in a pseudo-terminal -------------------------------------------------
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")


def fresh_root(paths: Paths) -> Paths:
    fresh = Paths.resolve(tempfile.mkdtemp(prefix="bench-cold-")).ensure()
    os.symlink(paths.category_dir("vc").resolve(), fresh.category_dir("vc"))
    return fresh


def cold_start(fresh: Paths, url: str) -> float:
    """Seconds from spawning ``turing-tui play`` in a pty to "who wrote this?" on screen."""
    master, slave = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 110, 0, 0))
    env = {**os.environ, "TURING_TUI_HOME": str(fresh.root), "TERM": "xterm-256color"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "turing_tui", "play", "--category", "vc", "--player", "cold", "--endpoint", url, "--protocol", "openai"],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    elapsed = float("nan")
    try:
        while time.perf_counter() - started < 30:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                seen += chunk
                if b"who wrote this?" in ANSI.sub(b"", seen[-20000:]):
                    elapsed = time.perf_counter() - started
                    break
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.close(master)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()
    paths, source = make_root()
    print(f"tweets: {source}")

    samples = asyncio.run(pilot_rounds(paths, args.rounds))
    latencies = [ms for _, ms in samples]
    p50, p99 = pct(latencies, 0.50), pct(latencies, 0.99)
    print(f"\n1. keypress-to-next-tweet over {len(samples)} rounds (Pilot, ready pool)")
    print(f"   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   max {max(latencies):6.1f} ms   target p99 < {TARGET_P99_MS:.0f} ms: {'MET' if p99 < TARGET_P99_MS else 'MISSED'}")

    print("\n2. waits by truth (mean ± standard error; |diff| under ~2 SE is noise)")
    for label, data in (("keypress-to-next-tweet", samples), ("deal() with empty pool, 30 ms generator", deal_waits(paths, 100))):
        human = [ms for truth, ms in data if truth == "human"]
        machine = [ms for truth, ms in data if truth == "machine"]
        (hm, hse), (mm, mse) = mean_se(human), mean_se(machine)
        z = abs(hm - mm) / math.sqrt(hse**2 + mse**2) if hse == hse and mse == mse and (hse or mse) else float("nan")
        print(f"   {label:<42} human {hm:6.1f} ± {hse:4.1f} ms (n={len(human)})   machine {mm:6.1f} ± {mse:4.1f} ms (n={len(machine)})   diff {z:4.1f} SE")

    first: list[float] = []
    later: list[float] = []
    with ModelServer(delay=0.02) as server:
        for _ in range(args.cold_runs):
            root = fresh_root(paths)
            first.append(cold_start(root, server.url))  # no corpus cache, empty pool
            later.append(cold_start(root, server.url))  # corpus cache written, pool filled
    print(f"\n3. cold start of `turing-tui play` to the first tweet on screen (new process, HTTP generator), {len(first)} runs each")
    for label, runs in (("first run (no corpus cache, empty pool)", first), ("later runs (cache, pooled fakes)", later)):
        median = statistics.median(runs)
        verdict = "MET" if median < TARGET_COLD_S else "MISSED"
        print(f"   {label:<42} median {median:5.2f} s   runs {', '.join(f'{r:.2f}' for r in runs)} s   target < {TARGET_COLD_S:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
