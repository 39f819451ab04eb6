"""Tiny real checkpoints for tests: a BPE and a 2-layer GPT-2 trained in about a second.

Every test that needs a model (the game, the server, generation) builds one here instead
of downloading GPT-2: the tokenizer is trained on the given texts, the model is a real
GPT-2 (2 layers, 64 wide, 64 positions), optionally trained a few real steps on packed
blocks, and the folder is written by the same :func:`save_checkpoint` as ``train`` uses,
with the same metadata keys.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path

from turing_tui.model.checkpoint import TWEET_MARK, save_checkpoint
from turing_tui.model.data import BlockDataset, TrainingTweet, data_fingerprint, pack_blocks, split_heldout, tokenize_tweets
from turing_tui.model.generate import Sampling
from turing_tui.model.scratch import ScratchShape, make_scratch_model, train_tweet_tokenizer

TINY_SHAPE = ScratchShape(n_layer=2, n_embd=64, n_head=2, n_positions=64)
TINY_VOCAB = 400


def make_tiny_checkpoint(
    dest: Path,
    texts: list[str],
    *,
    category: str = "vc",
    name: str | None = None,
    train_steps: int = 0,
    seed: int = 0,
) -> Path:
    """Build, optionally train, and save a tiny GPT-2 checkpoint at ``dest / name``.

    ``name`` defaults to ``f"{category}-tiny"``; ``dest`` is a folder such as
    ``paths.models_dir`` (so ``list_checkpoints`` finds it). Returns the checkpoint folder.
    """
    import torch

    started = time.perf_counter()
    tweets = [TrainingTweet(id=str(i), text=t) for i, t in enumerate(texts)]
    tokenizer = train_tweet_tokenizer(texts, vocab_size=TINY_VOCAB, min_frequency=1)
    model = make_scratch_model(tokenizer, TINY_SHAPE, seed=seed)
    mark = tokenizer.convert_tokens_to_ids(TWEET_MARK)
    train, heldout = split_heldout(tweets, 0.1)
    train_ids, _ = tokenize_tweets(train, tokenizer)
    blocks, stats = pack_blocks(train_ids, TINY_SHAPE.n_positions, mark)
    losses: list[float] = []
    if train_steps > 0 and blocks:
        data = BlockDataset(blocks, TINY_SHAPE.n_positions, tokenizer.pad_token_id)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        batch_size = min(8, len(data))
        for step in range(train_steps):
            batch = data.batch([(step * batch_size + k) % len(data) for k in range(batch_size)])
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
    model.eval()
    eval_loss = None
    held_ids, _ = tokenize_tweets(heldout, tokenizer)
    held_blocks, _ = pack_blocks(held_ids, TINY_SHAPE.n_positions, mark)
    if held_blocks:
        data = BlockDataset(held_blocks, TINY_SHAPE.n_positions, tokenizer.pad_token_id)
        with torch.no_grad():
            batch = data.batch(range(len(data)))
            eval_loss = float(model(**batch).loss)
    folder = Path(dest) / (name or f"{category}-tiny")
    metadata = {
        "category": category,
        "base": "scratch",
        "created": time.time(),
        "status": "complete",
        "data_fingerprint": data_fingerprint(tweets),
        "data_tweets": len(train),
        "heldout_tweets": len(heldout),
        "train_tokens": stats.tokens,
        "block_size": TINY_SHAPE.n_positions,
        "steps": train_steps,
        "epochs": 0.0,
        "train_loss": losses[-1] if losses else None,
        "eval_loss": eval_loss,
        "perplexity": math.exp(eval_loss) if eval_loss is not None and eval_loss < 50 else None,
        "sampling": Sampling(max_new_tokens=40).as_dict(),
        "wall_seconds": time.perf_counter() - started,
        "hardware": {"device": "cpu", "precision": "fp32", "machine": platform.machine()},
        "shape": TINY_SHAPE.as_dict(),
        "tokenizer": "scratch-bpe",
    }
    return save_checkpoint(folder, model, tokenizer, metadata)
