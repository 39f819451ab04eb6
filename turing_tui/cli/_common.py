"""Helpers every subcommand shares: the state object, error printing, Rich consoles.

Kept free of heavy imports: Rich loads only when a command prints with it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from turing_tui.paths import Paths


@dataclass
class CliState:
    """What the top-level group hands each subcommand (``ctx.obj``)."""

    paths: Paths


pass_state = click.make_pass_decorator(CliState)


def print_error(message: str) -> None:
    """One clear sentence on stderr, no traceback."""
    click.echo(f"Error: {message}", err=True)


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (the machine-readable face of a command)."""
    import orjson

    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def run_app(state: CliState, screen: str = "home", **options: Any) -> None:
    """Start the Textual app on ``screen``; the UI package is imported only here."""
    try:
        from turing_tui.ui.app import build_app
    except ImportError as exc:  # the UI is part of the package; this is a broken install
        raise click.ClickException(f"The app could not start: {exc}") from exc
    app = build_app(paths=state.paths, screen=screen, **options)
    app.run()
    code = getattr(app, "return_code", 0) or 0
    if code:
        sys.exit(code)
