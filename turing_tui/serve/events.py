"""Progress events of a deployment, shared by every target.

A deploy is long work (uploading hundreds of megabytes, waiting for a container to come
up), so each target takes an ``on_event`` callback and a ``cancel`` flag. The CLI renders
these events with Rich, the Deploy screen turns them into Textual messages: one
implementation, two faces. The events are small frozen dataclasses named for what happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from turing_tui.errors import UserError


@dataclass(frozen=True)
class StepStarted:
    """A phase began: "Creating model vc", "Starting", "Waiting for health"."""

    message: str


@dataclass(frozen=True)
class FileUploaded:
    """Bytes of one file went out. ``sent == total`` marks the file done."""

    file: str
    sent: int
    total: int
    index: int  # 1-based position among ``files``
    files: int


@dataclass(frozen=True)
class StateChanged:
    """The remote (or local) server reported a state: STARTING, HEALTHY, ERROR, ..."""

    state: str
    description: str = ""
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Deployed:
    """Done: where the model answers and how to use it."""

    target: str  # "local" | "modelzoo" | "hf"
    name: str
    url: str  # the predict URL, the base URL of the server, or the Hub repo URL
    protocol: str  # "modelzoo" | "openai" | "hub"
    hints: tuple[str, ...] = field(default_factory=tuple)  # commands to try next


DeployEvent = StepStarted | FileUploaded | StateChanged | Deployed
OnEvent = Callable[[DeployEvent], None]


class DeployCancelled(UserError):
    """The user stopped the deployment; nothing half-made is left running by us."""

    exit_code = 130


def emit(on_event: OnEvent | None, event: DeployEvent) -> None:
    if on_event is not None:
        on_event(event)


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise DeployCancelled("The deployment was cancelled.")
