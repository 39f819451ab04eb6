"""``turing-tui deploy``: put a checkpoint behind an endpoint (local, Model Zoo, Hugging Face).

``deploy --target local|modelzoo|hf --model M`` runs one deploy with Rich progress;
``deploy status`` and ``deploy stop`` look after the local server (and a Model Zoo model);
``deploy`` alone opens the Deploy screen. Only click loads at import.
"""

from __future__ import annotations

from typing import Any

import click

from turing_tui.cli._common import CliState, pass_state

EPILOG = """
\b
Examples:
  turing-tui deploy --target local --model vc-tiny       serve in the background, game uses it
  turing-tui deploy status                               is the local server healthy?
  turing-tui deploy stop                                 stop it
  MODELZOO_API_KEY=... turing-tui deploy --target modelzoo --model vc
  HF_TOKEN=... turing-tui deploy --target hf --model vc --repo me/vc-gpt2
  turing-tui deploy                                      open the Deploy screen
"""

TARGETS = ("local", "modelzoo", "hf")


class Progress:
    """Renders deploy events with Rich: one bar per uploaded file, a line per step."""

    def __init__(self, quiet: bool = False) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress as RichProgress, TextColumn, TransferSpeedColumn

        from turing_tui.cli._common import console

        self.console = console(stderr=True)
        self.quiet = quiet
        self.bars = RichProgress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            console=self.console, transient=False, disable=quiet,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> Progress:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, event: Any) -> None:
        from turing_tui.serve.events import Deployed, FileUploaded, StateChanged, StepStarted

        if self.quiet:
            return
        if isinstance(event, StepStarted):
            self.bars.console.print(f"[bold]•[/] {event.message}")
        elif isinstance(event, FileUploaded):
            task = self.tasks.get(event.file)
            if task is None:
                task = self.tasks[event.file] = self.bars.add_task(f"{event.index}/{event.files} {event.file}", total=max(event.total, 1))
            self.bars.update(task, completed=event.sent if event.total else 1)
        elif isinstance(event, StateChanged):
            colour = {"HEALTHY": "green", "ERROR": "red"}.get(event.state, "yellow")
            extra = f": {event.description}" if event.description else ""
            self.bars.console.print(f"  [{colour}]{event.state}[/]{extra}  ({event.elapsed_s:.0f} s)")
        elif isinstance(event, Deployed):
            self.bars.console.print(f"[green]Deployed[/] {event.name} at [bold]{event.url}[/]")
            for hint in event.hints:
                self.bars.console.print(f"  {hint}")


