"""``turing-tui play``: open the app straight on the Play screen.

The generator is resolved here, before the app starts, so a wrong path or URL is one
sentence on the terminal instead of a broken screen; loading it happens in the game.
A published category with no tweets yet is fetched first, with progress.
"""

from __future__ import annotations

import click

from turing_tui.cli._common import CliState, pass_state, run_app

EPILOG = """
\b
Examples:
  turing-tui play --category vc
  turing-tui play --category vc --player ada --seed 7
  turing-tui play --category vc --model models/vc-scratch
  turing-tui play --category vc --endpoint http://127.0.0.1:8000 --protocol openai
  turing-tui play --category vc --protocol modelzoo \\
      --endpoint https://api.modelzoo.dev/v1/models/gpt2-vc/predict --api-key KEY

With no generator option: the newest local checkpoint of the category, else a locally
deployed endpoint (turing-tui deploy --target local), else gpt2 from the model hub
prompted with real tweets (few-shot).
"""


def _fetch_first(state: CliState, category: str) -> None:
    """Download a published category that is not on disk yet, with a progress bar."""
    from turing_tui.corpus.twint import data_files
    from turing_tui.paths import PUBLISHED_CATEGORIES

    if data_files(state.paths.category_dir(category)) or category not in PUBLISHED_CATEGORIES:
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from turing_tui.cli._common import console
    from turing_tui.corpus.fetch import FetchStarted, PartitionFetched, fetch_category

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console(stderr=True)) as bar:
        task = bar.add_task(f"First run: downloading the {category} tweets", total=None)

        def on_event(event: object) -> None:
            if isinstance(event, FetchStarted) and event.expected:
                bar.update(task, total=event.expected)
            elif isinstance(event, PartitionFetched):
                bar.advance(task)

        fetch_category(state.paths, category, on_event=on_event)


@click.command(epilog=EPILOG)
@click.option("--category", "-c", default=None, help="Tweets to play with (default: the last one played, else vc).")
@click.option("--player", "-p", default=None, help="Your name on the leaderboard (remembered).")
@click.option("--model", "model", default=None, metavar="PATH", help="A local checkpoint directory (or a name under models/).")
@click.option("--endpoint", default=None, metavar="URL", help="A model server: its base URL (openai) or predict URL (modelzoo).")
@click.option("--protocol", type=click.Choice(["modelzoo", "openai"]), default=None, help="How to talk to --endpoint (default: guessed from the URL).")
@click.option("--api-key", envvar="TURING_TUI_API_KEY", default=None, help="Key for --endpoint. Env: TURING_TUI_API_KEY.")
@click.option("--model-name", default=None, help="The served model's name (openai protocol; default: the first the server lists).")
@click.option("--seed", type=int, default=None, help="Make the rounds reproducible.")
@pass_state
def play(
    state: CliState,
    category: str | None,
    player: str | None,
    model: str | None,
    endpoint: str | None,
    protocol: str | None,
    api_key: str | None,
    model_name: str | None,
    seed: int | None,
) -> None:
    """Play: read a tweet, guess whether a human or a machine wrote it."""
    from turing_tui.backends.choose import choose_generator
    from turing_tui.paths import validate_category
    from turing_tui.store.db import Store

    with Store(state.paths.db_path) as store:
        category = validate_category(category or store.get_setting("category") or "vc")
        player = (player or "").strip() or None
        if player and (len(player) > 40 or not player.isprintable()):
            from turing_tui.errors import UserError

            raise UserError("A player name is 1-40 printable characters; pick a shorter one with --player NAME.")
        if player:
            store.set_setting("player", player)
    _fetch_first(state, category)
    from turing_tui.corpus.load import missing_category_message
    from turing_tui.corpus.twint import data_files
    from turing_tui.errors import UnknownCategory

    if not data_files(state.paths.category_dir(category)):
        raise UnknownCategory(missing_category_message(state.paths, category))
    spec = choose_generator(
        state.paths, category, model=model, endpoint=endpoint, protocol=protocol, api_key=api_key, model_name=model_name
    )
    run_app(state, screen="play", category=category, player=player, seed=seed, spec=spec)


COMMAND = play
