"""The leaderboards: players ranked by accuracy, models ranked by how often they fool.

The store counts; this module turns counts into standings with 95% Wilson intervals. A
player is ranked by the lower bound of the interval, not the raw accuracy, so 3 lucky
rounds out of 3 do not outrank 80 right out of 100; players with fewer than
``min_rounds`` rounds are listed as unranked. A model's fool rate is the share of its
tweets that players judged human: 50% would mean players cannot tell it from people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from turing_tui.backends.base import FakeTweet
from turing_tui.game.stats import wilson_interval
from turing_tui.store.db import Store

MIN_ROUNDS_TO_RANK = 10


@dataclass(frozen=True)
class PlayerStanding:
    """One player's record in one category."""

    player: str
    category: str
    rounds: int
    correct: int
    best_streak: int
    human_rounds: int
    human_correct: int
    machine_rounds: int
    machine_correct: int
    mean_answer_ms: int
    rank: int | None  # None until the player has MIN_ROUNDS_TO_RANK rounds

    @property
    def accuracy(self) -> float:
        return self.correct / self.rounds if self.rounds else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.rounds)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        low, high = self.interval
        data.update(accuracy=round(self.accuracy, 4), ci_low=round(low, 4), ci_high=round(high, 4))
        return data


@dataclass(frozen=True)
class FoolRate:
    """How often one model's tweets were judged human in one category."""

    model: str
    category: str
    rounds: int
    fooled: int

    @property
    def fool_rate(self) -> float:
        return self.fooled / self.rounds if self.rounds else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.fooled, self.rounds)

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "model": self.model,
            "category": self.category,
            "rounds": self.rounds,
            "fooled": self.fooled,
            "fool_rate": round(self.fool_rate, 4),
            "ci_low": round(low, 4),
            "ci_high": round(high, 4),
        }


@dataclass(frozen=True)
class FoolingFake:
    """A generated tweet that players took for a human's."""

    fake: FakeTweet
    judged: int
    fooled: int


def player_board(store: Store, category: str | None = None, min_rounds: int = MIN_ROUNDS_TO_RANK) -> list[PlayerStanding]:
    """Standings per category: ranked players first (by interval lower bound), then the rest."""
    rows = store.player_counts(category)
    standings = [
        dict(
            player=row["player"],
            category=row["category"],
            rounds=int(row["rounds"]),
            correct=int(row["correct"] or 0),
            best_streak=int(row["best_streak"] or 0),
            human_rounds=int(row["human_rounds"] or 0),
            human_correct=int(row["human_correct"] or 0),
            machine_rounds=int(row["machine_rounds"] or 0),
            machine_correct=int(row["machine_correct"] or 0),
            mean_answer_ms=int(row["mean_answer_ms"] or 0),
        )
        for row in rows
    ]

    def order(s: dict[str, Any]) -> tuple[Any, ...]:
        ranked = s["rounds"] >= min_rounds
        low = wilson_interval(s["correct"], s["rounds"])[0]
        return (s["category"], not ranked, -low, -s["correct"], s["player"].casefold())

    standings.sort(key=order)
    result: list[PlayerStanding] = []
    rank_in: dict[str, int] = {}
    for s in standings:
        rank = None
        if s["rounds"] >= min_rounds:
            rank = rank_in[s["category"]] = rank_in.get(s["category"], 0) + 1
        result.append(PlayerStanding(rank=rank, **s))
    return result


def model_board(store: Store, category: str | None = None) -> list[FoolRate]:
    """Fool rates per model and category, the most convincing model first."""
    rates = [
        FoolRate(model=row["model"], category=row["category"], rounds=int(row["rounds"]), fooled=int(row["fooled"] or 0))
        for row in store.model_counts(category)
    ]
    rates.sort(key=lambda r: (r.category, -r.interval[0], -r.fool_rate, r.model))
    return rates


def fooling_fakes(store: Store, category: str | None = None, model: str | None = None, limit: int = 5) -> list[FoolingFake]:
    return [FoolingFake(fake, judged, fooled) for fake, judged, fooled in store.top_fooling_fakes(category, model, limit)]
