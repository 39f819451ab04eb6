"""Errors a user can cause, carried up to the CLI and UI as one clear sentence.

Core code raises :class:`UserError` (or a subclass) for anything the user can fix — a bad
file, an unknown category, an unreachable endpoint. The CLI prints the message and exits
with ``exit_code``; the UI shows it in a notification. Everything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; ``str(error)`` is the sentence shown to them."""

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UnknownCategory(UserError):
    """A category with no data (and no way to get it named)."""


class NetworkError(UserError):
    """A remote endpoint could not be reached or kept failing after retries."""

    exit_code = 3

    def __init__(self, message: str, *, exit_code: int | None = None, reason: str = "") -> None:
        super().__init__(message, exit_code=exit_code)
        # The last failure in short ("HTTP 503", "ConnectError"), for callers that word
        # their own sentence (e.g. "Could not connect to HOST").
        self.reason = reason
