"""The Model Zoo deploy target, spoken over httpx.

Model Zoo's REST flow is: ``POST models/create`` (names the files, returns one presigned
upload URL per file), ``PUT`` each file to its URL, ``POST models/<name>/start``, then poll
``GET models/<name>`` until its state is HEALTHY or ERROR. The ``modelzoo-client`` package
cannot be a dependency (it pins click 7 and breaks on transformers 5), so this module
speaks the protocol itself, with the shared retry policy of :mod:`turing_tui.net`. The base
URL comes from ``MODELZOO_BASE_API_URL`` and the key from ``MODELZOO_API_KEY``, else from
``~/.modelzoo/config.json``; the hosted service is gone, but any server speaking the
protocol (a self-hosted one, or the fake in the tests) works.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from turing_tui.errors import NetworkError, UserError
from turing_tui.net import USER_AGENT, Backoff, request_with_retry
from turing_tui.serve.events import (
    Deployed,
    FileUploaded,
    OnEvent,
    StateChanged,
    StepStarted,
    check_cancel,
    emit,
)

DEFAULT_BASE_URL = "https://api.modelzoo.dev/v1/"
BASE_URL_ENV = "MODELZOO_BASE_API_URL"
API_KEY_ENV = "MODELZOO_API_KEY"
CONFIG_FILE = Path("~/.modelzoo/config.json")
CHUNK = 256 * 1024  # upload in 256 KiB pieces: ~1,000 progress events for a 250 MB GPT-2
TERMINAL_STATES = ("HEALTHY", "ERROR", "STOPPED")


@dataclass(frozen=True)
class ModelZooConfig:
    base_url: str
    api_key: str | None

    @classmethod
    def from_env(cls, base_url: str | None = None, api_key: str | None = None, config_file: Path | None = None) -> ModelZooConfig:
        """Flags first, then the environment, then ``~/.modelzoo/config.json``."""
        stored: dict[str, Any] = {}
        path = (config_file or CONFIG_FILE).expanduser()
        if path.is_file():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                stored = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                raise UserError(f"{path} is not valid JSON: fix or delete it, or set {API_KEY_ENV}.") from None
        base = (
            base_url
            or os.environ.get(BASE_URL_ENV)
            or stored.get("base_api_url")
            or stored.get(BASE_URL_ENV)
            or DEFAULT_BASE_URL
        )
        key = api_key or os.environ.get(API_KEY_ENV) or stored.get("api_key") or stored.get(API_KEY_ENV)
        if not base.endswith("/"):
            base += "/"
        return cls(base_url=base, api_key=key)


class _FileBody:
    """A file as a re-iterable upload body: a retry re-reads it from the start."""

    def __init__(self, path: Path, on_chunk: Any) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.on_chunk = on_chunk

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        with self.path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
                sent += len(chunk)
                self.on_chunk(sent, self.size)


def checkpoint_files(folder: Path) -> list[Path]:
    """The files that make a checkpoint: everything but hidden files and trainer state."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a checkpoint folder: pass one from `turing-tui models` or models/<name>.")
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.relative_to(folder).parts[0] not in ("trainer", "runs")  # resumable trainer state, logs
        and not p.relative_to(folder).parts[0].startswith("checkpoint-")
        and p.name not in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin")
    )
    if not any(p.name == "config.json" for p in files):
        raise UserError(f"{folder} has no config.json: it is not a saved model; train one with `turing-tui train`.")
    return files


class ModelZooClient:
    """The Model Zoo REST calls; every method raises UserError with one clear sentence."""

    def __init__(self, config: ModelZooConfig, *, client: httpx.Client | None = None, backoff: Backoff = Backoff()) -> None:
        if not config.api_key:
            raise UserError(f"No Model Zoo API key: set {API_KEY_ENV} or put {{\"api_key\": ...}} in {CONFIG_FILE}.")
        self.config = config
        self.backoff = backoff
        self._own = client is None
        self.client = client or httpx.Client(timeout=httpx.Timeout(30.0, read=300.0), headers={"user-agent": USER_AGENT})

    def close(self) -> None:
        if self._own:
            self.client.close()

    def url(self, path: str) -> str:
        return self.config.base_url + path.lstrip("/")

    def predict_url(self, name: str) -> str:
        return self.url(f"models/{name}/predict")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self.url(path)
        headers = {"x-api-key": self.config.api_key or "", "content-type": "application/json"}
        try:
            response = request_with_retry(self.client, method, url, backoff=self.backoff, headers=headers, **kwargs)
        except NetworkError as exc:
            raise NetworkError(f"Model Zoo at {self.config.base_url} did not answer: {exc}") from None
        if response.status_code in (401, 403):
            raise UserError(f"Model Zoo refused the API key (HTTP {response.status_code}): check {API_KEY_ENV}.")
        if response.status_code >= 400:
            raise UserError(f"Model Zoo answered {method} {path} with HTTP {response.status_code}: {_reason(response)}")
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise UserError(f"Model Zoo answered {method} {path} with something that is not JSON.") from None

    def create(self, name: str, files: list[str], *, memory_mb: int, cpu_units: int, documentation: str = "") -> dict[str, str]:
        body = {
            "model_name": name,
            "model_files": files,
            "resources_config": {"memory_mb": memory_mb, "cpu_units": cpu_units},
            "transformers_config": {"pipeline_class": "TextGenerationPipeline"},
            "documentation": documentation,
            "framework": "TRANSFORMERS",
            "demo": False,
        }
        data = self._call("POST", "models/create", content=json.dumps(body))
        urls = data.get("upload_urls") if isinstance(data, dict) else None
        if not isinstance(urls, dict):
            raise UserError("Model Zoo's create answer has no upload_urls; is the base URL a Model Zoo API?")
        missing = [f for f in files if f not in urls]
        if missing:
            raise UserError(f"Model Zoo gave no upload URL for {missing[0]}.")
        return {f: str(urls[f]) for f in files}

    def upload(self, url: str, path: Path, on_chunk: Any) -> None:
        body = _FileBody(path, on_chunk)
        # Presigned URLs are signed without our key and (S3) refuse chunked bodies, so the
        # length goes first and no x-api-key header is sent.
        try:
            response = request_with_retry(
                self.client, "PUT", url, backoff=self.backoff, content=body,
                headers={"content-length": str(body.size), "content-type": "application/octet-stream"},
            )
        except NetworkError as exc:
            raise NetworkError(f"Uploading {path.name} failed: {exc}") from None
        if response.status_code >= 300:
            raise UserError(f"Uploading {path.name} failed with HTTP {response.status_code}: {_reason(response)}")

    def start(self, name: str) -> None:
        self._call("POST", f"models/{name}/start")

    def stop(self, name: str) -> None:
        self._call("POST", f"models/{name}/stop")

    def state(self, name: str) -> tuple[str, str]:
        data = self._call("GET", f"models/{name}")
        state = data.get("state") if isinstance(data, dict) else None
        if not isinstance(state, dict) or "name" not in state:
            raise UserError(f"Model Zoo's answer for {name} has no state.")
        return str(state["name"]).upper(), str(state.get("description") or "")


