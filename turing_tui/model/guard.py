"""Which generated texts may be shown as fake tweets, with every rejection counted.

A model sample is rejected when it is empty, garbled (a broken character), too long
(over 280 characters, or it ran out of tokens before its end-of-tweet marker), carries a
link, repeats itself, repeats an earlier sample, or copies a training tweet. Copying is
the one that would break the game — a "machine" tweet that a person really wrote — so it
is judged two ways: the same words as a training tweet, and any run of
:data:`COPY_NGRAM` words shared with one (a near copy with one word changed still shares
a long run).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from turing_tui.corpus.filters import has_link
from turing_tui.corpus.tweet import normalize_text

MAX_CHARS = 280
COPY_NGRAM = 8  # words; a tweet is ~20 words, so 8 in a row is a quotation, not style
REJECTIONS = ("empty", "garbled", "too_long", "link", "repetitive", "duplicate", "copy")
_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def word_key(text: str) -> str:
    """Identity of a text for copies and repeats: its words, case-folded, punctuation dropped."""
    return " ".join(words(text))


def _ngram_hashes(tokens: list[str], n: int) -> Iterable[int]:
    for i in range(len(tokens) - n + 1):
        yield hash(tuple(tokens[i : i + n]))


def is_repetitive(tokens: list[str]) -> bool:
    """Degenerate loops: a 3-word run three times, or mostly the same few words."""
    if len(tokens) >= 9:
        counts = Counter(tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2))
        if counts.most_common(1)[0][1] >= 3:
            return True
    if len(tokens) >= 12 and len(set(tokens)) / len(tokens) < 0.4:
        return True
    return False


class FakeTweetFilter:
    """Judges samples one by one; remembers what it accepted and counts what it rejected."""

    def __init__(self, training_texts: Iterable[str] | None = None, *, ngram: int = COPY_NGRAM) -> None:
        self.ngram = ngram
        self.training_keys: set[str] = set()
        self.training_ngrams: set[int] = set()
        self.accepted_keys: set[str] = set()
        self.rejected: Counter[str] = Counter()
        self.accepted = 0
        if training_texts is not None:
            self.add_training_texts(training_texts)

    def add_training_texts(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.training_keys.add(word_key(text))
            self.training_ngrams.update(_ngram_hashes(words(text), self.ngram))

    def reason(self, text: str, finish_reason: str = "stop") -> str | None:
        """Why ``text`` must not be shown, or None; does not count or remember."""
        clean = normalize_text(text)
        if not clean or not words(clean):
            return "empty"
        if "\ufffd" in clean:  # a byte-level model stopped inside a multi-byte character
            return "garbled"
        if finish_reason == "length" or len(clean) > MAX_CHARS:
            return "too_long"
        if has_link(clean):
            return "link"
        tokens = words(clean)
        if is_repetitive(tokens):
            return "repetitive"
        key = word_key(clean)
        if key in self.training_keys or any(h in self.training_ngrams for h in _ngram_hashes(tokens, self.ngram)):
            return "copy"
        if key in self.accepted_keys:
            return "duplicate"
        return None

    def check(self, text: str, finish_reason: str = "stop") -> str | None:
        """Judge one sample, count the verdict, remember it when accepted."""
        why = self.reason(text, finish_reason)
        if why is None:
            self.accepted += 1
            self.accepted_keys.add(word_key(text))
        else:
            self.rejected[why] += 1
        return why

    def summary(self) -> str:
        parts = [f"{self.rejected[r]} {r.replace('_', ' ')}" for r in REJECTIONS if self.rejected.get(r)]
        judged = self.accepted + sum(self.rejected.values())
        return f"{judged} samples judged, {self.accepted} passed; rejected: {', '.join(parts) if parts else 'none'}."
