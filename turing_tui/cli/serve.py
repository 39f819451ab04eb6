"""``turing-tui serve``: expose a checkpoint over HTTP (Model Zoo predict + OpenAI completions).

Only click loads at import; the model, Starlette and uvicorn load when the command runs.
"""

from __future__ import annotations

import click

from turing_tui.cli._common import CliState, pass_state

EPILOG = """
\b
Examples:
  turing-tui serve --model models/vc            serve a checkpoint on 127.0.0.1:8000
  turing-tui serve --model vc --port 9000       a checkpoint by name under the data root
  turing-tui serve --model vc --host 0.0.0.0 --api-key "$(openssl rand -hex 16)"
\b
Then, from another terminal:
  curl -s localhost:8000/v1/models/vc/predict -d '{"input": ""}'
  curl -s localhost:8000/v1/completions -d '{"prompt": "", "max_tokens": 40}'
  turing-tui play --endpoint http://127.0.0.1:8000 --protocol openai
"""


def resolve_model(state: CliState, model: str) -> str:
    """A checkpoint folder as given, a checkpoint name under the data root, or a hub name."""
    from turing_tui.model.checkpoint import resolve_model_source

    return str(resolve_model_source(state.paths, None, model))


@click.command("serve", epilog=EPILOG)
@click.option("--model", "model", required=True, help="Checkpoint folder, checkpoint name under the data root, or hub name.")
@click.option("--name", default=None, help="Model name in URLs (/v1/models/NAME/predict). Default: the checkpoint's name.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind; anything but loopback needs --api-key.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--api-key", envvar="TURING_TUI_API_KEY", default=None, help="Key clients must send (x-api-key or Bearer). Env: TURING_TUI_API_KEY.")
@click.option("--max-batch", default=32, show_default=True, type=click.IntRange(1, 1024), help="Most sequences in one generate call; 1 turns batching off.")
@click.option("--batch-wait-ms", default=5.0, show_default=True, type=click.FloatRange(0, 1000), help="How long a request waits for others to share its batch.")
@click.option("--max-new-tokens", default=256, show_default=True, type=click.IntRange(1, 4096), help="Cap on tokens one request may ask for.")
@click.option("--threads", default=None, type=click.IntRange(1, 512), help="CPU threads for the model (default: torch's choice); 1 is steadier on a busy shared machine.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@pass_state
def serve(
    state: CliState,
    model: str,
    name: str | None,
    host: str,
    port: int,
    api_key: str | None,
    max_batch: int,
    batch_wait_ms: float,
    max_new_tokens: int,
    threads: int | None,
    log_level: str,
) -> None:
    """Serve a checkpoint over HTTP with the Model Zoo and OpenAI protocols.

    Routes: POST /v1/models/NAME/predict, POST /v1/completions, GET /v1/models,
    GET /v1/models/NAME and GET /health. Concurrent requests are batched into one
    generate call. Binds to 127.0.0.1 unless --host says otherwise.
    """
    import re

    from turing_tui.errors import UserError
    from turing_tui.serve.server import check_exposure, check_port, url_for

    check_exposure(host, api_key)
    check_port(host, port)
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise UserError(f"{name!r} is not a valid model name: use 1-64 letters, digits, '.', '-' or '_'.")

    from turing_tui.cli._common import console
    from turing_tui.serve.app import Limits, create_app
    from turing_tui.serve.batching import BatchPolicy
    from turing_tui.serve.server import load_model, run_foreground

    out = console(stderr=True)
    if threads:
        import torch

        torch.set_num_threads(threads)
    with out.status(f"Loading {model} ..."):
        generator = load_model(resolve_model(state, model))
    app = create_app(
        generator,
        name=name,
        api_key=api_key,
        limits=Limits(max_new_tokens=max_new_tokens),
        policy=BatchPolicy(max_batch=max_batch, max_wait_s=batch_wait_ms / 1000.0),
    )
    served = app.state.server.served.name
    base = url_for(host, port)
    out.print(f"Serving [bold]{served}[/] on {base}  (batching: {'up to ' + str(max_batch) if max_batch > 1 else 'off'}, key: {'required' if api_key else 'none'})")
    out.print(f"  Model Zoo: POST {base}/v1/models/{served}/predict")
    out.print(f"  OpenAI:    POST {base}/v1/completions")
    out.print(f"  Play:      turing-tui play --endpoint {base} --protocol openai")
    run_foreground(app, host=host, port=port, log_level=log_level)


COMMAND = serve