@click.group("deploy", invoke_without_command=True, epilog=EPILOG)
@click.option("--target", type=click.Choice(TARGETS), default=None, help="Where to deploy: local (background serve), modelzoo, or hf (Hugging Face Hub).")
@click.option("--model", default=None, help="Checkpoint folder or name under the data root (default: the newest of --category).")
@click.option("--category", default=None, help="Deploy the newest checkpoint of this category.")
@click.option("--name", default=None, help="Model name in URLs (local, modelzoo). Default: the checkpoint's name.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="local: port on 127.0.0.1 (default: a free one).")
@click.option("--api-key", envvar="TURING_TUI_API_KEY", default=None, help="local: the key clients must send (default: a random one, stored in the data root).")
@click.option("--repo", default=None, help="hf: the repo id OWNER/NAME (NAME alone: the token's owner).")
@click.option("--public", is_flag=True, help="hf: make the repo public (default: private).")
@click.option("--token", default=None, help="hf: a write token (default: $HF_TOKEN).")
@click.option("--base-url", default=None, help="modelzoo: the API base URL (default: $MODELZOO_BASE_API_URL or the hosted one).")
@click.option("--memory-mb", type=click.IntRange(256, 65536), default=2048, show_default=True, help="modelzoo: memory for the container.")
@click.option("--cpu-units", type=click.IntRange(128, 16384), default=1024, show_default=True, help="modelzoo: CPU units (1024 = one core).")
@click.option("--timeout", type=click.FloatRange(1, 7200), default=600.0, show_default=True, help="Seconds to wait for the model to become healthy.")
@click.option("--poll", type=click.FloatRange(0.05, 60), default=5.0, show_default=True, help="modelzoo: seconds between health polls.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no progress).")
@click.pass_context
def deploy(ctx: click.Context, target: str | None, model: str | None, category: str | None, name: str | None, port: int | None,
           api_key: str | None, repo: str | None, public: bool, token: str | None, base_url: str | None, memory_mb: int,
           cpu_units: int, timeout: float, poll: float, as_json: bool) -> None:
    """Deploy a checkpoint: serve it locally in the background, on Model Zoo, or on the Hub.

    local starts `turing-tui serve` as a background process on 127.0.0.1 and makes it the
    game's default endpoint; modelzoo speaks the Model Zoo REST protocol (create, upload,
    start, wait until HEALTHY); hf pushes the checkpoint to the Hugging Face Hub and says how
    to serve it at scale with vLLM.
    """
    if ctx.invoked_subcommand is not None:
        return
    state: CliState = ctx.find_object(CliState)
    if target is None and model is None and category is None:
        from turing_tui.cli._common import run_app

        run_app(state, screen="deploy")
        return
    from pathlib import Path

    from turing_tui.errors import UserError
    from turing_tui.model.checkpoint import resolve_model_source

    target = target or "local"
    source = resolve_model_source(state.paths, category, model)
    with Progress(quiet=as_json) as progress:
        if target == "local":
            from turing_tui.serve.deploy import start_local
            from turing_tui.serve.server import check_exposure

            if api_key is not None:
                check_exposure("127.0.0.1", api_key)
            server = start_local(state.paths, str(source), name=name, port=port, api_key=api_key, timeout=timeout, on_event=progress)
            result = {"target": "local", "name": server.name, "url": server.url, "protocol": "openai",
                      "predict_url": server.predict_url, "pid": server.pid, "log": server.log}
        else:
            folder = Path(source)
            if not folder.is_dir():
                raise UserError(f"{source} is not a local checkpoint folder; {target} deploys upload one from disk.")
            if target == "modelzoo":
                from turing_tui.serve.modelzoo import ModelZooConfig, deploy_modelzoo

                zoo_name = name or _checkpoint_name(folder)
                url = deploy_modelzoo(folder, zoo_name, config=ModelZooConfig.from_env(base_url=base_url), memory_mb=memory_mb,
                                      cpu_units=cpu_units, timeout=timeout, poll_s=poll, on_event=progress)
                result = {"target": "modelzoo", "name": zoo_name, "url": url, "protocol": "modelzoo"}
            else:
                from turing_tui.serve.hub import push_to_hub

                repo_id = repo or name or _checkpoint_name(folder)
                url = push_to_hub(folder, repo_id, token=token, private=not public, on_event=progress)
                result = {"target": "hf", "name": repo_id, "url": url, "protocol": "hub"}
    if as_json:
        from turing_tui.cli._common import print_json

        print_json(result)


def _checkpoint_name(folder: Any) -> str:
    from turing_tui.model.checkpoint import read_metadata

    return str((read_metadata(folder) or {}).get("name") or folder.name)


@deploy.command("status", epilog="\b\nExamples:\n  turing-tui deploy status\n  turing-tui deploy status --json\n  turing-tui deploy status --target modelzoo --name vc")
@click.option("--target", type=click.Choice(("local", "modelzoo")), default="local", show_default=True)
@click.option("--name", default=None, help="modelzoo: the model name to ask about.")
@click.option("--base-url", default=None, help="modelzoo: the API base URL.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_state
def status(state: CliState, target: str, name: str | None, base_url: str | None, as_json: bool) -> None:
    """Say whether the deployed model is up. Exits 1 when it is not healthy."""
    from turing_tui.cli._common import console, print_json

    if target == "modelzoo":
        from turing_tui.errors import UserError
        from turing_tui.serve.modelzoo import ModelZooClient, ModelZooConfig

        if not name:
            raise UserError("Name the Model Zoo model: turing-tui deploy status --target modelzoo --name NAME.")
        zoo = ModelZooClient(ModelZooConfig.from_env(base_url=base_url))
        try:
            zoo_state, description = zoo.state(name)
        finally:
            zoo.close()
        if as_json:
            print_json({"target": "modelzoo", "name": name, "state": zoo_state, "description": description, "url": zoo.predict_url(name)})
        else:
            console().print(f"{name}: {zoo_state}{' - ' + description if description else ''}")
        if zoo_state != "HEALTHY":
            raise SystemExit(1)
        return

    from turing_tui.serve.deploy import local_status

    report = local_status(state.paths)
    if as_json:
        print_json(report.as_dict())
    else:
        out = console()
        colour = {"healthy": "green", "unhealthy": "red"}.get(report.state, "yellow")
        out.print(f"local: [{colour}]{report.state}[/] - {report.detail}")
        if report.server is not None and report.state == "healthy":
            stats = (report.health or {}).get("stats", {})
            out.print(f"  model {report.server.name} ({report.server.model}), pid {report.server.pid}")
            out.print(f"  OpenAI:    {report.server.url}/v1/completions")
            out.print(f"  Model Zoo: {report.server.predict_url}")
            out.print(f"  served {stats.get('requests', 0)} requests in {stats.get('batches', 0)} batches; log {report.server.log}")
    if report.state != "healthy":
        raise SystemExit(1)


@deploy.command("stop", epilog="\b\nExamples:\n  turing-tui deploy stop\n  turing-tui deploy stop --target modelzoo --name vc")
@click.option("--target", type=click.Choice(("local", "modelzoo")), default="local", show_default=True)
@click.option("--name", default=None, help="modelzoo: the model to stop.")
@click.option("--base-url", default=None, help="modelzoo: the API base URL.")
@pass_state
def stop(state: CliState, target: str, name: str | None, base_url: str | None) -> None:
    """Stop the local background server (or a Model Zoo model)."""
    from turing_tui.cli._common import console

    if target == "modelzoo":
        from turing_tui.errors import UserError
        from turing_tui.serve.modelzoo import ModelZooClient, ModelZooConfig

        if not name:
            raise UserError("Name the Model Zoo model: turing-tui deploy stop --target modelzoo --name NAME.")
        zoo = ModelZooClient(ModelZooConfig.from_env(base_url=base_url))
        try:
            zoo.stop(name)
        finally:
            zoo.close()
        console().print(f"Asked Model Zoo to stop {name}.")
        return

    from turing_tui.serve.deploy import stop_local

    server = stop_local(state.paths)
    if server is None:
        console().print("No local server is running.")
    else:
        console().print(f"Stopped {server.name} (pid {server.pid}) at {server.url}.")


COMMAND = deploy
