"""Which human tweets are fit for the game and for training, with every drop counted.

The original project kept a tweet when its ``reply_to`` named only the author and it
had no links. We keep those rules and add retweets, duplicates (same id or same text)
and too-short text. Nothing is dropped silently: :class:`FilterReport` counts each reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from turing_tui.corpus.tweet import HumanTweet, normalize_text

REASONS = ("empty", "reply", "link", "retweet", "duplicate", "too_short")
REASON_LABELS = {
    "empty": "empty",
    "reply": "reply to others",
    "link": "contains a link",
    "retweet": "retweet",
    "duplicate": "duplicate",
    "too_short": "too short",
}
LINK_RE = re.compile(r"https?://|\bwww\.\w|\bt\.co/|\bpic\.twitter\.com/|\bbit\.ly/", re.I)
MIN_WORDS = 3
MIN_CHARS = 12


# Every LINK_RE alternative contains one of these; a plain substring test rules out most
# tweets before the (much slower, case-insensitive, word-bounded) regex runs.
_LINK_HINTS = ("://", "www.", ".co", "bit.ly")


def has_link(text: str) -> bool:
    lowered = text.lower()
    if not any(hint in lowered for hint in _LINK_HINTS):
        return False
    return LINK_RE.search(text) is not None


@dataclass
class FilterReport:
    """How many tweets came in, how many were kept, and why the rest were dropped."""

    seen: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def merge(self, other: FilterReport) -> None:
        self.seen += other.seen
        self.kept += other.kept
        self.dropped.update(other.dropped)

    def as_dict(self) -> dict[str, object]:
        return {
            "seen": self.seen,
            "kept": self.kept,
            "dropped": {reason: self.dropped.get(reason, 0) for reason in REASONS},
        }

    def summary(self) -> str:
        parts = [f"{self.dropped[r]:,} {REASON_LABELS[r]}" for r in REASONS if self.dropped.get(r)]
        dropped = ", ".join(parts) if parts else "none"
        return f"{self.kept:,} of {self.seen:,} tweets kept; dropped: {dropped}."


def drop_reason(tweet: HumanTweet, text: str) -> str | None:
    """Why ``tweet`` (whose normalised text is ``text``) is unfit, or None if it is fit.

    Duplicates are judged by :class:`TweetFilter`, which remembers what it has seen.
    """
    if not text:
        return "empty"
    if tweet.is_retweet or text.startswith("RT @"):
        return "retweet"
    if tweet.replies_to_others():
        return "reply"
    if tweet.urls or has_link(text):
        return "link"
    # maxsplit: counting up to MIN_WORDS words is enough to know there are fewer.
    if len(text) < MIN_CHARS or len(text.split(None, MIN_WORDS - 1)) < MIN_WORDS:
        return "too_short"
    return None


class TweetFilter:
    """A stateful filter: it remembers ids and texts so duplicates across files are caught.

    Pass ``seen_ids``/``seen_texts`` from existing data to make imports and scrapes
    idempotent (re-adding the same tweets adds nothing).
    """

    def __init__(
        self,
        *,
        seen_ids: Iterable[str] = (),
        seen_texts: Iterable[str] = (),
        report: FilterReport | None = None,
    ) -> None:
        self.seen_ids: set[str] = set(seen_ids)
        self.seen_texts: set[str] = {text_key(t) for t in seen_texts}
        self.report = report if report is not None else FilterReport()

    def check(self, tweet: HumanTweet) -> str | None:
        """Judge one tweet, count it, and remember it when kept."""
        self.report.seen += 1
        text = normalize_text(tweet.text)
        reason = drop_reason(tweet, text)
        if reason is None:
            key = text.casefold()  # == text_key(tweet.text): ``text`` is already normalised
            if tweet.id in self.seen_ids or key in self.seen_texts:
                reason = "duplicate"
            else:
                self.seen_ids.add(tweet.id)
                self.seen_texts.add(key)
        if reason is None:
            self.report.kept += 1
        else:
            self.report.dropped[reason] += 1
        return reason

    def __call__(self, tweets: Iterable[HumanTweet]) -> Iterator[HumanTweet]:
        for tweet in tweets:
            if self.check(tweet) is None:
                yield tweet


def text_key(text: str) -> str:
    """The identity of a text for duplicate detection: normalised, case-folded."""
    return normalize_text(text).casefold()
