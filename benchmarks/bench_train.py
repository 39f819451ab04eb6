"""Training cost: the original recipe (stride-1 windows) vs ours (packed, early-stopped).

The original fine-tuned GPT-2 on every stride-1 window of 64 tokens of the tweet stream,
so one "epoch" passed over each token ~64 times, with Trainer defaults (batch 8, lr 5e-5,
linear decay) and no held-out data. Ours packs whole tweets into 128-token blocks, each
token once per epoch, evaluates on a held-out split, stops early and keeps the best.

With no model hub, the pretrained base is made here: a small GPT-2 trained from scratch
on ../shared democrats tweets (not timed). Both recipes then fine-tune that same base on
the same vc subset, on this machine, and are judged by the same function on the same
held-out vc tweets. Ours is exactly ``turing-tui train --category vc --base BASE
--max-tweets N`` with every other option at its default (the command is printed); the
original is Trainer defaults on stride-1 windows for one epoch. Printed side by side:
wall time (end to end, and the training loop alone), tokens processed (real tokens: ours
pads each batch only to its longest block, and padding is not counted), best held-out
loss. Target: ours >= 20x less wall time with a held-out loss at least as good.
``--scratch`` compares the two from random weights instead (where many epochs are needed
and the gap is smaller).

The category is parsed once before either side is timed (as any earlier command would
have cached it); neither side's time includes it, and the original's excludes
tokenizing too.

    python benchmarks/bench_train.py                 # 1,000 vc tweets: ~5 minutes on 2 CPU cores
    python benchmarks/bench_train.py --tweets 400    # quicker; fixed costs weigh more
    python benchmarks/bench_train.py --scratch       # both from random weights
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED_TWEETS = ROOT.parent / "shared" / "tweets"
WINDOW = 64  # the original block size, taken at every offset (stride 1)


def heldout_loss(model, blocks, pad_id: int) -> float:  # type: ignore[no-untyped-def]
    """Mean loss per predicted token over held-out blocks (the one yardstick for both)."""
    import torch

    from turing_tui.model.data import BlockDataset

    data = BlockDataset(blocks, max(len(b) for b in blocks), pad_id)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), 32):
            batch = {k: v.to(model.device) for k, v in data.batch(range(start, min(start + 32, len(data)))).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            labels = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100, reduction="sum")
            total += float(loss)
            count += int((labels != -100).sum())
    return total / count


class StrideOneWindows:
    """Every window of WINDOW tokens at every offset of the token stream (the original)."""

    def __init__(self, stream: list[int]) -> None:
        self.stream = stream

    def __len__(self) -> int:
        return max(0, len(self.stream) - WINDOW)

    def __getitem__(self, i: int) -> dict[str, object]:
        import torch

        ids = torch.tensor(self.stream[i : i + WINDOW], dtype=torch.long)
        return {"input_ids": ids, "labels": ids.clone()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tweets", type=int, default=1000, help="vc tweets in the subset (the original side costs ~64 passes over them)")
    parser.add_argument("--base", help="a checkpoint folder to fine-tune (default: pretrain one on democrats)")
    parser.add_argument("--base-tweets", type=int, default=4000, help="democrats tweets to pretrain the base on")
    parser.add_argument("--scratch", action="store_true", help="both sides start from random weights")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--max-epochs", type=float, help="ours: --epochs (an upper bound, early stopping decides) [the CLI default; 10 with --scratch]")
    args = parser.parse_args()
    if not (SHARED_TWEETS / "vc").is_dir():
        print(f"skipped: {SHARED_TWEETS / 'vc'} is absent")
        return

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from turing_tui.corpus.load import load_category
    from turing_tui.model.checkpoint import mark_id, quiet_transformers
    from turing_tui.model.data import TrainingTweet, pack_blocks, tokenize_tweets
    from turing_tui.model.generate import TextGenerator
    from turing_tui.model.scratch import ScratchShape, make_scratch_model
    from turing_tui.model.train import EvalDone, TrainConfig, TrainFinished, TrainStarted, heldout_split, train
    from turing_tui.paths import Paths

    quiet_transformers()
    shape = ScratchShape(n_layer=args.layers, n_embd=args.width, n_head=max(1, args.width // 64), n_positions=128)
    max_epochs = args.max_epochs or (10.0 if args.scratch else None)
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths.resolve(Path(tmp) / "home").ensure()
        (paths.data_dir / "vc").symlink_to(SHARED_TWEETS / "vc")
        all_vc = load_category(paths, "vc").tweets  # parsed and cached here, timed by neither side
        base: str | None = None
        if not args.scratch:
            base = args.base
            if base is None:
                if not (SHARED_TWEETS / "democrats").is_dir():
                    print(f"skipped: {SHARED_TWEETS / 'democrats'} (to pretrain a base on) is absent; pass --base or --scratch")
                    return
                (paths.data_dir / "democrats").symlink_to(SHARED_TWEETS / "democrats")
                print(f"pretraining a base GPT-2 on {args.base_tweets:,} democrats tweets (not timed)...", flush=True)
                pretrain = TrainConfig(
                    category="democrats", from_scratch=True, max_tweets=args.base_tweets, shape=shape, vocab_size=args.vocab,
                    epochs=2.0, samples_per_eval=0, name="base", eval_every=10_000,
                )  # fmt: skip
                base = str(train(paths, pretrain).checkpoint.path)
        # Ours = the CLI with these options and every other one at its default.
        options = ["--category", "vc", "--max-tweets", str(args.tweets)]
        if args.scratch:
            options += ["--from-scratch", "--layers", str(shape.n_layer), "--width", str(shape.n_embd), "--heads", str(shape.n_head),
                        "--vocab-size", str(args.vocab)]  # fmt: skip
        else:
            options += ["--base", str(base)]
        if max_epochs is not None:
            options += ["--epochs", str(max_epochs)]
        config = TrainConfig(
            category="vc", from_scratch=args.scratch, base=base or "scratch", max_tweets=args.tweets, shape=shape,
            vocab_size=args.vocab, epochs=max_epochs, name="ours",
        )  # fmt: skip
        start = "random weights" if args.scratch else f"the base {Path(base or '').name}"
        print(f"{args.tweets:,} vc tweets from {start}; GPT-2 {shape.n_layer} layers x {shape.n_embd}, {args.vocab:,}-token BPE; "
              f"{torch.get_num_threads()} CPU threads\n", flush=True)  # fmt: skip
        print("ours = turing-tui train " + " ".join(options), flush=True)

        # -- ours: packed blocks, held-out evaluation, early stopping, best kept -------------
        print("ours: training to early stopping...", flush=True)
        timeline: list[tuple[float, int, float]] = []  # (seconds since start, step, held-out loss)

        loop = [0.0, 0.0]  # when the first step began, when training ended (evaluations included)

        def on_event(event: object) -> None:
            if isinstance(event, EvalDone):
                timeline.append((time.perf_counter() - started, event.step, event.eval_loss))
            elif isinstance(event, TrainStarted):
                loop[0] = time.perf_counter()
            elif isinstance(event, TrainFinished):
                loop[1] = time.perf_counter()

        started = time.perf_counter()
        result = train(paths, config, on_event=on_event)
        our_s = time.perf_counter() - started
        loop_s = loop[1] - loop[0]
        meta = result.checkpoint.metadata
        used = meta["config"]  # the resolved options: automatic batch size, learning rate, epochs
        our_tokens = int(meta["tokens_seen"])
        print(f"ours ran: batch {used['batch_size']} x {used['block_size']} tokens, lr {used['lr']:g}, up to {used['epochs']:g} epochs, "
              f"{meta['blocks']:,} blocks ({meta['train_tokens']:,} tokens) an epoch", flush=True)  # fmt: skip

        # The same held-out tweets and tokenizer for both yardsticks.
        tweets = [TrainingTweet.from_human(t) for t in all_vc][: args.tweets]
        train_tweets, heldout = heldout_split(tweets, config)
        tokenizer = AutoTokenizer.from_pretrained(str(result.checkpoint.path))
        mark = mark_id(tokenizer)
        held_blocks, _ = pack_blocks(tokenize_tweets(heldout, tokenizer)[0], 128, mark)
        ours = TextGenerator.load(result.checkpoint.path, device="cpu")
        our_loss = heldout_loss(ours.model, held_blocks, tokenizer.pad_token_id)

        # -- the original: stride-1 windows of 64 tokens, one epoch, Trainer defaults -------
        stream: list[int] = [mark]
        for ids in tokenize_tweets(train_tweets, tokenizer)[0]:
            stream += ids + [mark]
        windows = StrideOneWindows(stream)
        if args.scratch:
            model = make_scratch_model(tokenizer, shape, seed=config.seed)  # the same initial weights as ours
        else:
            model = AutoModelForCausalLM.from_pretrained(base)  # the same base as ours
        base_args = TrainingArguments(output_dir=str(Path(tmp) / "original"), num_train_epochs=1, save_strategy="no",
                                      report_to="none", use_cpu=True, disable_tqdm=True, logging_strategy="no")  # fmt: skip
        trainer = Trainer(model=model, args=base_args, train_dataset=windows)
        trainer.remove_callback(PrinterCallback)
        print(f"original: {len(windows):,} windows = {math.ceil(len(windows) / 8):,} steps of 8 x {WINDOW} tokens...", flush=True)
        started = time.perf_counter()
        trainer.train()
        base_s = time.perf_counter() - started
        base_tokens = len(windows) * WINDOW  # every window is real tokens
        base_loss = heldout_loss(model, held_blocks, tokenizer.pad_token_id)

    print()
    print(f"{'':44}{'wall s':>9}{'loop s':>9}{'tokens':>13}{'held-out loss':>15}{'ppl':>9}")
    print(f"{'original: stride-1 x64, 1 epoch, defaults':44}{base_s:>9.1f}{base_s:>9.1f}{base_tokens:>13,}{base_loss:>15.3f}{math.exp(base_loss):>9.1f}")
    label = f"ours: packed, {meta['steps']} steps, best @ {meta.get('best_step')}"
    print(f"{label:44}{our_s:>9.1f}{loop_s:>9.1f}{our_tokens:>13,}{our_loss:>15.3f}{math.exp(our_loss):>9.1f}")
    print(f"\nwall time: {base_s / our_s:.1f}x less end to end, {base_s / max(loop_s, 1e-9):.1f}x less in the training loop (target >= 20x); tokens: {base_tokens / our_tokens:.1f}x fewer; "
          f"held-out loss {'at least as good' if our_loss <= base_loss else 'WORSE'} ({our_loss:.3f} vs {base_loss:.3f})")  # fmt: skip
    # When did ours first match the original's final quality? (Trainer's eval loss is a
    # per-batch mean, close to but not exactly our per-token yardstick.)
    matched = next(((t, step) for t, step, loss in timeline if loss <= base_loss), None)
    if matched is not None:
        print(f"ours matched the original's held-out loss at step {matched[1]}, {matched[0]:.1f}s in: "
              f"{base_s / matched[0]:.1f}x less wall time to the same quality")  # fmt: skip
    print(f"ours stopped: {meta['status']}{' early' if meta.get('early_stopped') else ''} after {meta['epochs']:.1f} epochs "
          f"(wall time includes {'BPE training, ' if args.scratch else 'loading the base, '}tokenizing, evaluations and saving)")  # fmt: skip


if __name__ == "__main__":
    main()
