"""The Train screen: pick a category and options, start, watch the losses fall, cancel.

Training runs in a child process (``turing-tui train --json``) that a worker thread
reads line by line, turning each JSON event into a message; the UI never waits on torch
and a crash in training cannot take the app down. The chart plots training and
validation loss (textual-plotext); the stats line shows step, perplexity, tokens/s and
ETA; the latest samples appear after each evaluation. Cancel sends the child Ctrl+C,
which saves a checkpoint that "Resume" continues. Leaving the screen mid-run does the
same, so no training is ever lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, ProgressBar, RichLog, Select, Static, Switch
from textual.worker import get_current_worker
from textual_plotext import PlotextPlot

from turing_tui.model.train import schedule_text

SIZES = [
    ("small  4 x 256, 5M params", "small"),  # ~7 min on 2 CPU cores for vc
    ("tiny   2 x 64, a smoke test", "tiny"),
    ("medium 6 x 384, for a GPU", "medium"),
]
SIZE_ARGS = {
    "tiny": ["--layers", "2", "--width", "64", "--heads", "2", "--vocab-size", "1000"],
    "small": [],
    "medium": ["--layers", "6", "--width", "384", "--heads", "6"],
}
# Form fields that map to one CLI option each: (input id, option, label, placeholder).
NUMBER_FIELDS = (
    ("epochs", "--epochs", "Epochs", "auto: 2-4 by data"),
    ("max-steps", "--max-steps", "Max steps", "no limit"),
    ("max-minutes", "--max-minutes", "Max minutes", "13 (scratch, CPU)"),
    ("batch-size", "--batch-size", "Batch size", "auto: 16, 4-8 small data"),
    ("block-size", "--block-size", "Block (tokens)", "128"),
    ("lr", "--lr", "Learning rate", "auto by model"),
    ("max-tweets", "--max-tweets", "Max tweets", "all"),
    ("eval-every", "--eval-every", "Evaluate every", "auto by cost"),
)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class TrainScreen(Screen[None]):
    """Fine-tune or train a tweet model and watch it learn."""

    BINDINGS = [
        Binding("ctrl+r", "start", "Start"),
        Binding("ctrl+x", "cancel", "Cancel run"),
        Binding("escape", "back", "Back"),
    ]

    DEFAULT_CSS = """
    TrainScreen #train-body { height: 1fr; }
    TrainScreen #form { width: 44; padding: 0 1; border-right: solid $panel-lighten-2; }
    TrainScreen #form Label { margin-top: 1; text-style: bold; }
    TrainScreen #form .field { height: 1; }
    TrainScreen #form .field Label { width: 19; margin: 0; text-style: none; }
    TrainScreen #form .field Input { width: 1fr; }
    TrainScreen #form Select { width: 100%; }
    TrainScreen .switch-row { height: auto; margin-top: 1; }
    TrainScreen .switch-row Label { margin: 1 0 0 1; text-style: none; }
    TrainScreen #actions { height: 3; margin-top: 1; }
    TrainScreen #actions Button { margin-right: 1; min-width: 10; }
    TrainScreen #watch { padding: 0 1; }
    TrainScreen #status { height: auto; margin-bottom: 1; }
    TrainScreen #status.failed { color: $error; }
    TrainScreen #status.done { color: $success; }
    TrainScreen #stats { height: auto; color: $accent; }
    TrainScreen #bar { margin: 1 0; }
    TrainScreen #chart { height: 1fr; min-height: 10; }
    TrainScreen #samples { height: 10; border: round $panel-lighten-2; }
    """

    # -- messages (posted by the worker) -----------------------------------------------------
    @dataclass
    class TrainingEvent(Message):
        """One event from the training process (see turing_tui.model.train)."""

        data: dict[str, Any] = field(default_factory=dict)

    @dataclass
    class TrainingProgressed(Message):
        """A progress tick; a flood of them collapses to the newest."""

        data: dict[str, Any] = field(default_factory=dict)

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, TrainScreen.TrainingProgressed)

    @dataclass
    class TrainingEnded(Message):
        """The training process exited; ``error`` is its last error line when it failed."""

        returncode: int
        error: str = ""

    def __init__(
        self,
        *,
        category: str | None = None,
        base: str = "gpt2",
        from_scratch: bool = True,
        size: str = "small",
        epochs: float | None = None,
        max_steps: int | None = None,
        max_minutes: float | None = None,
        eval_every: int | None = None,
        batch_size: int | None = None,
        block_size: int | None = None,
        lr: float | None = None,
        max_tweets: int | None = None,
        autostart: bool = False,
    ) -> None:
        super().__init__()
        self.initial = {
            "category": category,
            "base": base,
            "from_scratch": from_scratch,
            "size": size if size in SIZE_ARGS else "small",
            "epochs": epochs,
            "max-steps": max_steps,
            "max-minutes": max_minutes,
            "eval-every": eval_every,
            "batch-size": batch_size,
            "block-size": block_size,
            "lr": lr,
            "max-tweets": max_tweets,
        }
        self.autostart = autostart
        self.process: subprocess.Popen[bytes] | None = None
        self.running = False
        self.cancelling = False
        self.train_points: list[tuple[int, float]] = []
        self.eval_points: list[tuple[int, float]] = []
        self.last_eval: dict[str, Any] | None = None
        self.finished: dict[str, Any] | None = None
        self.total_steps = 0

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="train-body"):
            with VerticalScroll(id="form"):
                yield Label("Category")
                yield Select([], id="category", prompt="no category has tweets yet", compact=True)
                with Horizontal(classes="switch-row"):
                    yield Switch(value=bool(self.initial["from_scratch"]), id="from-scratch")
                    yield Label("From scratch (no model hub)")
                yield Label("Model size (from scratch)")
                yield Select(SIZES, value=self.initial["size"], allow_blank=False, id="size", compact=True)
                yield Label("Base model to fine-tune")
                yield Input(str(self.initial["base"]), placeholder="gpt2, distilgpt2 or a folder", id="base", compact=True)
                yield Label("Options (blank: default)")
                for key, _, label, hint in NUMBER_FIELDS:
                    with Horizontal(classes="field"):
                        yield Label(label)
                        value = self.initial.get(key)
                        yield Input("" if value is None else str(value), placeholder=hint, id=key, type="number", compact=True)
                with Horizontal(classes="switch-row"):
                    yield Switch(value=False, id="resume")
                    yield Label("Resume the last cancelled run")
                with Horizontal(id="actions"):
                    yield Button("Start", id="start", variant="primary")
                    yield Button("Cancel", id="cancel", variant="error", disabled=True)
            with Vertical(id="watch"):
                yield Static("Pick a category and options, then Start (ctrl+r).", id="status")
                yield Static("", id="stats")
                yield ProgressBar(id="bar", show_eta=False)
                yield PlotextPlot(id="chart")
                yield RichLog(id="samples", wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Train"
        self.sub_title = "teach a model to write tweets"
        paths = self.app.paths  # type: ignore[attr-defined]
        categories = paths.categories()
        select = self.query_one("#category", Select)
        select.set_options([(name, name) for name in categories])
        wanted = self.initial["category"]
        if wanted in categories:
            select.value = wanted
        elif categories:
            select.value = categories[0]
        self._toggle_base()
        self._draw_chart()
        if self.autostart:
            self.action_start()

    @on(Switch.Changed, "#from-scratch")
    def _toggle_base(self) -> None:
        scratch = self.query_one("#from-scratch", Switch).value
        self.query_one("#base", Input).disabled = scratch
        self.query_one("#size", Select).disabled = not scratch

    # -- starting ----------------------------------------------------------------------------
    def build_command(self) -> list[str] | str:
        """The ``turing-tui train`` command for the form, or a sentence saying what is wrong."""
        paths = self.app.paths  # type: ignore[attr-defined]
        category = self.query_one("#category", Select).value
        if not isinstance(category, str):  # the blank choice: no category has data
            return "No category has tweets yet: get some with Data/Scrape (or 'turing-tui data fetch vc')."
        args = [sys.executable, "-m", "turing_tui", "--home", str(paths.root), "train", "--category", str(category), "--json"]
        if self.query_one("#resume", Switch).value:
            return [*args, "--resume"]
        if self.query_one("#from-scratch", Switch).value:
            args += ["--from-scratch", *SIZE_ARGS[str(self.query_one("#size", Select).value)]]
        else:
            base = self.query_one("#base", Input).value.strip()
            if not base:
                return "Name a base model to fine-tune (gpt2, distilgpt2 or a folder), or switch on From scratch."
            args += ["--base", base]
        for key, option, label, _ in NUMBER_FIELDS:
            text = self.query_one(f"#{key}", Input).value.strip()
            if not text:
                continue
            try:
                number = float(text)
            except ValueError:
                return f"{label} must be a number."
            if number <= 0:
                return f"{label} must be above 0."
            integer = option not in ("--epochs", "--max-minutes", "--lr")
            if integer and number != int(number):
                return f"{label} must be a whole number."
            args += [option, str(int(number)) if integer else text]
        return args

    def action_start(self) -> None:
        if self.running:
            self.notify("A run is already going; cancel it first.", severity="warning")
            return
        command = self.build_command()
        if isinstance(command, str):
            self._status(command, "failed")
            self.notify(command, severity="error", markup=False)
            return
        self.train_points.clear()
        self.eval_points.clear()
        self.last_eval = None
        self.finished = None
        self.total_steps = 0
        self.query_one("#samples", RichLog).clear()
        self.query_one("#stats", Static).update("")
        self._draw_chart()
        self._set_running(True)
        self._status("Starting the training process...")
        self.run_training(command)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train")
    def run_training(self, command: list[str]) -> None:
        """Run the child and stream its JSON events as messages (never touches widgets)."""
        worker = get_current_worker()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        with tempfile.TemporaryFile() as errors:
            try:
                # Its own session: the terminal's Ctrl+C belongs to the app; we forward it on Cancel.
                process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            except OSError as exc:
                self.post_message(self.TrainingEnded(returncode=-1, error=f"Could not start training: {exc}"))
                return
            self.process = process
            assert process.stdout is not None
            for raw in process.stdout:
                if worker.is_cancelled:
                    break
                try:
                    data = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue  # a stray library print; events are whole JSON lines
                if data.get("event") == "TrainProgress":
                    self.post_message(self.TrainingProgressed(data))
                else:
                    self.post_message(self.TrainingEvent(data))
            code = process.wait()
            errors.seek(0)
            lines = [ln.strip() for ln in errors.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        error = next((ln for ln in reversed(lines) if ln.startswith("Error:")), lines[-1] if lines and code not in (0, 130) else "")
        self.post_message(self.TrainingEnded(returncode=code, error=error.removeprefix("Error: ")))

    # -- cancelling --------------------------------------------------------------------------
    def action_cancel(self) -> None:
        process = self.process
        if not self.running or process is None or process.poll() is not None:
            return
        self.cancelling = True
        process.send_signal(signal.SIGINT)  # the child stops at the next step and saves
        self._status("Cancelling: saving a checkpoint at the next step...")
        self.query_one("#cancel", Button).disabled = True

    def action_back(self) -> None:
        if self.running:
            self.action_cancel()
            self.notify("Training was cancelled; its checkpoint is being saved (Resume continues it).")
        self.app.go_back()  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # it saves and exits on its own

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    # -- events from the worker --------------------------------------------------------------
    def on_train_screen_training_progressed(self, message: TrainingProgressed) -> None:
        data = message.data
        step, total = int(data["step"]), int(data["total_steps"])
        self.total_steps = total
        if data.get("loss") is not None:
            self.train_points.append((step, float(data["loss"])))
        bar = self.query_one("#bar", ProgressBar)
        bar.update(total=total, progress=step)
        loss = f"loss {data['loss']:.3f}" if data.get("loss") is not None else ""
        val = f"   validation {self.last_eval['eval_loss']:.3f} (ppl {self.last_eval['perplexity']:,.1f})" if self.last_eval else ""
        self.query_one("#stats", Static).update(
            f"step {step}/{total}   epoch {data['epoch']:.2f}   {loss}{val}   "
            f"{data['tokens_per_s']:,.0f} tokens/s   ETA {_eta(data.get('eta_s'))}"
        )
        self._draw_chart()

    def on_train_screen_training_event(self, message: TrainingEvent) -> None:
        data = message.data
        kind = data.get("event")
        log = self.query_one("#samples", RichLog)
        if kind == "TrainPhase":
            self._status(f"{data['message']}...")
        elif kind == "TrainStarted":
            self.total_steps = int(data["total_steps"])
            self.query_one("#bar", ProgressBar).update(total=self.total_steps, progress=int(data.get("resumed_from_step") or 0))
            self._status(
                f"Training {data['base']} ({data['parameters'] / 1e6:.1f}M params) on {data['device']} {data['precision']}: "
                f"{data['train_tweets']:,} tweets, {data['heldout_tweets']:,} held out -> {data['output']}"
            )
            if data.get("batch_size"):
                log.write(schedule_text(int(data["total_steps"]), int(data["batch_size"]), float(data["epochs"]), float(data["lr"]), int(data["eval_every"])))
        elif kind == "EvalDone":
            self.last_eval = data
            self.eval_points.append((int(data["step"]), float(data["eval_loss"])))
            log.write(f"step {data['step']}: validation loss {data['eval_loss']:.3f} (perplexity {data['perplexity']:,.1f})")
            for sample in data.get("samples") or ():
                log.write("  " + sample.replace("\n", " / "))
            self._draw_chart()
        elif kind == "TrainFinished":
            self.finished = data
            for sample in data.get("samples") or ():
                log.write("  " + sample.replace("\n", " / "))

    def on_train_screen_training_ended(self, message: TrainingEnded) -> None:
        self._set_running(False)
        self.process = None
        done = self.finished
        if done is not None:
            words = {
                "complete": "Finished",
                "cancelled": "Cancelled; checkpoint saved (switch on Resume to continue)",
                "stopped": "Stopped at the time limit; checkpoint saved (Resume continues)",
            }.get(done["status"], done["status"])
            loss = f", validation loss {done['eval_loss']:.3f} (perplexity {done['perplexity']:,.1f})" if done.get("eval_loss") is not None else ""
            self._status(f"{words} after {done['steps']} steps{loss}. Model: {done['path']}", "done")
            self.notify(f"{words}.", title="Training")
        elif self.cancelling and message.returncode in (0, 130):
            self._status("Cancelled before training began.")
        else:
            text = message.error or f"Training stopped unexpectedly (exit code {message.returncode})."
            self._status(text, "failed")
            self.notify(text, title="Training failed", severity="error", markup=False)
        self.cancelling = False

    # -- drawing -----------------------------------------------------------------------------
    def _draw_chart(self) -> None:
        chart = self.query_one("#chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("loss (lower is better)")
        plt.xlabel("step")
        if self.train_points:
            plt.plot([s for s, _ in self.train_points], [v for _, v in self.train_points], label="train", marker="braille")
        if self.eval_points:
            plt.plot([s for s, _ in self.eval_points], [v for _, v in self.eval_points], label="validation", marker="dot")
        chart.refresh()

    def _status(self, text: str, kind: str = "") -> None:
        status = self.query_one("#status", Static)
        status.update(Text(text))
        status.set_class(kind == "failed", "failed")
        status.set_class(kind == "done", "done")

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#start", Button).disabled = running
        self.query_one("#cancel", Button).disabled = not running
        self.query_one("#form").set_class(running, "-running")
