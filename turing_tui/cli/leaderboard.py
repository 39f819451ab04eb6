"""``turing-tui leaderboard``: players' accuracy and models' fool rates, as a table or JSON.

Every rate carries its 95% Wilson interval; players rank by the interval's lower bound
once they have played enough rounds. ``--json`` is the stable face for scripts.
"""

from __future__ import annotations

import click

from turing_tui.cli._common import CliState, pass_state

EPILOG = """
\b
Examples:
  turing-tui leaderboard
  turing-tui leaderboard --category vc
  turing-tui leaderboard --models            which model fools players most
  turing-tui leaderboard --json | jq '.[0]'
"""


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _span(low: float, high: float) -> str:
    return f"{100 * low:.0f}–{100 * high:.0f}%"


@click.command(epilog=EPILOG)
@click.option("--category", "-c", default=None, help="Only this category.")
@click.option("--models", "models", is_flag=True, help="The model board: each model's fool rate.")
@click.option("--min-rounds", type=click.IntRange(min=1), default=None, help="Rounds a player needs to be ranked (default 10).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of objects) for scripts.")
@pass_state
def leaderboard(state: CliState, category: str | None, models: bool, min_rounds: int | None, as_json: bool) -> None:
    """Show the leaderboard: players per category, or models (--models)."""
    from turing_tui.cli._common import console, print_json
    from turing_tui.game.leaderboard import MIN_ROUNDS_TO_RANK, fooling_fakes, model_board, player_board
    from turing_tui.paths import validate_category
    from turing_tui.store.db import Store

    if category is not None:
        validate_category(category)
    if not state.paths.db_path.exists():
        rows: list = []
        if as_json:
            print_json(rows)
        else:
            console().print("No rounds played yet: start with  turing-tui play --category vc")
        return
    min_rounds = min_rounds or MIN_ROUNDS_TO_RANK
    with Store(state.paths.db_path) as store:
        if models:
            board = model_board(store, category)
            fakes = fooling_fakes(store, category, limit=5)
        else:
            players = player_board(store, category, min_rounds)

    if as_json:
        print_json([r.as_dict() for r in board] if models else [p.as_dict() for p in players])
        return

    from rich.table import Table
    from rich.text import Text

    out = console()
    if models:
        if not board:
            out.print("No machine rounds judged yet.")
            return
        table = Table(title="Models: how often players took their tweets for a human's", title_justify="left")
        for name in ("Category", "Model", "Rounds", "Fooled", "Fool rate", "95% interval"):
            table.add_column(name, justify="right" if name in ("Rounds", "Fooled", "Fool rate") else "left")
        for r in board:
            low, high = r.interval
            table.add_row(Text(r.category), Text(r.model), str(r.rounds), str(r.fooled), _pct(r.fool_rate), _span(low, high))
        out.print(table)
        if fakes:
            out.print(Text("The fakes that fooled the most:", style="bold"))
            for item in fakes:
                out.print(Text(f"  {item.fooled}/{item.judged} fooled · {item.fake.model}: ") + Text(item.fake.text.replace("\n", " ")))
        return
    if not players:
        out.print("No rounds played yet: start with  turing-tui play --category vc")
        return
    table = Table(title=f"Players (ranked after {min_rounds} rounds, by the lower bound of the 95% interval)", title_justify="left")
    for name in ("#", "Category", "Player", "Rounds", "Right", "Accuracy", "95% interval", "Best streak", "Human", "Machine"):
        table.add_column(name, justify="left" if name in ("Category", "Player", "95% interval") else "right")
    for p in players:
        low, high = p.interval
        human = _pct(p.human_correct / p.human_rounds) if p.human_rounds else "—"
        machine = _pct(p.machine_correct / p.machine_rounds) if p.machine_rounds else "—"
        table.add_row(
            str(p.rank) if p.rank else "–",
            Text(p.category),
            Text(p.player),
            str(p.rounds),
            str(p.correct),
            _pct(p.accuracy),
            _span(low, high),
            str(p.best_streak),
            human,
            machine,
        )
    out.print(table)


COMMAND = leaderboard
