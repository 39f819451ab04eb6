"""The generator protocol and the machine-written tweet it produces.

A generator makes :class:`FakeTweet` objects for one category. Implementations: the
local checkpoint generator (``turing_tui.model``), and the HTTP generators speaking the
Model Zoo predict protocol or OpenAI-compatible completions (``turing_tui.backends``).
Failures a user can fix raise :class:`GeneratorError` with one clear sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from turing_tui.errors import UserError


class GeneratorError(UserError):
    """The generator could not produce tweets (unreachable, overloaded, bad model)."""

    exit_code = 3


@dataclass(frozen=True)
class FakeTweet:
    """A tweet written by a model, with what the reveal needs to say about it."""

    text: str
    model: str  # the model's identity, e.g. a checkpoint name or endpoint model id
    base: str = ""  # what it was fine-tuned from ("gpt2", "scratch", ...)
    sampling: dict[str, Any] = field(default_factory=dict)  # temperature, top_p, ...
    source: str = ""  # how it was made: "local", "modelzoo", "openai", "few-shot"
    pool_id: int | None = None  # row id once stored in the pool


@runtime_checkable
class TweetGenerator(Protocol):
    """Anything that can write fake tweets for a category."""

    @property
    def model_id(self) -> str:
        """A stable identity for leaderboards: the same model always gives the same id."""
        ...

    def generate(self, n: int) -> list[FakeTweet]:
        """Return up to ``n`` filtered tweets; raise GeneratorError when it cannot."""
        ...

    def close(self) -> None:
        """Release connections, models, threads."""
        ...
