"""``turing-tui models``: the trained checkpoints, newest first, with how good they are.

Reads only each checkpoint's metadata file, so it answers instantly without torch.
"""

from __future__ import annotations

import click

from turing_tui.cli._common import CliState, pass_state

EXAMPLES = """
\b
Examples:
  turing-tui models                 every checkpoint under models/
  turing-tui models -c vc --json    the vc checkpoints, for scripts
"""


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


@click.command("models", epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--category", "-c", help="Only this category's checkpoints.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list instead of a table.")
@pass_state
def models_command(state: CliState, category: str | None, as_json: bool) -> None:
    """List trained checkpoints: category, base, validation loss, size."""
    import time

    from turing_tui.cli._common import console, print_json
    from turing_tui.model.checkpoint import list_checkpoints
    from turing_tui.paths import validate_category

    if category is not None:
        validate_category(category)
    found = list_checkpoints(state.paths, category)
    if as_json:
        print_json([info.as_dict() for info in found])
        return
    out = console()
    if not found:
        where = f" for category '{category}'" if category else ""
        out.print(f"No checkpoints{where} in {state.paths.models_dir}. Make one with: turing-tui train --category vc --from-scratch")
        return
    from rich.table import Table

    table = Table(title=f"Models in {state.paths.models_dir}", title_justify="left")
    for column, justify in (("name", "left"), ("category", "left"), ("base", "left"), ("status", "left"), ("steps", "right"),
                            ("val loss", "right"), ("perplexity", "right"), ("size", "right"), ("created", "left")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for info in found:
        loss = f"{info.eval_loss:.3f}" if info.eval_loss is not None else "-"
        ppl = f"{info.perplexity:,.1f}" if info.perplexity is not None else "-"
        status = info.status + (" (resumable)" if info.resumable else "")
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.created))
        table.add_row(info.name, info.category, info.base, status, str(info.metadata.get("steps") or "-"), loss, ppl, _size(info.size_bytes), created)
    out.print(table)


COMMAND = models_command
