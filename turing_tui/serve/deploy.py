"""The local deploy target: ``serve`` as a supervised background process, and its record.

``deploy --target local`` starts ``turing-tui serve`` as a detached child (its own session,
so closing the terminal or the app does not kill it), writes where it listens, its pid and
its key to ``<root>/run/serve.json`` (mode 0600: the key is a secret), and waits until
``/health`` answers. :func:`local_endpoint` reads that record back for the game, which uses
a healthy local server as its default endpoint; ``deploy status`` and ``deploy stop`` read
it too. The key travels to the child in its environment, never on its command line, where
any user could read it with ``ps``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from turing_tui.errors import UserError
from turing_tui.paths import Paths
from turing_tui.serve.events import (
    Deployed,
    OnEvent,
    StateChanged,
    StepStarted,
    check_cancel,
    emit,
)

RUN_FILE = "serve.json"
LOG_FILE = "serve.log"
API_KEY_ENV = "TURING_TUI_API_KEY"


@dataclass(frozen=True)
class LocalServer:
    """The record of a background ``serve`` process."""

    pid: int
    url: str  # base URL, e.g. http://127.0.0.1:8000
    name: str  # the model name in URLs
    model: str  # the checkpoint it serves
    api_key: str | None
    log: str
    started: float
    protocol: str = "openai"

    @property
    def predict_url(self) -> str:
        return f"{self.url}/v1/models/{self.name}/predict"


@dataclass(frozen=True)
class LocalStatus:
    """What ``deploy status`` says about the local server."""

    state: str  # "healthy" | "unhealthy" | "stopped"
    server: LocalServer | None
    health: dict[str, Any] | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        server = asdict(self.server) if self.server else None
        if server is not None:
            server.pop("api_key", None)  # a status report never prints the key
            server["predict_url"] = self.server.predict_url if self.server else None
        return {"state": self.state, "detail": self.detail, "server": server, "health": self.health}


# -- the record --------------------------------------------------------------------------
def run_file(paths: Paths) -> Path:
    return paths.run_dir / RUN_FILE


def read_record(paths: Paths) -> LocalServer | None:
    try:
        data = json.loads(run_file(paths).read_text(encoding="utf-8"))
        return LocalServer(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_record(paths: Paths, server: LocalServer) -> None:
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    target = run_file(paths)
    tmp = target.with_suffix(".tmp")
    # Created 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(server), fh, indent=2)
    os.replace(tmp, target)


def clear_record(paths: Paths) -> None:
    try:
        run_file(paths).unlink()
    except FileNotFoundError:
        pass


# -- health -----------------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def fetch_health(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """``GET url/health`` as a dict, or None when nothing healthy answers."""
    import httpx

    try:
        response = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("status") == "ok" else None


def local_status(paths: Paths, timeout: float = 1.0) -> LocalStatus:
    server = read_record(paths)
    if server is None:
        return LocalStatus("stopped", None, detail="No local server is recorded.")
    if not pid_alive(server.pid):
        return LocalStatus("stopped", server, detail=f"Process {server.pid} is gone (see {server.log}).")
    health = fetch_health(server.url, timeout)
    if health is None:
        return LocalStatus("unhealthy", server, detail=f"Process {server.pid} runs but {server.url}/health does not answer.")
    if health.get("pid") not in (None, server.pid):
        # Something else answers on that port: our process died and the port was reused.
        return LocalStatus("unhealthy", server, health, detail=f"{server.url} is answered by pid {health.get('pid')}, not ours ({server.pid}).")
    return LocalStatus("healthy", server, health, detail=f"Serving {server.name} at {server.url}.")


def local_endpoint(paths: Paths) -> tuple[str, str, str | None] | None:
    """``(url, protocol, api_key)`` of a healthy locally deployed server, else None.

    The game uses it as its default endpoint: ``protocol`` is "openai" and ``url`` the
    server's base URL (``/v1/completions`` lives under it).
    """
    status = local_status(paths, timeout=0.5)
    if status.state != "healthy" or status.server is None:
        return None
    return status.server.url, status.server.protocol, status.server.api_key


def local_api_key(paths: Paths, url: str) -> str | None:
    """The key of the locally deployed server when ``url`` points at it (any path under it).

    Lets ``play --endpoint http://127.0.0.1:PORT`` work without the user copying the random
    key out of ``run/serve.json``.
    """
    server = read_record(paths)
    if server is None:
        return None
    base = server.url.rstrip("/")
    return server.api_key if url.rstrip("/") == base or url.startswith(base + "/") else None


# -- start and stop -------------------------------------------------------------------------
def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    # The last "Error: ..." line is the CLI's one-sentence reason when there is one.
    errors = [line for line in text if line.startswith("Error: ")]
    return errors[-1] if errors else " | ".join(text[-lines:])


def start_local(
    paths: Paths,
    model: str,
    *,
    name: str | None = None,
    port: int | None = None,
    api_key: str | None = None,
    max_batch: int = 32,
    timeout: float = 180.0,
    on_event: OnEvent | None = None,
    cancel: threading.Event | None = None,
    python: str = sys.executable,
) -> LocalServer:
    """Start ``serve`` in the background on 127.0.0.1 and wait until it is healthy."""
    from turing_tui.serve.server import free_port

    current = local_status(paths)
    if current.state == "healthy" and current.server is not None:
        raise UserError(
            f"A local server already runs at {current.server.url} ({current.server.name}): "
            "run `turing-tui deploy stop` first."
        )
    if current.server is not None:
        clear_record(paths)  # a stale record of a dead server
    port = port or free_port()
    key = api_key or secrets.token_urlsafe(24)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    log_path = paths.run_dir / LOG_FILE
    args = [python, "-m", "turing_tui", "--home", str(paths.root), "serve", "--model", model,
            "--host", "127.0.0.1", "--port", str(port), "--max-batch", str(max_batch), "--log-level", "warning"]
    if name:
        args += ["--name", name]
    env = dict(os.environ, **{API_KEY_ENV: key, "PYTHONUNBUFFERED": "1"})
    emit(on_event, StepStarted(f"Starting serve for {model} on 127.0.0.1:{port}"))
    with open(log_path, "ab") as log_fh:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own session: it outlives this terminal
            close_fds=True,
        )
    url = f"http://127.0.0.1:{port}"
    emit(on_event, StepStarted(f"Waiting for {url}/health"))
    started = time.monotonic()
    last_state = ""
    try:
        while True:
            check_cancel(cancel)
            code = process.poll()
            if code is not None:
                tail = _log_tail(log_path)
                raise UserError(f"The server exited with code {code} before it was healthy: {tail or 'see ' + str(log_path)}")
            health = fetch_health(url, timeout=1.0)
            elapsed = time.monotonic() - started
            if health is not None and health.get("pid") == process.pid:
                emit(on_event, StateChanged("HEALTHY", f"serving {health.get('model')}", elapsed))
                break
            if last_state != "STARTING":
                last_state = "STARTING"
                emit(on_event, StateChanged("STARTING", "loading the model", elapsed))
            if elapsed > timeout:
                raise UserError(f"The server did not become healthy within {timeout:.0f} s; see {log_path}.")
            time.sleep(0.25)
    except BaseException:
        _terminate(process.pid)
        raise
    server = LocalServer(
        pid=process.pid,
        url=url,
        name=str(health.get("model")),
        model=model,
        api_key=key,
        log=str(log_path),
        started=time.time(),
    )
    write_record(paths, server)
    emit(
        on_event,
        Deployed(
            target="local",
            name=server.name,
            url=server.url,
            protocol="openai",
            hints=(
                f"turing-tui play --endpoint {server.url} --protocol openai",
                "(plain `turing-tui play` uses it for a category with no local checkpoint)",
                "turing-tui deploy status / turing-tui deploy stop",
            ),
        ),
    )
    return server


def _terminate(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM (uvicorn drains in-flight requests), then SIGKILL after ``timeout``."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise just watch for it to vanish.
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            if not pid_alive(pid):
                return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _looks_like_ours(pid: int) -> bool:
    """Guard against pid reuse: the process must be a turing_tui serve."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return True  # no /proc (macOS): the health check's pid match has to do
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in args and any(b"turing_tui" in a or b"turing-tui" in a for a in args)


def stop_local(paths: Paths, timeout: float = 10.0) -> LocalServer | None:
    """Stop the recorded local server; returns its record, or None if none was running."""
    server = read_record(paths)
    if server is None:
        return None
    if pid_alive(server.pid) and _looks_like_ours(server.pid):
        _terminate(server.pid, timeout)
    clear_record(paths)
    return server
