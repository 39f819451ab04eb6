"""Human tweets: the model, the twint JSON-lines format, filters, fetch and imports.

Every way tweets enter the tool (published datasets, archive exports, CSVs, scrapers)
ends as :class:`HumanTweet` objects written as twint JSON lines under
``data/<category>/``, so filters, training and the game read one format.
"""

from __future__ import annotations

from turing_tui.corpus.tweet import HumanTweet, normalize_text

__all__ = ["HumanTweet", "normalize_text"]
