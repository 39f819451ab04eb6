"""``turing-tui train``: fine-tune (or train from scratch) a tweet model, with live progress.

Headless with a category, rendering the core's training events with Rich (or as JSON
lines with ``--json``); with no category it opens the app on the Train screen. Ctrl+C
stops at the next step and saves a checkpoint; ``--resume`` continues it.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from turing_tui.cli._common import CliState, console, pass_state

EXAMPLES = """
\b
Examples:
  turing-tui train --category vc --from-scratch        no model hub needed (~7 min on 2 CPU cores)
  turing-tui train --category vc                       fine-tune gpt2 (needs the Hugging Face Hub)
  turing-tui train --category vc --base distilgpt2 --epochs 3 --batch-size 32
  turing-tui train --category vc --resume              continue the run Ctrl+C stopped
  turing-tui train --category vc --from-scratch --max-steps 200 --json
  turing-tui train                                     open the Train screen
\b
Several GPUs (one process per GPU; only rank 0 prints and saves):
  accelerate launch --multi_gpu --num_processes 4 -m turing_tui train --category vc
  torchrun --nproc_per_node 4 -m turing_tui train --category vc
"""


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def _event_json(event: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = {"event": type(event).__name__}
    for key, value in asdict(event).items():
        data[key] = str(value) if key in ("output", "path") else value
    return data


def _print_event_json(event: Any) -> None:
    """One JSON object per line on stdout, flushed, so a pipe sees each event at once."""
    import sys

    import orjson

    sys.stdout.write(orjson.dumps(_event_json(event), option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
    sys.stdout.flush()


class RichTrainView:
    """Renders training events: a progress bar with loss, tokens/s and ETA; eval lines."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.out = console()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            console=self.out,
            transient=False,
        )
        self.task: Any = None
        self.eval_text = ""

    def __call__(self, event: Any) -> None:
        from turing_tui.model.train import EvalDone, TrainFinished, TrainPhase, TrainProgress, TrainStarted, schedule_text

        if isinstance(event, TrainPhase):
            self.out.print(f"[dim]{event.message}...[/]")
        elif isinstance(event, TrainStarted):
            resumed = f", resuming at step {event.resumed_from_step}" if event.resumed_from_step else ""
            self.out.print(
                f"Training [bold]{event.base}[/] ({event.parameters / 1e6:.1f}M parameters) on {event.device} {event.precision}: "
                f"{event.train_tweets:,} tweets ({event.train_tokens:,} tokens in {event.blocks:,} blocks), "
                f"{event.heldout_tweets:,} held out{resumed}."
            )
            if event.batch_size:
                self.out.print(schedule_text(event.total_steps, event.batch_size, event.epochs, event.lr, event.eval_every))
            self.out.print(f"Checkpoint: {event.output}   (Ctrl+C stops and saves; --resume continues)")
            self.progress.start()
            self.task = self.progress.add_task("train", total=event.total_steps, completed=event.resumed_from_step, stats="")
        elif isinstance(event, TrainProgress) and self.task is not None:
            loss = f"loss {event.loss:.3f}" if event.loss is not None else ""
            stats = f"{loss}{self.eval_text}  {event.tokens_per_s:,.0f} tok/s  ETA {_fmt_eta(event.eta_s)}"
            self.progress.update(self.task, completed=event.step, total=event.total_steps, stats=stats)
        elif isinstance(event, EvalDone):
            self.eval_text = f"  val {event.eval_loss:.3f}"
            self.progress.console.print(
                f"step {event.step}: validation loss {event.eval_loss:.3f} (perplexity {event.perplexity:,.1f}; best {event.best_eval_loss:.3f})"
            )
            for sample in event.samples:
                self.progress.console.print(f"  [italic]{_one_line(sample)}[/]", markup=True, highlight=False)
        elif isinstance(event, TrainFinished):
            self.progress.stop()
            verdict = {
                "complete": "Finished",
                "cancelled": "Cancelled; checkpoint saved (continue with --resume)",
                "stopped": "Stopped at the time limit; checkpoint saved (continue with --resume)",
            }.get(event.status, event.status)
            loss = f", validation loss {event.eval_loss:.3f} (perplexity {event.perplexity:,.1f})" if event.eval_loss is not None else ""
            self.out.print(f"[bold]{verdict}[/] after {event.steps} steps in {_fmt_eta(event.wall_s)}{loss}.")
            self.out.print(f"Model: {event.path}")
            for sample in event.samples:
                self.out.print(f"  [italic]{_one_line(sample)}[/]", highlight=False)

    def close(self) -> None:
        self.progress.stop()


def _one_line(text: str) -> str:
    from rich.markup import escape

    return escape(text.replace("\n", "\\n"))


