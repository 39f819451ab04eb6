"""The ``turing-tui`` command line: one subcommand per job, discovered lazily.

Each module ``turing_tui/cli/<name>.py`` (not starting with ``_``) defines ``COMMAND``, a
click command or group. Modules import only click at the top; heavy libraries (torch,
transformers, textual) load inside the command that needs them, so ``--help`` is fast.
User errors (:class:`~turing_tui.errors.UserError`) print one sentence and exit non-zero.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from turing_tui import __version__
from turing_tui.cli._common import CliState, print_error
from turing_tui.errors import UserError

EXAMPLES = """
\b
Examples:
  turing-tui play --category vc         play a round of the game
  turing-tui data fetch vc              download the vc tweets
  turing-tui train --category vc --from-scratch
  turing-tui --home ~/tt leaderboard    use another data root
"""


class LazyGroup(click.Group):
    """A group whose subcommands are the modules of this package, imported on demand."""

    def _names(self) -> list[str]:
        return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._names()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self._names():
            return command
        module = importlib.import_module(f"{__name__}.{cmd_name}")
        return getattr(module, "COMMAND", None)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            print_error(str(exc))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            print_error("Interrupted.")
            ctx.exit(130)


@click.group(cls=LazyGroup, invoke_without_command=True, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=str),
    envvar="TURING_TUI_HOME",
    help="Data root (sources/, data/, models/, the database). Env: TURING_TUI_HOME.",
)
@click.version_option(__version__, "-V", "--version", prog_name="turing-tui")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """turing-tui: can you tell a human tweet from a GPT-2 tweet?

    With no subcommand, opens the app on its home screen.
    """
    from turing_tui.paths import Paths

    ctx.obj = CliState(paths=Paths.resolve(home))
    if ctx.invoked_subcommand is None:
        from turing_tui.cli._common import run_app

        run_app(ctx.obj, screen="home")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="turing-tui")
