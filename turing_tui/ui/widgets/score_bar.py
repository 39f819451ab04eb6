"""The score bar: right/total and %, streak and best streak, accuracy per kind of round."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from turing_tui.game.stats import Score, percent


class ScoreBar(Static):
    """One line of score; call :meth:`update_score` after each scored round."""

    DEFAULT_CSS = """
    ScoreBar {
        height: 1;
        width: 100%;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.update_score(Score())

    def update_score(self, score: Score) -> None:
        text = Text()
        text.append("Score ", style="bold")
        text.append(f"{score.right}/{score.total} {percent(score.right, score.total)}")
        text.append(" · streak ", style="bold")
        text.append(f"{score.streak} (best {score.best_streak})")
        text.append(" · on human tweets ", style="bold")
        text.append(f"{score.human_right}/{score.human_rounds} {percent(score.human_right, score.human_rounds)}")
        text.append(" · on machine tweets ", style="bold")
        text.append(f"{score.machine_right}/{score.machine_rounds} {percent(score.machine_right, score.machine_rounds)}")
        self.update(text)
