"""The corpus core: twint I/O, atomic writes, normalisation, filters, loading and its cache,
and the statistics ``data stats`` shows."""

from __future__ import annotations

import html
import os
import random
import re
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from conftest import make_tweet
from turing_tui.corpus.filters import FilterReport, TweetFilter, has_link
from turing_tui.corpus.load import cache_path, flush_cache_writes, load_category, load_folder
from turing_tui.corpus.stats import corpus_stats
from turing_tui.corpus.tweet import HumanTweet, normalize_text
from turing_tui.corpus.twint import atomic_write_bytes, data_files, write_jsonl
from turing_tui.errors import UnknownCategory, UserError
from turing_tui.paths import Paths

# -- twint format ----------------------------------------------------------------------------


def test_published_line_keeps_the_exact_id_and_fields(shared_tweets: Path) -> None:
    first = (shared_tweets / "vc" / "000.txt").read_bytes().split(b"\n")[0]
    obj = orjson.loads(first)
    tweet = HumanTweet.from_twint(obj)
    # The JSON number lost precision; the link keeps the real status id.
    assert tweet.id == obj["link"].rsplit("/", 1)[1] and str(obj["id"]) != tweet.id
    again = HumanTweet.from_twint(tweet.to_twint())
    assert again == tweet
    assert set(tweet.to_twint()) >= set(obj)


def test_created_at_accepts_epoch_ms_and_twint_strings() -> None:
    base = make_tweet(1).to_twint()
    as_ms = HumanTweet.from_twint({**base, "created_at": 1590969601000})
    as_str = HumanTweet.from_twint({**base, "created_at": "2020-06-01 00:00:01 UTC"})
    assert as_ms.created_at == as_str.created_at == 1590969601000
    assert HumanTweet.from_twint({**base, "created_at": "yesterday"}).created_at is None


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "cat" / "000.txt"
    assert write_jsonl(target, [make_tweet(1), make_tweet(2)]) == 2
    before = target.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new contents\n")
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["000.txt"]

    def exploding() -> list[HumanTweet]:
        yield make_tweet(3)
        raise RuntimeError("scraper died")

    with pytest.raises(RuntimeError):
        write_jsonl(target, exploding())
    assert target.read_bytes() == before


def test_data_files_skip_bookkeeping(tmp_path: Path) -> None:
    for name in ("000.txt", "import-1.txt", "x.jsonl", ".manifest.json", ".000.txt.abc.part", ".lock", "notes.md"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in data_files(tmp_path)] == ["000.txt", "import-1.txt", "x.jsonl"]


# -- normalisation and filters -------------------------------------------------------------------------

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")


