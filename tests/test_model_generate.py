"""Generation on a real tiny checkpoint: loading, batching, cutting, filtering, the pool."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import invented_tweet_texts
from turing_tui.backends.base import FakeTweet, GeneratorError, TweetGenerator
from turing_tui.errors import UserError
from turing_tui.model.checkpoint import (
    METADATA_FILE,
    list_checkpoints,
    load_model_and_tokenizer,
    newest_checkpoint,
    resolve_model_source,
)
from turing_tui.model.generate import Completion, LocalGenerator, Sampling, TextGenerator, fill_pool
from turing_tui.model.guard import FakeTweetFilter
from turing_tui.paths import Paths
from turing_tui.store.db import Store


@pytest.fixture(scope="module")
def text_generator(tiny_checkpoint: Path) -> TextGenerator:
    return TextGenerator.load(tiny_checkpoint, device="cpu")


def test_checkpoint_round_trip_keeps_metadata_and_files(tiny_checkpoint: Path, text_generator: TextGenerator) -> None:
    names = {p.name for p in tiny_checkpoint.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", METADATA_FILE} <= names
    meta = orjson.loads((tiny_checkpoint / METADATA_FILE).read_bytes())
    for key in ("category", "base", "data_fingerprint", "steps", "eval_loss", "perplexity", "sampling", "wall_seconds", "hardware"):
        assert key in meta, key
    assert text_generator.name == tiny_checkpoint.name == meta["name"]
    assert text_generator.base == "scratch" and text_generator.metadata["category"] == "vc"
    assert text_generator.default_sampling == Sampling.from_dict(meta["sampling"])


def test_complete_is_batched_cut_at_end_of_tweet_and_reproducible(text_generator: TextGenerator) -> None:
    sampling = Sampling(max_new_tokens=20, seed=123)
    out = text_generator.complete(["", "Founders"], sampling, n=3)
    assert [len(per_prompt) for per_prompt in out] == [3, 3]
    for done in out[0] + out[1]:
        assert isinstance(done, Completion)
        assert done.finish_reason in ("stop", "length") and 0 <= done.tokens <= 20
        assert "<|endoftext|>" not in done.text
    assert text_generator.complete(["", "Founders"], sampling, n=3) == out  # same seed, same tweets
    # A trained tiny model ends most tweets itself (the marker), well before 20 tokens.
    assert sum(d.finish_reason == "stop" for d in out[0] + out[1]) >= 3


def test_greedy_decoding_and_stop_strings(text_generator: TextGenerator) -> None:
    greedy = Sampling(temperature=0, max_new_tokens=15)
    first = text_generator.complete([""], greedy, n=2)[0]
    assert first[0] == first[1]  # greedy: both copies identical
    word = first[0].text.split()[1] if len(first[0].text.split()) > 1 else first[0].text[:2]
    cut = text_generator.complete([""], greedy, stop=[word])[0][0]
    assert word not in cut.text and cut.finish_reason == "stop"


def test_sampling_is_validated() -> None:
    with pytest.raises(UserError):
        Sampling(top_p=0).validate()
    with pytest.raises(UserError):
        Sampling(temperature=-1).validate()
    assert Sampling.from_dict({"temperature": 0.5, "unknown": 1}).temperature == 0.5


def test_hub_loader_reads_a_saved_model_by_path(tiny_checkpoint: Path) -> None:
    # The same from_pretrained code path that takes "gpt2" takes a folder.
    model, tokenizer = load_model_and_tokenizer(str(tiny_checkpoint))
    assert model.config.n_layer == 2 and tokenizer.pad_token is not None


def test_hub_name_fails_fast_with_one_sentence_when_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: nothing to fall back on
    started = time.perf_counter()
    with pytest.raises(UserError, match="--from-scratch"):
        load_model_and_tokenizer("someone/not-cached-model")
    assert time.perf_counter() - started < 20


def test_filter_counts_every_rejection_reason() -> None:
    training = ["Founders should focus on distribution before anything else this quarter, trust me on this"]
    judge = FakeTweetFilter(training)
    assert judge.check("") == "empty"
    assert judge.check("word " * 100) == "too_long"
    assert judge.check("fine text", finish_reason="length") == "too_long"
    assert judge.check("read this https://example.com now") == "link"
    assert judge.check("the deal the deal the deal the deal the deal") == "repetitive"
    assert judge.check(training[0]) == "copy"  # exact
    assert judge.check("FOUNDERS should focus on distribution before anything else this year!") == "copy"  # 8-word run
    assert judge.check("Founders should focus on hiring, said nobody ever.") is None
    assert judge.check("founders should focus on hiring, said nobody ever") == "duplicate"
    assert dict(judge.rejected) == {"empty": 1, "too_long": 2, "link": 1, "repetitive": 1, "copy": 2, "duplicate": 1}
    assert judge.accepted == 1 and "9 samples judged" in judge.summary()


def test_local_generator_returns_filtered_fake_tweets(text_generator: TextGenerator) -> None:
    generator = LocalGenerator(text_generator, category="vc", sampling=Sampling(seed=5, max_new_tokens=30), batch_size=8)
    assert isinstance(generator, TweetGenerator)
    tweets = generator.generate(5)
    assert 1 <= len(tweets) <= 5
    for tweet in tweets:
        assert isinstance(tweet, FakeTweet) and tweet.text and tweet.text == tweet.text.strip()
        assert tweet.model == generator.model_id == text_generator.name
        assert tweet.source == "local" and tweet.sampling["seed"] == 5
    judged = generator.filter.accepted + sum(generator.rejected.values())
    assert judged >= 8  # whole batches were sampled and judged
    generator.close()
    assert text_generator.model is not None  # a shared model outlives the game's generator
    with pytest.raises(GeneratorError):
        generator.generate(1)


def test_copy_filter_rejects_what_the_model_memorised(text_generator: TextGenerator) -> None:
    greedy = Sampling(temperature=0, max_new_tokens=30)
    memorised = [c.text for c in text_generator.complete([""], greedy)[0]]
    generator = LocalGenerator(text_generator, category="vc", sampling=greedy, training_texts=memorised, batch_size=4)
    with pytest.raises(GeneratorError, match="no usable tweet"):
        generator.generate(2)
    assert generator.rejected["copy"] >= 1


def test_fill_pool_stores_new_tweets_in_the_game_pool(text_generator: TextGenerator, tmp_path: Path) -> None:
    generator = LocalGenerator(
        text_generator, category="vc", sampling=Sampling(seed=9, max_new_tokens=30), training_texts=invented_tweet_texts(50)
    )
    events = []
    with Store(tmp_path / "db.sqlite3") as store:
        report = fill_pool(store, "vc", generator, 6, on_event=events.append)
        assert report.added == 6 and store.pool_size("vc", generator.model_id) == 6
        taken = store.take_fake("vc")
        assert taken is not None and taken.model == text_generator.name and taken.source == "local"
    assert events and events[-1].added == 6
    assert report.generated >= 6 and set(report.rejected) <= {"empty", "garbled", "too_long", "link", "repetitive", "duplicate", "copy"}


def test_list_and_newest_checkpoints(tiny_checkpoint: Path, tmp_path: Path) -> None:
    paths = Paths.resolve(tmp_path / "home").ensure()
    older = paths.models_dir / "vc-old"
    newer = paths.models_dir / "vc-new"
    other = paths.models_dir / "dem-one"
    for folder, created, category in ((older, 1000.0, "vc"), (newer, 2000.0, "vc"), (other, 3000.0, "democrats")):
        shutil.copytree(tiny_checkpoint, folder)
        meta = orjson.loads((folder / METADATA_FILE).read_bytes())
        meta.update(created=created, category=category, name=folder.name)
        (folder / METADATA_FILE).write_bytes(orjson.dumps(meta))
    (paths.models_dir / "not-a-model").mkdir()
    (paths.models_dir / "vc-half").mkdir()
    (paths.models_dir / "vc-half" / METADATA_FILE).write_bytes(orjson.dumps({"category": "vc", "created": 9999.0}))
    assert [c.name for c in list_checkpoints(paths)] == ["dem-one", "vc-new", "vc-old"]
    assert [c.name for c in list_checkpoints(paths, "vc")] == ["vc-new", "vc-old"]
    best = newest_checkpoint(paths, "vc")
    assert best is not None and best.path == newer.resolve() and best.size_bytes > 10_000
    assert best.eval_loss is not None and best.base == "scratch"
    assert newest_checkpoint(paths, "covid19") is None
    assert resolve_model_source(paths, "vc", None) == newer.resolve()
    assert resolve_model_source(paths, None, "vc-old") == older
    with pytest.raises(UserError, match="--from-scratch"):
        resolve_model_source(paths, "covid19", None)


def test_our_decoding_loop_matches_transformers_generate(text_generator: TextGenerator) -> None:
    """Greedy decoding is deterministic, so our KV-cache loop (with finished rows leaving
    the batch, and left-padded prompts of different lengths) must give exactly
    transformers' generate() tokens."""
    import torch

    prompts = [text_generator._encode(p) for p in ("", "Founders should", "Most startups need more")]
    longest = max(len(p) for p in prompts)
    ids = torch.full((3, longest), text_generator.pad_id)
    mask = torch.zeros((3, longest), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, longest - len(p) :] = torch.tensor(p)
        mask[row, longest - len(p) :] = 1
    greedy = Sampling(temperature=0, max_new_tokens=25)
    ours = text_generator._decode(ids, mask, greedy, 25)
    theirs = text_generator._generate_hf(ids, mask, greedy, 25, 1)
    for mine, reference in zip(ours, theirs):
        end = reference.index(text_generator.mark_id) + 1 if text_generator.mark_id in reference else len(reference)
        assert mine == reference[:end]
    assert text_generator.decoder == "own"
