"""Messages the game's workers post to its screens: small dataclasses named for what happened.

Workers run in threads and never touch widgets; they post these (``post_message`` is
thread-safe) and the screen updates itself in its handlers. Status floods (pool refills,
fetch progress) collapse through ``can_replace`` so a slow terminal never lags behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from turing_tui.game.rounds import Round, RoundResult


@dataclass
class GameReady(Message):
    """Tweets are loaded and the generator is on its way: rounds can be dealt."""

    tweets: int
    unseen: int
    generator: str


@dataclass
class RoundDealt(Message):
    """Both candidates were ready and the coin was flipped: ``round`` is the next tweet."""

    round: Round


@dataclass
class RoundScored(Message):
    """A guess was committed to the store."""

    result: RoundResult


@dataclass
class GameStatus(Message):
    """What the game is waiting for (generator, pool, download), in one line."""

    text: str
    warning: bool = False

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GameStatus)


@dataclass
class GameFailed(Message):
    """The game cannot go on (no tweets, no generator); ``text`` says what to do."""

    text: str