def reference_normalize(text: str) -> str:
    """The normalisation without its fast path, to check the fast path changes nothing."""
    text = html.unescape(text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def test_normalize_fast_path_matches_the_full_rewrite() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b", " ", "  ", "\n", "\r\n", "\t", "\u00a0", "&amp;", "&", "\u3000", "é", ".", "\n\n\n"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        assert normalize_text(text) == reference_normalize(text), repr(text)
    assert normalize_text("  Fish &amp; chips\r\n\r\n\r\n\r\nyes   please ") == "Fish & chips\n\nyes please"


def test_has_link_prefilter_agrees_with_the_pattern() -> None:
    for text in ("see https://x.io", "WWW.Example.org", "t.co/abc", "pic.twitter.com/x", "bit.ly/q", "HTTP://A.B"):
        assert has_link(text), text
    for text in ("a dot.com boom", "costco is great", "https is a protocol", "www"):
        assert not has_link(text), text


def test_filter_counts_every_reason() -> None:
    tweets = [
        make_tweet(1),
        make_tweet(2, text=""),
        replace(make_tweet(3, text="@bob you are right about this one"), reply_to=("bob",)),
        make_tweet(4, text="Check www.example.org for the details please"),
        replace(make_tweet(5, text="a perfectly fine text that was retweeted"), is_retweet=True),
        make_tweet(6, text="  INVENTED tweet number 1 about startups and coffee "),
        make_tweet(1, text="same id different words entirely here"),
        make_tweet(8, text="ok sure"),
        replace(make_tweet(9, text="a thread reply to myself, which is fine"), reply_to=("ALICE",)),
    ]
    keep = TweetFilter()
    kept = list(keep(tweets))
    assert [t.id for t in kept] == [make_tweet(1).id, make_tweet(9).id]
    report = keep.report
    assert (report.seen, report.kept, report.dropped_total) == (9, 2, 7)
    assert dict(report.dropped) == {"empty": 1, "reply": 1, "link": 1, "retweet": 1, "duplicate": 2, "too_short": 1}
    assert report.summary() == (
        "2 of 9 tweets kept; dropped: 1 empty, 1 reply to others, 1 contains a link, 1 retweet, 2 duplicate, 1 too short."
    )
    merged = FilterReport()
    merged.merge(report)
    merged.merge(report)
    assert merged.as_dict()["dropped"]["duplicate"] == 4


# -- loading -------------------------------------------------------------------------------------------


def test_unknown_category_names_the_known_ones_and_the_command(paths: Paths) -> None:
    write_jsonl(paths.category_dir("mine") / "a.txt", [make_tweet(1)])
    with pytest.raises(UnknownCategory, match=r"Known categories: mine\. Get it with: turing-tui data fetch vc"):
        load_category(paths, "vc")
    with pytest.raises(UnknownCategory, match="turing-tui data import PATH --category poems"):
        load_category(paths, "poems")
    with pytest.raises(UserError, match="not a valid category"):
        load_category(paths, "../mine")


def test_load_reports_bad_lines_and_keeps_good_ones(paths: Paths) -> None:
    folder = paths.category_dir("mine")
    write_jsonl(folder / "000.txt", [make_tweet(i) for i in range(5)])
    (folder / "001.txt").write_bytes(orjson.dumps(make_tweet(9).to_twint()) + b"\nnot json\n\xff\xfe\n")
    corpus = load_category(paths, "mine")
    assert len(corpus) == 6 and corpus.files == 2
    assert [(p.path.name, p.line) for p in corpus.problems] == [("001.txt", 2), ("001.txt", 3)]


def test_cache_is_used_and_invalidated(paths: Paths) -> None:
    folder = paths.category_dir("mine")
    write_jsonl(folder / "000.txt", [make_tweet(i) for i in range(20)])
    first = load_category(paths, "mine")
    flush_cache_writes()
    where = cache_path(paths, "mine")
    assert where.is_file()
    second = load_category(paths, "mine")
    assert second.tweets == first.tweets and second.report.as_dict() == first.report.as_dict()

    # A new file (an import) and a changed file both make the cache stale.
    write_jsonl(folder / "import-1.txt", [make_tweet(100)])
    assert len(load_category(paths, "mine")) == 21
    write_jsonl(folder / "000.txt", [make_tweet(i) for i in range(3)])
    assert len(load_category(paths, "mine")) == 4

    with pytest.MonkeyPatch.context() as patch:  # tuning a filter makes the cache stale too
        patch.setattr("turing_tui.corpus.filters.MIN_CHARS", 1000)
        assert load_category(paths, "mine").report.dropped["too_short"] == 4

    flush_cache_writes()
    where.write_bytes(b"garbage")  # a corrupt cache is ignored and rewritten
    assert len(load_category(paths, "mine")) == 4
    flush_cache_writes()
    assert where.read_bytes() != b"garbage"
    assert load_category(paths, "mine", use_cache=False).tweets == load_category(paths, "mine").tweets


def test_sample_avoids_excluded_ids(paths: Paths) -> None:
    write_jsonl(paths.category_dir("mine") / "a.txt", [make_tweet(i) for i in range(5)])
    corpus = load_category(paths, "mine")
    rng = random.Random(1)
    seen = {make_tweet(i).id for i in range(4)}
    assert {corpus.sample(rng, exclude=seen).id for _ in range(20)} == {make_tweet(4).id}
    everything = {t.id for t in corpus.tweets}
    assert corpus.sample(rng, exclude=everything).id in everything


@pytest.mark.shared
def test_shared_vc_loads_every_tweet(shared_tweets: Path) -> None:
    corpus = load_folder(shared_tweets / "vc", "vc")
    assert corpus.report.seen == 48_844 and corpus.problems == []
    assert corpus.report.kept == len(corpus) > 45_000


# -- stats ---------------------------------------------------------------------------------------------


def test_stats_count_authors_lengths_and_drops(paths: Paths) -> None:
    tweets = [make_tweet(i, username="ann") for i in range(3)] + [
        make_tweet(10, username="ben", text=" ".join(["word"] * 30)),
        make_tweet(11, username="ben", text="tiny"),
    ]
    write_jsonl(paths.category_dir("mine") / "a.txt", tweets)
    stats = corpus_stats(paths, "mine", top=1)
    assert (stats.files, stats.tweets, stats.usable) == (1, 5, 4)
    assert stats.top_authors == [("ann", 3)] and stats.authors["ben"] == 1
    assert stats.dropped["too_short"] == 1
    data = stats.as_dict()
    assert data["lengths"]["max"] == 149 and data["lengths"]["histogram"]["140-199"] == 1
    assert sum(data["lengths"]["histogram"].values()) == 4
    assert data["dropped"]["too_short"] == 1 and data["dropped"]["link"] == 0
