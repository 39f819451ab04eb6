"""Generation speed: the original's one pipeline call per tweet vs our batched generator.

The original game served each fake tweet with one ``transformers.pipeline("text-
generation")`` call. Ours samples a batch of tweets in one ``generate`` call with the KV
cache. Same model, same sampling (temperature, top-p, top-k, max new tokens), same
device; both sides are timed in this one process, and the peak memory each adds is
measured (resident memory on CPU, allocated memory on a GPU). Target: >= 10x tweets/s
on CPU.

    python benchmarks/bench_generate.py                      # trains a small vc model first
    python benchmarks/bench_generate.py --model models/vc-scratch-... --tweets 64 --device cuda

Without --model it trains a small from-scratch model on ../shared/tweets/vc (a few
hundred steps; no model hub), and skips with a message when ../shared is absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED_TWEETS = ROOT.parent / "shared" / "tweets"


class PeakMemory:
    """Peak memory added while the block runs: GPU allocations, or process RSS on CPU."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_mb = 0.0

    def _rss_mb(self) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self) -> PeakMemory:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated() / 2**20
            return self
        self.start = self._rss_mb()
        self.top = self.start
        self.running = True

        def sample() -> None:  # every 20 ms: KV caches grow steadily; faster sampling would steal the GIL
            while self.running:
                self.top = max(self.top, self._rss_mb())
                time.sleep(0.02)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20 - self.start
        else:
            self.running = False
            self.thread.join()
            self.peak_mb = max(self.top, self._rss_mb()) - self.start


def quick_model(home: Path, tweets: int, steps: int) -> Path:
    """A small from-scratch vc model, trained with our own trainer (no model hub)."""
    from turing_tui.model.scratch import ScratchShape
    from turing_tui.model.train import TrainConfig, train
    from turing_tui.paths import Paths

    paths = Paths.resolve(home).ensure()
    (paths.data_dir / "vc").symlink_to(SHARED_TWEETS / "vc")
    config = TrainConfig(category="vc", from_scratch=True, max_tweets=tweets, max_steps=steps, shape=ScratchShape(), name="bench-vc")
    print(f"Training a small from-scratch vc model ({steps} steps on {tweets:,} tweets) to generate with...", flush=True)
    return train(paths, config).checkpoint.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a checkpoint folder (default: train a small one on ../shared vc)")
    parser.add_argument("--tweets", type=int, default=64, help="tweets each side makes")
    parser.add_argument("--batch", type=int, default=64, help="our batch size (64 = one generate call on a CPU)")
    parser.add_argument("--device", default=None, help="cpu or cuda [cuda when present]")
    parser.add_argument("--train-steps", type=int, default=150)
    args = parser.parse_args()

    import torch
    from transformers import pipeline

    from turing_tui.model.checkpoint import TWEET_MARK
    from turing_tui.model.generate import Sampling, TextGenerator, pick_device

    if args.model is None and not (SHARED_TWEETS / "vc").is_dir():
        print(f"skipped: {SHARED_TWEETS / 'vc'} is absent and no --model was given")
        return
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(args.model) if args.model else quick_model(Path(tmp) / "home", 20_000, args.train_steps)
        ours = TextGenerator.load(model_path, device=device)
        sampling = Sampling(seed=0)
        params = sum(p.numel() for p in ours.model.parameters())
        print(f"model {model_path.name}: {params / 1e6:.1f}M parameters on {device} ({torch.get_num_threads()} CPU threads)")
        print(f"sampling: {sampling.as_dict()}; {args.tweets} tweets each\n")

        # -- the original: one pipeline call per tweet ----------------------------------------
        pipe = pipeline("text-generation", model=ours.model, tokenizer=ours.tokenizer, device=torch.device(device))
        kwargs = dict(
            do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
            max_new_tokens=sampling.max_new_tokens, pad_token_id=ours.pad_id, eos_token_id=ours.mark_id,
        )  # fmt: skip
        pipe(TWEET_MARK, **kwargs)  # warm-up (both sides get one)
        torch.manual_seed(0)
        with PeakMemory(device) as base_mem:
            started = time.perf_counter()
            base_texts = [pipe(TWEET_MARK, **kwargs)[0]["generated_text"] for _ in range(args.tweets)]
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            base_s = time.perf_counter() - started

        # -- ours: batched, KV cache, cut at end-of-tweet ------------------------------------
        ours.complete([""], sampling, n=min(4, args.batch))  # warm-up
        with PeakMemory(device) as our_mem:
            started = time.perf_counter()
            done = []
            while len(done) < args.tweets:
                done += ours.complete([""], sampling, n=min(args.batch, args.tweets - len(done)))[0]
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            our_s = time.perf_counter() - started

        base_rate, our_rate = args.tweets / base_s, args.tweets / our_s
        ended = sum(c.finish_reason == "stop" for c in done)
        print(f"{'':34}{'tweets/s':>10}{'seconds':>10}{'peak MB':>10}")
        print(f"{'pipeline, one call per tweet':34}{base_rate:>10.1f}{base_s:>10.2f}{base_mem.peak_mb:>10.1f}")
        print(f"{f'batched generate (batch {args.batch})':34}{our_rate:>10.1f}{our_s:>10.2f}{our_mem.peak_mb:>10.1f}")
        print(f"\nspeed-up: {our_rate / base_rate:.1f}x tweets/s (target >= 10x on CPU)")
        print(f"{ended}/{len(done)} of ours ended at the end-of-tweet marker; sample: {done[0].text[:100]!r}")
        print(f"pipeline sample: {base_texts[0][len(TWEET_MARK):][:100]!r}")


if __name__ == "__main__":
    main()
