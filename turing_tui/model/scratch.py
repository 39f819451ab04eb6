"""The offline bootstrap: a byte-level BPE and a small GPT-2, both made from nothing.

With no model hub there is no GPT-2 vocabulary to download, so ``--from-scratch`` trains
one in about a second (8,192 tokens on vc's 48,844 tweets: ~28 tokens per tweet). It is
byte-level like GPT-2's, so any text round-trips, and its only special token is GPT-2's
``<|endoftext|>``, which marks the start and end of every tweet here too: a scratch model
and a fine-tuned GPT-2 are prompted, stopped and served the same way. :class:`ScratchShape` is the matching small GPT-2 config; the
default (4 layers, 256 wide, 8k vocabulary: ~5.3M parameters) trains at ~3.4k tokens/s
on a 2-core CPU, so a tweet-like vc model takes ~7 minutes (one epoch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from turing_tui.model.checkpoint import TWEET_MARK, prepare_tokenizer

DEFAULT_VOCAB = 8192


def train_tweet_tokenizer(texts: Iterable[str], *, vocab_size: int = DEFAULT_VOCAB, min_frequency: int = 2) -> Any:
    """Train a byte-level BPE on ``texts`` and wrap it as a transformers fast tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    # 256 byte symbols + the marker are always in the vocabulary; merges fill the rest.
    bpe.train_from_iterator(
        texts,
        vocab_size=max(vocab_size, 257 + 1),
        min_frequency=min_frequency,
        special_tokens=[TWEET_MARK],
        show_progress=False,
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token=TWEET_MARK,
        eos_token=TWEET_MARK,
        unk_token=TWEET_MARK,
        pad_token=TWEET_MARK,
        model_max_length=1024,
    )
    return prepare_tokenizer(tokenizer)


@dataclass(frozen=True)
class ScratchShape:
    """The size of a from-scratch GPT-2."""

    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_positions: int = 128  # a tweet is ~28 tokens; 128 holds ~4 packed tweets
    dropout: float = 0.0  # one or two passes over the data do not overfit; early stopping guards more

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def make_scratch_model(tokenizer: Any, shape: ScratchShape = ScratchShape(), *, seed: int | None = None) -> Any:
    """A freshly initialised GPT-2 sized by ``shape`` for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if seed is not None:
        torch.manual_seed(seed)
    mark = tokenizer.convert_tokens_to_ids(TWEET_MARK)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=shape.n_positions,
        n_embd=shape.n_embd,
        n_layer=shape.n_layer,
        n_head=shape.n_head,
        bos_token_id=mark,
        eos_token_id=mark,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=shape.dropout,
        embd_pdrop=shape.dropout,
        attn_pdrop=shape.dropout,
    )
    return GPT2LMHeadModel(config)