def _reason(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(data, dict):
        for key in ("message", "error", "detail", "description"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if value:
                return str(value)[:200]
    return response.reason_phrase


def deploy_modelzoo(
    checkpoint: Path,
    name: str,
    *,
    config: ModelZooConfig | None = None,
    memory_mb: int = 2048,
    cpu_units: int = 1024,
    timeout: float = 600.0,
    poll_s: float = 5.0,
    on_event: OnEvent | None = None,
    cancel: threading.Event | None = None,
    client: httpx.Client | None = None,
    backoff: Backoff = Backoff(),
) -> str:
    """Create, upload, start and wait for a Model Zoo model; returns its predict URL."""
    from turing_tui.paths import validate_category

    validate_category(name)  # the same safe alphabet: it goes into URLs
    files = checkpoint_files(checkpoint)
    names = [p.relative_to(checkpoint).as_posix() for p in files]
    zoo = ModelZooClient(config or ModelZooConfig.from_env(), client=client, backoff=backoff)
    try:
        documentation = _documentation(checkpoint, name)
        emit(on_event, StepStarted(f"Creating model {name} at {zoo.config.base_url}"))
        urls = zoo.create(name, names, memory_mb=memory_mb, cpu_units=cpu_units, documentation=documentation)
        for index, (path, rel) in enumerate(zip(files, names), start=1):
            check_cancel(cancel)

            def progress(sent: int, total: int, rel: str = rel, index: int = index) -> None:
                check_cancel(cancel)  # raising inside the body aborts the PUT
                emit(on_event, FileUploaded(rel, sent, total, index, len(files)))

            emit(on_event, FileUploaded(rel, 0, path.stat().st_size, index, len(files)))
            zoo.upload(urls[rel], path, progress)
        check_cancel(cancel)
        emit(on_event, StepStarted(f"Starting {name}"))
        zoo.start(name)
        state = wait_healthy(zoo, name, timeout=timeout, poll_s=poll_s, on_event=on_event, cancel=cancel)
        if state != "HEALTHY":
            raise UserError(f"Model Zoo stopped {name} before it was healthy (state {state}).")
        url = zoo.predict_url(name)
        emit(
            on_event,
            Deployed(
                target="modelzoo",
                name=name,
                url=url,
                protocol="modelzoo",
                hints=(f"turing-tui play --endpoint {url} --protocol modelzoo",),
            ),
        )
        return url
    finally:
        zoo.close()


def wait_healthy(
    zoo: ModelZooClient,
    name: str,
    *,
    timeout: float,
    poll_s: float,
    on_event: OnEvent | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """Poll the model's state until HEALTHY (returned), ERROR (raised) or the timeout (raised)."""
    started = time.monotonic()
    last: tuple[str, str] | None = None
    while True:
        check_cancel(cancel)
        state, description = zoo.state(name)
        elapsed = time.monotonic() - started
        if (state, description) != last:
            emit(on_event, StateChanged(state, description, elapsed))
            last = (state, description)
        if state == "ERROR":
            raise UserError(f"Model Zoo could not start {name}: {description or 'state ERROR'}.")
        if state in TERMINAL_STATES:
            return state
        if elapsed + poll_s > timeout:
            raise UserError(
                f"{name} was not healthy after {timeout:.0f} s (last state {state}); "
                "check it later with `turing-tui deploy status --target modelzoo` or raise --timeout."
            )
        # Sleep in small steps so a cancel is honoured within a fraction of a second.
        wake = time.monotonic() + poll_s
        while time.monotonic() < wake:
            check_cancel(cancel)
            time.sleep(min(0.1, max(0.0, wake - time.monotonic())))


def _documentation(checkpoint: Path, name: str) -> str:
    meta = {}
    for candidate in ("turing-tui.json",):
        path = checkpoint / candidate
        if path.is_file():
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                meta = {}
            break
    category = meta.get("category", name) if isinstance(meta, dict) else name
    base = meta.get("base", "") if isinstance(meta, dict) else ""
    return f"A GPT-2 that writes tweets like the '{category}' accounts (fine-tuned from {base or 'a causal LM'} with turing-tui)."
