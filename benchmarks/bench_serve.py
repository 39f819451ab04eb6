"""Serving throughput: dynamic batching on vs off, same model, same clients, one process.

32 concurrent clients (closed loop: each sends its next request when the last one is
answered) ask ``turing-tui serve``'s OpenAI endpoint for tweets. The same loaded model is
served twice on 127.0.0.1: once with batching (up to 32 sequences per generate call, a
5 ms window) and once with batching off (one request per call, one after another on the
model thread, as a naive server does). Printed: requests/s, p50 and p99 latency, and the
requests/s ratio against the issue's target (>= 5x).

By default the model is a from-scratch GPT-2 of the shape ``train --from-scratch`` makes
(4 layers, 256 wide, 8k vocab, untrained, so every completion runs the full
``--max-new-tokens``); pass ``--model PATH`` to measure a real checkpoint instead.

    python benchmarks/bench_serve.py
    python benchmarks/bench_serve.py --clients 32 --requests 2 --rounds 2 --max-new-tokens 32
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from turing_tui.serve.app import Limits, create_app  # noqa: E402
from turing_tui.serve.batching import BATCHING_OFF, BatchPolicy  # noqa: E402
from turing_tui.serve.server import BackgroundServer, tune_for_serving  # noqa: E402

TEXTS = [f"Founders should focus on distribution. Lesson #{i} from this week of building." for i in range(200)]


def scratch_checkpoint(dest: Path) -> Path:
    """A from-scratch GPT-2 at the default ``train --from-scratch`` shape, untrained."""
    from turing_tui.model.checkpoint import save_checkpoint
    from turing_tui.model.generate import Sampling
    from turing_tui.model.scratch import ScratchShape, make_scratch_model, train_tweet_tokenizer

    tokenizer = train_tweet_tokenizer(TEXTS, vocab_size=8192, min_frequency=1)
    model = make_scratch_model(tokenizer, ScratchShape(), seed=0)
    metadata = {"category": "bench", "base": "scratch", "created": time.time(), "status": "complete",
                "sampling": Sampling().as_dict()}
    return save_checkpoint(dest / "bench", model, tokenizer, metadata)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def load(url: str, clients: int, per_client: int, max_new_tokens: int) -> tuple[float, list[float]]:
    """Run the closed-loop load; returns (wall seconds, per-request latencies)."""
    latencies: list[float] = []
    body = {"prompt": "", "max_tokens": max_new_tokens, "temperature": 1.0}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        async def one_client() -> None:
            for _ in range(per_client):
                started = time.perf_counter()
                r = await client.post("/v1/completions", json=body)
                r.raise_for_status()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return time.perf_counter() - started, latencies


def measure(generator: object, policy: BatchPolicy, args: argparse.Namespace) -> tuple[float, list[float], dict[str, int]]:
    """One round against a fresh server: (wall seconds, latencies, the server's batch stats)."""
    app = create_app(generator, limits=Limits(max_new_tokens=max(256, args.max_new_tokens)), policy=policy)  # type: ignore[arg-type]
    with BackgroundServer(app) as server:
        # Warm up with one full round: on a GPU each new batch shape costs ~1 s once
        # (kernel selection), which would otherwise be charged to whichever mode ran first.
        asyncio.run(load(server.url, args.clients, 1, args.max_new_tokens))
        before = httpx.get(server.url + "/health").json()["stats"]
        wall, latencies = asyncio.run(load(server.url, args.clients, args.requests, args.max_new_tokens))
        after = httpx.get(server.url + "/health").json()["stats"]
    return wall, latencies, {"calls": after["batches"] - before["batches"], "largest": after["largest_batch"],
                             "busy": after["busy_s"] - before["busy_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2, help="requests per client per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating the two modes")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--model", default=None, help="a checkpoint folder (default: a from-scratch GPT-2)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads; 1 keeps a busy shared machine from stalling OpenMP barriers")
    args = parser.parse_args()

    import torch

    from turing_tui.model.generate import TextGenerator

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        source = args.model or scratch_checkpoint(Path(tmp))
        generator = tune_for_serving(TextGenerator.load(source, device=args.device))  # as `serve` does
        params = sum(p.numel() for p in generator.model.parameters()) / 1e6
        print(f"model {generator.name}: {params:.1f}M parameters on {generator.device} "
              f"(torch threads {torch.get_num_threads()}); {args.clients} clients x {args.requests} requests x {args.rounds} rounds, "
              f"{args.max_new_tokens} new tokens each")
        modes = (("batching off", BATCHING_OFF), ("batching on", BatchPolicy(max_batch=32, max_wait_s=0.005)))
        walls: dict[str, float] = {label: 0.0 for label, _ in modes}
        latencies: dict[str, list[float]] = {label: [] for label, _ in modes}
        calls: dict[str, int] = {label: 0 for label, _ in modes}
        largest: dict[str, int] = {label: 0 for label, _ in modes}
        busy: dict[str, float] = {label: 0.0 for label, _ in modes}
        # Modes alternate round by round, so a neighbour's load on a shared machine hits both alike.
        for _ in range(args.rounds):
            for label, policy in modes:
                wall, lat, stats = measure(generator, policy, args)
                walls[label] += wall
                latencies[label] += lat
                calls[label] += stats["calls"]
                largest[label] = max(largest[label], stats["largest"])
                busy[label] += stats["busy"]
        results = {}
        for label, _ in modes:
            lat = latencies[label]
            results[label] = r = {"rps": len(lat) / walls[label], "p50": statistics.median(lat), "p99": percentile(lat, 99)}
            print(f"  {label:13s} {r['rps']:8.2f} req/s   p50 {r['p50'] * 1000:8.0f} ms   p99 {r['p99'] * 1000:8.0f} ms   "
                  f"{calls[label]} generate calls for {len(lat)} requests (largest {largest[label]} sequences, "
                  f"{busy[label] / max(calls[label], 1) * 1000:.0f} ms of model time per call)")
    ratio = results["batching on"]["rps"] / results["batching off"]["rps"]
    p99_ratio = results["batching off"]["p99"] / results["batching on"]["p99"]
    verdict = "meets" if ratio >= 5 else "misses"
    print(f"batching: {ratio:.1f}x requests/s, p99 latency {p99_ratio:.1f}x lower ({verdict} the >= 5x target)")


if __name__ == "__main__":
    main()
