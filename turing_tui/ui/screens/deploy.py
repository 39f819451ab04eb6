"""The Deploy screen: pick a checkpoint and a target, watch it go live, try it.

A thin shell over :mod:`turing_tui.serve`: the same ``start_local``, ``deploy_modelzoo``
and ``push_to_hub`` the ``deploy`` command runs, in a worker thread that turns their
progress events into messages. The screen shows upload progress, the remote or local
health states and a log of steps; it polls the local server's health every few seconds,
stops it on request, and has a "try it" box that asks the deployed endpoint for a tweet
through the game's own HTTP generators, so what you see is what a player would get.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Log, ProgressBar, Select, Static
from textual.worker import get_current_worker

from turing_tui.errors import UserError
from turing_tui.serve.events import Deployed, FileUploaded, StateChanged, StepStarted

TARGETS = [
    ("local (background serve)", "local"),
    ("Model Zoo", "modelzoo"),
    ("Hugging Face Hub", "hf"),
]
HEALTH_EVERY_S = 3.0


class DeployScreen(Screen[None]):
    """Deploy a checkpoint and watch it become healthy."""

    BINDINGS = [
        Binding("d", "deploy", "Deploy"),
        Binding("c", "cancel", "Cancel"),
        Binding("x", "stop", "Stop local"),
        Binding("t", "try_it", "Try it"),
        Binding("escape", "back", "Back"),
    ]

    DEFAULT_CSS = """
    DeployScreen #deploy-body { height: 1fr; }
    DeployScreen #form { width: 46; padding: 0 1; border-right: solid $panel-lighten-2; }
    DeployScreen #form Label { margin-top: 1; text-style: bold; }
    DeployScreen #form Select, DeployScreen #form Input { width: 100%; }
    DeployScreen .target-options { height: auto; display: none; }
    DeployScreen .target-options.shown { display: block; }
    DeployScreen #actions { height: 3; margin-top: 1; }
    DeployScreen #actions Button { margin-right: 1; min-width: 10; }
    DeployScreen #watch { padding: 0 1; }
    DeployScreen #health { height: auto; margin-bottom: 1; }
    DeployScreen #health.healthy { color: $success; }
    DeployScreen #health.unhealthy { color: $error; }
    DeployScreen #phase { height: 1; }
    DeployScreen #progress { margin-bottom: 1; }
    DeployScreen #log { height: 1fr; min-height: 6; border: round $panel-lighten-2; }
    DeployScreen #try-row { height: 3; margin-top: 1; }
    DeployScreen #try-prompt { width: 1fr; }
    DeployScreen #tweet { height: auto; min-height: 3; padding: 1 2; border: round $accent; margin-top: 1; }
    DeployScreen #tweet.failed { border: round $error; }
    """

    # -- messages (posted by workers) ---------------------------------------------------------
    @dataclass
    class Surveyed(Message):
        checkpoints: list[Any]  # CheckpointInfo, newest first

    @dataclass
    class DeployProgressed(Message):
        event: Any  # a turing_tui.serve.events DeployEvent

        def can_replace(self, message: Message) -> bool:
            # A flood of upload ticks for the same file collapses to the newest.
            return (
                isinstance(message, DeployScreen.DeployProgressed)
                and isinstance(message.event, FileUploaded)
                and isinstance(self.event, FileUploaded)
                and message.event.file == self.event.file
            )

    @dataclass
    class DeployFinished(Message):
        target: str
        endpoint: tuple[str, str, str | None] | None  # (url, protocol, key) to try, if any

    @dataclass
    class DeployFailed(Message):
        text: str

    @dataclass
    class HealthChecked(Message):
        status: Any  # turing_tui.serve.deploy.LocalStatus

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, DeployScreen.HealthChecked)

    @dataclass
    class TweetFetched(Message):
        text: str
        source: str

    @dataclass
    class TryFailed(Message):
        text: str

    def __init__(self, *, model: str | None = None, target: str = "local") -> None:
        super().__init__()
        self.initial_model = model
        self.initial_target = target if target in {t for _, t in TARGETS} else "local"
        # Where "try it" asks: a Model Zoo deploy of this session, else the healthy local server.
        self.remote_endpoint: tuple[str, str, str | None] | None = None
        self.local_endpoint: tuple[str, str, str | None] | None = None
        self.cancel_flag: threading.Event | None = None
        self.deploying = False
        self.upload_sizes: dict[str, tuple[int, int]] = {}
        self.upload_total = 0

    # -- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="deploy-body"):
            with VerticalScroll(id="form"):
                yield Label("Checkpoint")
                yield Select([], prompt="no checkpoints yet", id="checkpoint")
                yield Label("Target")
                yield Select(TARGETS, value=self.initial_target, allow_blank=False, id="target")
                with Vertical(id="zoo-options", classes="target-options"):
                    yield Label("Model name")
                    yield Input(placeholder="default: the checkpoint's name", id="zoo-name")
                    yield Static("Key and URL from MODELZOO_API_KEY / MODELZOO_BASE_API_URL.", classes="hint")
                with Vertical(id="hf-options", classes="target-options"):
                    yield Label("Repo")
                    yield Input(placeholder="OWNER/NAME (token from HF_TOKEN)", id="hf-repo")
                    yield Checkbox("Public repo", id="hf-public")
                with Horizontal(id="actions"):
                    yield Button("Deploy", id="deploy", variant="primary")
                    yield Button("Cancel", id="cancel", disabled=True)
                    yield Button("Stop local", id="stop", variant="error", disabled=True)
            with Vertical(id="watch"):
                yield Static("Local server: checking...", id="health")
                yield Static("", id="phase")
                yield ProgressBar(id="progress", show_eta=False)
                yield Log(id="log", highlight=False)
                yield Label("Try it: ask the endpoint for a tweet")
                with Horizontal(id="try-row"):
                    yield Input(placeholder="optional start of the tweet", id="try-prompt")
                    yield Button("Ask", id="try")
                yield Static(Text("Deploy a model or start a local server, then ask it for a tweet.", style="dim"), id="tweet")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Deploy"
        self.sub_title = "serve a checkpoint, push it, watch its health"
        self._show_target_options(self.initial_target)
        self.survey()
        self.check_health()
        self.set_interval(HEALTH_EVERY_S, self.check_health)

    # -- workers ----------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="survey")
    def survey(self) -> None:
        from turing_tui.model.checkpoint import list_checkpoints

        self.post_message(self.Surveyed(list_checkpoints(self.app.paths)))  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="health")
    def check_health(self) -> None:
        from turing_tui.serve.deploy import local_status

        self.post_message(self.HealthChecked(local_status(self.app.paths, timeout=1.0)))  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="deploy")
    def run_deploy(self, target: str, checkpoint: Path, name: str | None, repo: str | None, public: bool, cancel: threading.Event) -> None:
        worker = get_current_worker()

        def on_event(event: Any) -> None:
            if worker.is_cancelled:
                cancel.set()
            self.post_message(self.DeployProgressed(event))

        paths = self.app.paths  # type: ignore[attr-defined]
        try:
            if target == "local":
                from turing_tui.serve.deploy import local_endpoint, start_local

                start_local(paths, str(checkpoint), name=name, on_event=on_event, cancel=cancel)
                self.post_message(self.DeployFinished(target, local_endpoint(paths)))
            elif target == "modelzoo":
                from turing_tui.model.checkpoint import read_metadata
                from turing_tui.serve.modelzoo import ModelZooConfig, deploy_modelzoo

                config = ModelZooConfig.from_env()
                zoo_name = name or str((read_metadata(checkpoint) or {}).get("name") or checkpoint.name)
                url = deploy_modelzoo(checkpoint, zoo_name, config=config, on_event=on_event, cancel=cancel)
                self.post_message(self.DeployFinished(target, (url, "modelzoo", config.api_key)))
            else:
                from turing_tui.serve.hub import push_to_hub

                if not repo:
                    raise UserError("Name the Hub repo (OWNER/NAME, or NAME for the token's owner).")
                push_to_hub(checkpoint, repo, private=not public, on_event=on_event, cancel=cancel)
                self.post_message(self.DeployFinished(target, None))
        except UserError as exc:
            self.post_message(self.DeployFailed(str(exc)))
        except Exception as exc:  # a bug, but the screen must say something and stay usable
            self.post_message(self.DeployFailed(f"The deploy failed unexpectedly: {type(exc).__name__}: {exc}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="try")
    def fetch_tweet(self, url: str, protocol: str, key: str | None, start: str) -> None:
        from turing_tui.backends.http import TWEET_MARK, http_generator
        from turing_tui.net import Backoff

        try:
            generator = http_generator(url, protocol, api_key=key, prompt=TWEET_MARK + start, backoff=Backoff(retries=1, base=0.2))
            try:
                fakes = generator.generate(1)
            finally:
                generator.close()
        except UserError as exc:
            self.post_message(self.TryFailed(str(exc)))
            return
        except Exception as exc:
            self.post_message(self.TryFailed(f"The endpoint could not be asked: {type(exc).__name__}: {exc}"))
            return
        if not fakes:
            self.post_message(self.TryFailed("The endpoint answered with an empty tweet; ask again."))
            return
        text = fakes[0].text
        self.post_message(self.TweetFetched(f"{start} {text}".strip() if start else text, f"{protocol} {url}"))

    # -- actions -----------------------------------------------------------------------------------
    def action_deploy(self) -> None:
        if self.deploying:
            self.notify("A deploy is already running; cancel it first.", severity="warning")
            return
        value = self.query_one("#checkpoint", Select).value
        if not isinstance(value, str):
            self.notify("Pick a checkpoint first (train one with `turing-tui train`).", severity="error")
            return
        checkpoint = Path(value)
        target = str(self.query_one("#target", Select).value)
        name = self.query_one("#zoo-name", Input).value.strip() or None if target == "modelzoo" else None
        repo = self.query_one("#hf-repo", Input).value.strip() or None
        public = self.query_one("#hf-public", Checkbox).value
        self.upload_sizes = {}
        self.upload_total = self._upload_bytes(checkpoint) if target != "local" else 0
        progress = self.query_one("#progress", ProgressBar)
        progress.update(total=self.upload_total or None, progress=0)
        self.query_one("#log", Log).clear()
        self._log(f"Deploying {checkpoint.name} to {target}")
        self._set_deploying(True)
        self.cancel_flag = threading.Event()
        self.run_deploy(target, checkpoint, name, repo, public, self.cancel_flag)

    def action_cancel(self) -> None:
        if self.deploying and self.cancel_flag is not None:
            self.cancel_flag.set()
            self._log("Cancelling...")

    def action_stop(self) -> None:
        self.stop_local_server()

    @work(thread=True, exclusive=True, exit_on_error=False, group="stop")
    def stop_local_server(self) -> None:
        from turing_tui.serve.deploy import local_status, stop_local

        server = stop_local(self.app.paths)  # type: ignore[attr-defined]
        if server is not None:
            self.post_message(self.DeployProgressed(StepStarted(f"Stopped {server.name} (pid {server.pid})")))
        self.post_message(self.HealthChecked(local_status(self.app.paths)))  # type: ignore[attr-defined]

    def action_try_it(self) -> None:
        endpoint = self.remote_endpoint or self.local_endpoint
        if endpoint is None:
            self.notify("Nothing to ask yet: deploy locally or to Model Zoo first.", severity="warning")
            return
        url, protocol, key = endpoint
        tweet = self.query_one("#tweet", Static)
        tweet.remove_class("failed")
        tweet.update(Text("Asking...", style="dim"))
        self.fetch_tweet(url, protocol, key, self.query_one("#try-prompt", Input).value.strip())

    def action_back(self) -> None:
        go_back = getattr(self.app, "go_back", None)
        if callable(go_back):
            go_back()
        else:
            self.app.pop_screen()

    # -- events ------------------------------------------------------------------------------------
    @on(Button.Pressed, "#deploy")
    def _deploy_pressed(self) -> None:
        self.action_deploy()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#stop")
    def _stop_pressed(self) -> None:
        self.action_stop()

    @on(Button.Pressed, "#try")
    @on(Input.Submitted, "#try-prompt")
    def _try_pressed(self) -> None:
        self.action_try_it()

    @on(Select.Changed, "#target")
    def _target_changed(self, event: Select.Changed) -> None:
        self._show_target_options(str(event.value))

    def on_deploy_screen_surveyed(self, message: Surveyed) -> None:
        select = self.query_one("#checkpoint", Select)
        options = []
        for info in message.checkpoints:
            loss = f", loss {info.eval_loss:.2f}" if info.eval_loss is not None else ""
            options.append((f"{info.name}  ({info.category or '?'}, {info.size_bytes / 1e6:.1f} MB{loss})", str(info.path)))
        select.set_options(options)
        wanted = None
        if self.initial_model:
            wanted = next((path for label, path in options if Path(path).name == self.initial_model or path == self.initial_model), None)
        if wanted or options:
            select.value = wanted or options[0][1]
        if not options:
            self._log(f"No checkpoints in {self.app.paths.models_dir}: train one with `turing-tui train --category vc --from-scratch`.")  # type: ignore[attr-defined]

    def on_deploy_screen_deploy_progressed(self, message: DeployProgressed) -> None:
        event = message.event
        phase = self.query_one("#phase", Static)
        progress = self.query_one("#progress", ProgressBar)
        if isinstance(event, StepStarted):
            self._log(event.message)
            phase.update(Text(event.message))
        elif isinstance(event, FileUploaded):
            first = event.file not in self.upload_sizes
            self.upload_sizes[event.file] = (event.sent, event.total)
            if first:
                self._log(f"Uploading {event.index}/{event.files} {event.file} ({event.total / 1e6:.2f} MB)")
            sent = sum(s for s, _ in self.upload_sizes.values())
            phase.update(Text(f"Uploading {event.file}: {event.sent / 1e6:.2f} / {event.total / 1e6:.2f} MB"))
            if self.upload_total:
                progress.update(progress=min(sent, self.upload_total))
        elif isinstance(event, StateChanged):
            extra = f": {event.description}" if event.description else ""
            self._log(f"{event.state}{extra} after {event.elapsed_s:.0f} s")
            phase.update(f"{event.state}{extra}")
            if event.state == "HEALTHY":
                progress.update(total=1, progress=1)
        elif isinstance(event, Deployed):
            self._log(f"Deployed {event.name} at {event.url}")
            for hint in event.hints:
                self._log(f"  {hint}")

    def on_deploy_screen_deploy_finished(self, message: DeployFinished) -> None:
        self._set_deploying(False)
        progress = self.query_one("#progress", ProgressBar)
        progress.update(total=1, progress=1)
        if message.endpoint is not None and message.target != "local":
            self.remote_endpoint = message.endpoint
        elif message.endpoint is not None:
            self.local_endpoint = message.endpoint
        self.query_one("#phase", Static).update(Text("Done.", style="bold green"))
        self.notify(f"Deployed to {message.target}.", markup=False)
        self.check_health()

    def on_deploy_screen_deploy_failed(self, message: DeployFailed) -> None:
        self._set_deploying(False)
        self._log(f"Failed: {message.text}")
        self.query_one("#phase", Static).update(Text(message.text, style="bold red"))
        self.query_one("#progress", ProgressBar).update(total=1, progress=0)
        self.notify(message.text, severity="error", timeout=8, markup=False)
        self.check_health()

    def on_deploy_screen_health_checked(self, message: HealthChecked) -> None:
        status = message.status
        health = self.query_one("#health", Static)
        health.set_class(status.state == "healthy", "healthy")
        health.set_class(status.state == "unhealthy", "unhealthy")
        server = status.server
        if status.state == "healthy" and server is not None:
            stats = (status.health or {}).get("stats", {})
            health.update(
                Text(
                    f"Local server: healthy — {server.name} at {server.url} (pid {server.pid}, "
                    f"{stats.get('requests', 0)} requests in {stats.get('batches', 0)} batches)"
                )
            )
            self.local_endpoint = (server.url, server.protocol, server.api_key)
        else:
            health.update(Text(f"Local server: {status.state} — {status.detail}"))
            self.local_endpoint = None
        self.query_one("#stop", Button).disabled = server is None or status.state == "stopped"

    def on_deploy_screen_tweet_fetched(self, message: TweetFetched) -> None:
        tweet = self.query_one("#tweet", Static)
        tweet.remove_class("failed")
        tweet.update(Text.assemble((message.text, "bold"), "\n", (f"— {message.source}", "dim")))

    def on_deploy_screen_try_failed(self, message: TryFailed) -> None:
        tweet = self.query_one("#tweet", Static)
        tweet.add_class("failed")
        tweet.update(Text(message.text, style="red"))

    # -- helpers --------------------------------------------------------------------------------------
    def _show_target_options(self, target: str) -> None:
        self.query_one("#zoo-options").set_class(target == "modelzoo", "shown")
        self.query_one("#hf-options").set_class(target == "hf", "shown")

    def _set_deploying(self, running: bool) -> None:
        self.deploying = running
        self.query_one("#deploy", Button).disabled = running
        self.query_one("#cancel", Button).disabled = not running

    def _log(self, line: str) -> None:
        self.query_one("#log", Log).write_line(line)

    @staticmethod
    def _upload_bytes(checkpoint: Path) -> int:
        from turing_tui.serve.modelzoo import checkpoint_files

        try:
            return sum(p.stat().st_size for p in checkpoint_files(checkpoint))
        except (UserError, OSError):
            return 0