@click.command("train", epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--category", "-c", help="Category whose tweets to learn (data/<category>/). Omit to open the Train screen.")
@click.option("--base", default="gpt2", show_default=True, help="Model to fine-tune: a hub name (gpt2, distilgpt2) or a checkpoint folder.")
@click.option("--from-scratch", is_flag=True, help="Train a BPE tokenizer and a small GPT-2 from nothing (no model hub).")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), help="Passes over the data, at most (early stopping may end sooner) [fine-tuning 2, up to 4 on a small set; from scratch 1 on CPU, 3 on GPU].")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimizer steps (overrides --epochs).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), help="Stop and save after this long [13 from scratch on CPU].")
@click.option("--block-size", type=click.IntRange(8, 4096), default=128, show_default=True, help="Tokens per packed training block.")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Blocks per step and device [auto: 16; 8 or 4 when that would make under 100 steps an epoch].")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Peak learning rate [1e-3 from scratch; fine-tuning a model made here from scratch, 0.5/width (3e-3 at 128, 2e-3 at 256); else 5e-5].")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--max-tweets", type=click.IntRange(min=2), help="Use only the first N tweets (quick experiments).")
@click.option("--eval-every", type=click.IntRange(min=1), help="Steps between evaluations [about 10 per run; fewer where an evaluation costs much next to a step].")
@click.option("--patience", type=click.IntRange(min=1), default=3, show_default=True, help="Evaluations without improvement before early stopping.")
@click.option("--layers", type=click.IntRange(1, 48), help="From scratch: transformer layers [4].")
@click.option("--width", type=click.IntRange(16, 4096), help="From scratch: embedding width [256].")
@click.option("--heads", type=click.IntRange(1, 64), help="From scratch: attention heads; must divide --width [4].")
@click.option("--dropout", type=click.FloatRange(0, 0.9), help="From scratch: dropout rate [0: a pass or two does not overfit].")
@click.option("--vocab-size", type=click.IntRange(300, 100_000), help="From scratch: BPE vocabulary size [8192].")
@click.option("--resume", is_flag=True, help="Continue the newest cancelled run of the category (or the one in --output).")
@click.option("--output", type=click.Path(file_okay=False), help="Checkpoint folder [models/<category>-<base>-<time>].")
@click.option("--name", help="Checkpoint name under models/ (instead of --output).")
@click.option("--json", "as_json", is_flag=True, help="Print events as JSON lines instead of a progress bar.")
@pass_state
def train_command(state: CliState, category: str | None, base: str, from_scratch: bool, epochs: float | None, max_steps: int | None,
                  max_minutes: float | None, block_size: int, batch_size: int | None, lr: float | None, seed: int, max_tweets: int | None,
                  eval_every: int | None, patience: int, layers: int | None, width: int | None, heads: int | None,
                  dropout: float | None, vocab_size: int | None, resume: bool, output: str | None, name: str | None, as_json: bool) -> None:  # fmt: skip
    """Fine-tune GPT-2 (or a small model from scratch) on a category's tweets.

    Tweets are packed whole into blocks (no stride-1 windows), a held-out split chosen by
    tweet id measures validation loss and perplexity, training stops early when it stops
    improving, and the best weights are saved to models/<name>/ with their metadata.
    """
    from pathlib import Path

    from turing_tui.paths import validate_category

    if category is None and not resume:
        from turing_tui.cli._common import run_app

        # The options given fill the Train screen's form; the rest keep their placeholders.
        given = dict(epochs=epochs, max_steps=max_steps, max_minutes=max_minutes, batch_size=batch_size, lr=lr,
                     max_tweets=max_tweets, eval_every=eval_every, block_size=block_size if block_size != 128 else None)  # fmt: skip
        form: dict[str, object] = {key: value for key, value in given.items() if value is not None}
        if from_scratch or base != "gpt2":
            form.update(from_scratch=from_scratch, base=base)
        run_app(state, screen="train", **form)
        return
    from turing_tui.errors import UserError

    if category is None:
        if not output:
            raise UserError("Say which run to resume: --category NAME (its newest cancelled run) or --output FOLDER.")
        from turing_tui.model.checkpoint import read_metadata

        category = str((read_metadata(Path(output)) or {}).get("category") or "")
        if not category:
            raise UserError(f"{output} is not a training run folder; give --category too.")
    validate_category(category)
    from turing_tui.model.train import TrainConfig, train

    if name is not None:
        validate_category(name)
    from turing_tui.model.scratch import DEFAULT_VOCAB, ScratchShape

    default_shape = ScratchShape()
    shape = ScratchShape(
        n_layer=layers or default_shape.n_layer,
        n_embd=width or default_shape.n_embd,
        n_head=heads or default_shape.n_head,
        n_positions=max(default_shape.n_positions, block_size),
        dropout=default_shape.dropout if dropout is None else dropout,
    )
    if shape.n_embd % shape.n_head:
        raise UserError(f"--heads {shape.n_head} must divide --width {shape.n_embd}.")
    if not from_scratch and any(v is not None for v in (layers, width, heads, vocab_size, dropout)):
        raise UserError("--layers, --width, --heads, --dropout and --vocab-size shape a new model: add --from-scratch.")
    config = TrainConfig(
        category=category, base=base, from_scratch=from_scratch, epochs=epochs, max_steps=max_steps, max_minutes=max_minutes,
        block_size=block_size, batch_size=batch_size, lr=lr, seed=seed, max_tweets=max_tweets, eval_every=eval_every,
        patience=patience, name=name, shape=shape, vocab_size=vocab_size or DEFAULT_VOCAB,
    )  # fmt: skip
    stop = threading.Event()
    view: Any
    if as_json:
        view = _print_event_json
    else:
        view = RichTrainView()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        click.echo("\nStopping after this step and saving a checkpoint (Ctrl+C again to abort without saving)...", err=True)

    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    try:
        result = train(state.paths, config, output=Path(output) if output else None, resume=resume, on_event=view, stop=stop)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if isinstance(view, RichTrainView):
            view.close()
    if result.status == "cancelled":
        raise SystemExit(130)


COMMAND = train_command
