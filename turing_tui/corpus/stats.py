"""What a category holds: tweets, usable tweets, authors, lengths, and what was dropped.

``turing-tui data stats`` renders this; it is also the quick check after a fetch, import or
scrape that the corpus looks like tweets (a median of 3 characters means something went
wrong upstream). Computed from the same :func:`~turing_tui.corpus.load.load_category` the
game uses, so the numbers are the game's numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from turing_tui.corpus.load import Corpus, load_category
from turing_tui.corpus.tweet import normalize_text
from turing_tui.paths import Paths

# Character buckets: tweets were 140 characters until late 2017, 280 since.
LENGTH_EDGES = (40, 80, 140, 200, 281)


@dataclass(frozen=True)
class LengthStats:
    """Distribution of the characters in usable tweets (normalised text)."""

    count: int = 0
    min: int = 0
    median: int = 0
    mean: float = 0.0
    p90: int = 0
    max: int = 0
    histogram: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, lengths: list[int]) -> LengthStats:
        if not lengths:
            return cls(histogram=tuple((label, 0) for label in _bucket_labels()))
        ordered = sorted(lengths)
        n = len(ordered)
        counts = [0] * (len(LENGTH_EDGES) + 1)
        for length in ordered:
            counts[_bucket(length)] += 1
        return cls(
            count=n,
            min=ordered[0],
            median=ordered[n // 2],
            mean=sum(ordered) / n,
            p90=ordered[min(n - 1, (n * 9) // 10)],
            max=ordered[-1],
            histogram=tuple(zip(_bucket_labels(), counts)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min": self.min,
            "median": self.median,
            "mean": round(self.mean, 1),
            "p90": self.p90,
            "max": self.max,
            "histogram": dict(self.histogram),
        }


def _bucket(length: int) -> int:
    for i, edge in enumerate(LENGTH_EDGES):
        if length < edge:
            return i
    return len(LENGTH_EDGES)


def _bucket_labels() -> list[str]:
    labels, low = [], 0
    for edge in LENGTH_EDGES:
        labels.append(f"{low}-{edge - 1}")
        low = edge
    labels.append(f"{low}+")
    return labels


@dataclass
class CategoryStats:
    """The numbers ``data stats`` shows for one category."""

    category: str
    files: int
    tweets: int  # readable tweets in the files, before filtering
    usable: int  # after the filters: what the game and training see
    dropped: Counter[str] = field(default_factory=Counter)
    authors: Counter[str] = field(default_factory=Counter)  # usable tweets per author
    top_authors: list[tuple[str, int]] = field(default_factory=list)
    lengths: LengthStats = field(default_factory=LengthStats)
    problems: int = 0  # unreadable lines skipped
    first_problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        from turing_tui.corpus.filters import REASONS

        return {
            "category": self.category,
            "files": self.files,
            "tweets": self.tweets,
            "usable": self.usable,
            "dropped": {reason: self.dropped.get(reason, 0) for reason in REASONS},
            "authors": dict(self.authors.most_common()),
            "lengths": self.lengths.as_dict(),
            "problems": self.problems,
            "first_problem": self.first_problem or None,
        }


def stats_of(corpus: Corpus, *, top: int = 10) -> CategoryStats:
    """Statistics of an already loaded corpus."""
    authors = Counter(t.username for t in corpus.tweets)
    lengths = [len(normalize_text(t.text)) for t in corpus.tweets]
    return CategoryStats(
        category=corpus.category,
        files=corpus.files,
        tweets=corpus.report.seen,
        usable=len(corpus.tweets),
        dropped=Counter(corpus.report.dropped),
        authors=authors,
        top_authors=authors.most_common(top) if top else [],
        lengths=LengthStats.of(lengths),
        problems=len(corpus.problems),
        first_problem=str(corpus.problems[0]) if corpus.problems else "",
    )


def corpus_stats(paths: Paths, category: str, *, top: int = 10) -> CategoryStats:
    """Load ``category`` (cached) and compute its statistics; UnknownCategory if empty."""
    return stats_of(load_category(paths, category), top=top)
