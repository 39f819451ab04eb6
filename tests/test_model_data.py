"""Training data: packing on tweet boundaries, the stable held-out split, the token cache."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.conftest import invented_tweet_texts
from turing_tui.model.data import (
    IGNORE_INDEX,
    BlockDataset,
    TrainingTweet,
    data_fingerprint,
    heldout_score,
    pack_blocks,
    split_heldout,
    tokenize_tweets,
)
from turing_tui.model.scratch import train_tweet_tokenizer

MARK = 0


def split_at_marks(blocks: list[list[int]]) -> list[list[int]]:
    """Cut each block (after its opening marker) at the end markers: the tweets it holds.

    A block that does not end on a marker would mean a tweet cut in two.
    """
    recovered: list[list[int]] = []
    for block in blocks:
        piece: list[int] = []
        for token in block[1:]:
            if token == MARK:
                recovered.append(piece)
                piece = []
            else:
                piece.append(token)
        assert piece == [], "a block ends mid-tweet"
    return recovered


def test_blocks_hold_whole_tweets_and_start_at_a_boundary() -> None:
    rng = random.Random(7)
    tweets = [[rng.randrange(1, 500) for _ in range(rng.randrange(3, 40))] for _ in range(200)]
    blocks, stats = pack_blocks(tweets, 64, MARK)
    assert all(len(b) <= 64 and b[0] == MARK and b[-1] == MARK for b in blocks)
    # Cutting every block at its markers gives back the tweets, in order, each exactly once:
    # nothing starts mid-tweet and nothing is duplicated (no stride-1 windows).
    recovered = split_at_marks(blocks)
    assert recovered == tweets
    assert stats.tokens == sum(len(t) + 1 for t in tweets) + len(blocks)
    assert stats.padding == len(blocks) * 64 - stats.tokens
    assert stats.truncated == 0
    # Packing is dense: a new block starts only when the next tweet would not fit.
    for block, following in zip(blocks, blocks[1:]):
        first_len = following[1:].index(MARK) + 1
        assert len(block) + first_len > 64


def test_a_tweet_longer_than_a_block_is_cut_and_loses_its_end_marker() -> None:
    blocks, stats = pack_blocks([[5] * 10, [6] * 100, [7] * 3], 16, MARK)
    assert stats.truncated == 1
    assert blocks[0] == [MARK] + [5] * 10 + [MARK]
    assert blocks[1] == [MARK] + [6] * 15  # no closing marker: the model is never told it ended
    assert blocks[2] == [MARK, 7, 7, 7, MARK]


def test_heldout_split_is_stable_under_reordering_and_growth() -> None:
    tweets = [TrainingTweet(id=str(1000 + i), text=f"tweet {i}") for i in range(2000)]
    train, held = split_heldout(tweets, 0.05)
    assert 60 <= len(held) <= 140  # ~5% of 2,000
    assert {t.id for t in held} == {t.id for t in tweets if heldout_score(t.id) < 0.05}
    shuffled = tweets[:]
    random.Random(1).shuffle(shuffled)
    _, held2 = split_heldout(shuffled + [TrainingTweet(id="x" + str(i), text="new") for i in range(500)], 0.05)
    assert {t.id for t in held} <= {t.id for t in held2}  # old held-out tweets stay held out
    assert not {t.id for t in held} & {t.id for t in train}


def test_heldout_split_keeps_one_of_each_for_tiny_data_and_respects_the_cap() -> None:
    tweets = [TrainingTweet(id=str(i), text="t") for i in range(3)]
    train, held = split_heldout(tweets, 0.0)
    assert len(held) == 1 and len(train) == 2
    many = [TrainingTweet(id=str(i), text="t") for i in range(1000)]
    _, capped = split_heldout(many, 0.5, max_heldout=10)
    assert len(capped) == 10


def test_token_cache_hits_on_same_data_and_misses_on_changed_data(tmp_path: Path) -> None:
    texts = invented_tweet_texts(30)
    tokenizer = train_tweet_tokenizer(texts, vocab_size=300, min_frequency=1)
    tweets = [TrainingTweet(id=str(i), text=t) for i, t in enumerate(texts)]
    first, cached = tokenize_tweets(tweets, tokenizer, cache_dir=tmp_path)
    assert not cached and len(first) == 30
    again, cached = tokenize_tweets(tweets, tokenizer, cache_dir=tmp_path)
    assert cached and again == first
    assert tokenizer.decode(first[3]) == texts[3]
    changed = tweets[:-1] + [TrainingTweet(id="29", text="something else entirely")]
    assert data_fingerprint(changed) != data_fingerprint(tweets)
    _, cached = tokenize_tweets(changed, tokenizer, cache_dir=tmp_path)
    assert not cached


def test_block_dataset_masks_padding_out_of_the_loss() -> None:
    data = BlockDataset([[MARK, 4, 5, MARK], [MARK, 6, MARK]], 16, pad_id=99, pad_multiple=1)
    assert data[1]["input_ids"].tolist() == [MARK, 6, MARK]  # unpadded: the collator pads a batch
    batch = data.batch([0, 1])
    assert batch["input_ids"].tolist() == [[MARK, 4, 5, MARK], [MARK, 6, MARK, 99]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["labels"].tolist() == [[MARK, 4, 5, MARK], [MARK, 6, MARK, IGNORE_INDEX]]


def test_a_batch_is_padded_to_its_longest_block_only() -> None:
    data = BlockDataset([[MARK] + [7] * 20, [MARK] + [7] * 9, [MARK] + [7] * 62], 64, pad_id=0)
    assert data.batch([0, 1])["input_ids"].shape == (2, 24)  # 21 rounded up to a multiple of 8
    assert data.batch([1])["input_ids"].shape == (1, 16)
    assert data.batch([2, 0])["input_ids"].shape == (2, 64)  # 63 -> 64: never past the block size
    # The pad id may be a real token: the mask, not the id, decides what the loss skips.
    same = BlockDataset([[0, 0, 5], [5]], 8, pad_id=0, pad_multiple=1).batch([0, 1])
    assert same["labels"].tolist() == [[0, 0, 5], [5, IGNORE_INDEX, IGNORE_INDEX]]


def test_pack_blocks_rejects_a_silly_block_size() -> None:
    with pytest.raises(ValueError):
        pack_blocks([[1, 2]], 2, MARK)


def test_best_fit_packing_fills_blocks_with_whole_tweets() -> None:
    rng = random.Random(11)
    tweets = [[rng.randrange(1, 500) for _ in range(rng.randrange(3, 90))] for _ in range(400)]
    in_order, ordered = pack_blocks(tweets, 128, MARK)
    blocks, stats = pack_blocks(tweets, 128, MARK, best_fit=True)
    assert all(len(b) <= 128 and b[0] == MARK and b[-1] == MARK for b in blocks)
    recovered = split_at_marks(blocks)
    assert sorted(recovered) == sorted(tweets)  # every tweet whole, exactly once
    assert stats.tokens - stats.blocks == ordered.tokens - ordered.blocks  # the same tokens, one opening marker a block
    assert stats.blocks < ordered.blocks
    assert stats.padding / (stats.blocks * 128) < 0.05 < ordered.padding / (ordered.blocks * 128)


def test_small_sets_hold_out_enough_to_measure() -> None:
    tweets = [TrainingTweet(id=str(5000 + i), text=f"tweet {i}") for i in range(1000)]
    _, held = split_heldout(tweets, 0.02, min_heldout=100)
    assert len(held) == 100  # 2% would be ~20
    _, few = split_heldout(tweets[:300], 0.02, min_heldout=100)
    assert len(few) == 30  # never more than a tenth
