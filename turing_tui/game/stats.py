"""Scoring arithmetic: the session score bar and Wilson confidence intervals.

Accuracy over a handful of rounds is noisy, so every rate the leaderboard shows comes with
a 95% Wilson score interval, which (unlike the textbook p +/- 1.96 sqrt(p(1-p)/n)) stays
inside [0, 1] and is honest for small n and rates near 0 or 1. Kept free of any I/O so
the UI, the CLI and the tests share one implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``n`` trials (0, 1 when n is 0).

    centre = (p + z^2/2n) / (1 + z^2/n); half-width = z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n).
    """
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes ({successes}) must lie in 0..{n}")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0 or n successes the bound is exactly 0 or 1; floating point would say 1e-17 off.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def percent(part: int, whole: int) -> str:
    """``part/whole`` as a whole percentage, or an em dash when nothing was counted."""
    return f"{100 * part / whole:.0f}%" if whole else "—"


@dataclass
class Score:
    """One player's running score in a session: what the score bar shows."""

    right: int = 0
    total: int = 0
    streak: int = 0
    best_streak: int = 0
    human_rounds: int = 0
    human_right: int = 0
    machine_rounds: int = 0
    machine_right: int = 0

    def add(self, truth: str, correct: bool) -> None:
        self.total += 1
        if truth == "human":
            self.human_rounds += 1
            self.human_right += int(correct)
        else:
            self.machine_rounds += 1
            self.machine_right += int(correct)
        if correct:
            self.right += 1
            self.streak += 1
            self.best_streak = max(self.best_streak, self.streak)
        else:
            self.streak = 0

    @property
    def accuracy(self) -> float | None:
        return self.right / self.total if self.total else None

    def summary(self) -> str:
        """One line: ``7/10 70% | streak 3 (best 5) | human 4/5 80% | machine 3/5 60%``."""
        return (
            f"{self.right}/{self.total} {percent(self.right, self.total)}"
            f" | streak {self.streak} (best {self.best_streak})"
            f" | human {self.human_right}/{self.human_rounds} {percent(self.human_right, self.human_rounds)}"
            f" | machine {self.machine_right}/{self.machine_rounds} {percent(self.machine_right, self.machine_rounds)}"
        )
