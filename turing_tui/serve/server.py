"""Running the serving app: exposure rules, model loading, uvicorn in the foreground or a thread.

``turing-tui serve`` runs uvicorn in the foreground; tests, the benchmark and the Deploy
screen's "try it" need the same server on a background thread with a free port. Both go
through here, so the rule "loopback unless told otherwise, and then a key is required"
lives in one place.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any

from turing_tui.errors import UserError

API_KEY_ENV = "TURING_TUI_API_KEY"


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse to bind beyond loopback without a key: anyone on the network could use the model."""
    if not is_loopback(host) and not api_key:
        raise UserError(
            f"Serving on {host} exposes the model to the network: pass --api-key KEY "
            f"(or set {API_KEY_ENV}), or bind to 127.0.0.1."
        )
    if api_key is not None and len(api_key) < 8:
        raise UserError("The API key is too short: use at least 8 characters (e.g. `openssl rand -hex 16`).")


def tune_for_serving(generator: Any) -> Any:
    """Process-wide settings that keep batched generation fast on a GPU; returns ``generator``.

    A server sees a new batch size (1..max_batch) and a new key length every decoding step.
    PyTorch's cuDNN attention builds an execution plan per new shape: measured on an H100
    with a from-scratch GPT-2, 32 new tokens took ~1,500 ms for each unseen batch size
    against ~86 ms with cuDNN attention off (the flash / memory-efficient kernels need no
    plan). So the serving process turns it off.
    """
    if str(getattr(generator, "device", "cpu")).startswith("cuda"):
        import torch

        torch.backends.cuda.enable_cudnn_sdp(False)
    return generator


def load_model(model: str) -> Any:
    """Load a checkpoint directory or hub name as a ``TextGenerator``; one sentence on failure."""
    from turing_tui.model.generate import TextGenerator

    try:
        return tune_for_serving(TextGenerator.load(model))
    except UserError:
        raise
    except (OSError, ValueError) as exc:
        raise UserError(f"Could not load the model {model!r}: {exc}. Pass a checkpoint folder (see `turing-tui models`).") from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (another process may still take it before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_port(host: str, port: int) -> None:
    """Fail fast, before a model loads, when ``host:port`` cannot be bound."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind((host.strip("[]"), port))
        except OSError as exc:
            raise UserError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --port.") from None


def url_for(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def run_foreground(app: Any, *, host: str, port: int, log_level: str = "info", access_log: bool = True) -> None:
    """Serve until Ctrl-C (uvicorn handles the signals and drains in-flight requests)."""
    import uvicorn

    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log, server_header=False, timeout_graceful_shutdown=10)
    except OSError as exc:
        raise UserError(f"Could not listen on {host}:{port}: {exc.strerror or exc}. Pick another --port.") from exc


class BackgroundServer:
    """uvicorn on a daemon thread, on a free port; a context manager for tests and tools.

    >>> with BackgroundServer(app) as server:
    ...     httpx.get(server.url + "/health")
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self.config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, server_header=False, lifespan="on")
        self.server = uvicorn.Server(self.config)
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return url_for(self.host, self.port)

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread = threading.Thread(target=self.server.run, name="turing-tui-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise UserError(f"The server on {self.host}:{self.port} failed to start.")
            if time.monotonic() > deadline:
                raise UserError(f"The server on {self.host}:{self.port} did not start within {timeout:.0f} s.")
            time.sleep(0.01)
        # With port 0 the OS picked one: read it back from the listening socket.
        for srv in self.server.servers:
            for sock in srv.sockets:
                self.port = int(sock.getsockname()[1])
                break
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
