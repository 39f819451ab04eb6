"""The Hugging Face Hub deploy target: push a checkpoint, then serve it at scale with vLLM.

One machine running ``turing-tui serve`` is enough for a few players; for more, the
checkpoint goes to the Hub and an existing engine serves it: ``vllm serve <repo>`` speaks
the OpenAI completions protocol, which the game's OpenAI generator uses. The push is one
commit (weights, config, tokenizer, our metadata and a model card) made with
``huggingface_hub`` (a transformers dependency), which honours ``HF_ENDPOINT`` so a
self-hosted Hub (or the fake one in the tests) works; the token comes from ``HF_TOKEN``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from turing_tui.errors import NetworkError, UserError
from turing_tui.serve.events import Deployed, FileUploaded, OnEvent, StepStarted, check_cancel, emit
from turing_tui.serve.modelzoo import checkpoint_files

DEFAULT_ENDPOINT = "https://huggingface.co"


def hub_endpoint(endpoint: str | None = None) -> str:
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def model_card(checkpoint: Path, repo_id: str) -> str:
    """A README.md for the repo: what the model is, how it was made, how to serve it."""
    try:
        meta = json.loads((checkpoint / "turing-tui.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    category = meta.get("category") or "tweets"
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [turing-tui, gpt2, tweets]",
        "---",
        "",
        f"# {repo_id}",
        "",
        f"A causal language model that writes tweets like the **{category}** accounts, made with "
        "[turing-tui](https://github.com/turing-tui) for the Twitter Turing Test game.",
        "",
        "| | |",
        "|---|---|",
        f"| base | {meta.get('base') or 'unknown'} |",
        f"| training tweets | {meta.get('data_tweets', 'unknown')} |",
        f"| steps | {meta.get('steps', 'unknown')} |",
        f"| validation loss | {meta.get('eval_loss', 'unknown')} |",
        f"| perplexity | {meta.get('perplexity', 'unknown')} |",
        "",
        "Every tweet starts and ends with `<|endoftext|>`; sample from an empty prompt after it.",
        "",
        "## Serve it",
        "",
        "```bash",
        f"vllm serve {repo_id}                       # OpenAI-compatible, at scale",
        "turing-tui play --endpoint http://HOST:8000 --protocol openai",
        f"turing-tui serve --model {repo_id}         # or our own small server",
        "```",
        "",
    ]
    return "\n".join(lines)


def _hub_error(exc: Exception, what: str) -> UserError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return UserError(f"The Hub refused the token while {what} (HTTP {status}): check HF_TOKEN and its write access.")
    if status is not None:
        return UserError(f"The Hub answered HTTP {status} while {what}: {str(exc).splitlines()[0][:200]}")
    return NetworkError(f"The Hub could not be reached while {what} ({type(exc).__name__}); check HF_ENDPOINT or your connection.")


def push_to_hub(
    checkpoint: Path,
    repo: str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool = True,
    on_event: OnEvent | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """Create ``repo`` (if needed) and commit the checkpoint to it; returns the repo URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise UserError("No Hugging Face token: set HF_TOKEN (a token with write access) or pass --token.")
    files = checkpoint_files(checkpoint)
    base = hub_endpoint(endpoint)
    api = HfApi(endpoint=base, token=token)
    try:
        if "/" not in repo:
            emit(on_event, StepStarted(f"Asking {base} who the token belongs to"))
            owner = api.whoami().get("name")
            if not owner:
                raise UserError("The Hub did not say who owns the token: pass --repo OWNER/NAME.")
            repo = f"{owner}/{repo}"
        check_cancel(cancel)
        emit(on_event, StepStarted(f"Creating {'private ' if private else ''}repo {repo} on {base}"))
        url = str(api.create_repo(repo, private=private, exist_ok=True, repo_type="model"))
        check_cancel(cancel)
        operations: list[Any] = [
            CommitOperationAdd(path_in_repo=p.relative_to(checkpoint).as_posix(), path_or_fileobj=str(p)) for p in files
        ]
        if not (checkpoint / "README.md").exists():
            operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=model_card(checkpoint, repo).encode("utf-8")))
        total = sum(p.stat().st_size for p in files)
        emit(on_event, StepStarted(f"Uploading {len(operations)} files ({total / 1e6:.1f} MB) to {repo}"))
        api.create_commit(repo, operations=operations, commit_message=f"Upload {checkpoint.name} with turing-tui", repo_type="model")
        for index, p in enumerate(files, start=1):
            size = p.stat().st_size
            emit(on_event, FileUploaded(p.relative_to(checkpoint).as_posix(), size, size, index, len(files)))
    except UserError:
        raise
    except Exception as exc:
        from huggingface_hub.errors import HfHubHTTPError

        import httpx

        if isinstance(exc, (HfHubHTTPError, httpx.HTTPError, OSError)):
            raise _hub_error(exc, f"pushing to {repo}") from None
        raise
    url = url.rstrip("/") if url.startswith("http") else f"{base}/{repo}"
    emit(
        on_event,
        Deployed(
            target="hf",
            name=repo,
            url=url,
            protocol="hub",
            hints=(
                f"vllm serve {repo}   (on a GPU machine; add --api-key KEY to require a key)",
                "turing-tui play --endpoint http://HOST:8000 --protocol openai",
                f"turing-tui serve --model {repo}   (our own server, one machine)",
            ),
        ),
    )
    return url
