"""Load a category's human tweets, filtered, ready for sampling or training.

This is the hot path of ``play`` start-up: vc's 48,844 tweets must be ready in under a
second. Files are parsed with orjson and filtered in one pass; nothing else is kept.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from turing_tui.corpus.filters import FilterReport, TweetFilter
from turing_tui.corpus.tweet import HumanTweet
from turing_tui.corpus.twint import Problem, data_files, read_jsonl
from turing_tui.errors import UnknownCategory
from turing_tui.paths import PUBLISHED_CATEGORIES, Paths, validate_category


@dataclass
class Corpus:
    """The filtered human tweets of one category."""

    category: str
    tweets: list[HumanTweet]
    report: FilterReport
    problems: list[Problem] = field(default_factory=list)
    files: int = 0

    def __len__(self) -> int:
        return len(self.tweets)

    def sample(self, rng: random.Random, exclude: set[str] | frozenset[str] = frozenset()) -> HumanTweet:
        """A random tweet whose id is not in ``exclude`` (any tweet once all are excluded)."""
        if not self.tweets:
            raise UnknownCategory(f"Category '{self.category}' has no usable tweets.")
        for _ in range(32):
            tweet = self.tweets[rng.randrange(len(self.tweets))]
            if tweet.id not in exclude:
                return tweet
        fresh = [t for t in self.tweets if t.id not in exclude]
        return rng.choice(fresh or self.tweets)


def missing_category_message(paths: Paths, category: str) -> str:
    known = paths.categories()
    have = f"Known categories: {', '.join(known)}." if known else "No category has data yet."
    if category in PUBLISHED_CATEGORIES:
        how = f"Get it with: turing-tui data fetch {category}"
    else:
        how = (
            f"Make it with: turing-tui scrape --category {category} "
            f"or turing-tui data import PATH --category {category}"
        )
    return f"Category '{category}' has no tweets in {paths.category_dir(category)}. {have} {how}"


def load_folder(folder: Path, category: str) -> Corpus:
    problems: list[Problem] = []
    keep = TweetFilter()
    tweets: list[HumanTweet] = []
    files = data_files(folder)
    for path in files:
        tweets.extend(keep(read_jsonl(path, problems.append)))
    return Corpus(category=category, tweets=tweets, report=keep.report, problems=problems, files=len(files))


def load_category(paths: Paths, category: str) -> Corpus:
    """Load and filter ``data/<category>/``; raises UnknownCategory when it is empty."""
    validate_category(category)
    folder = paths.category_dir(category)
    if not data_files(folder):
        raise UnknownCategory(missing_category_message(paths, category))
    return load_folder(folder, category)
