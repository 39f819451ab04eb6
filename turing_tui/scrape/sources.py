"""Read a category's handle list: which accounts to scrape, and with which backend.

A handle list is plain text, one account a line, ``#`` starting a comment. A line may name
its backend with a prefix — ``bsky:name.bsky.social``, ``mastodon:user@instance``,
``x:handle``, ``twint:handle`` — so one list can mix networks. A bare line is a Twitter
handle (that is what the published lists hold, and what twint and the X API take): it
goes to the backend the user picked with ``--backend``, else to the X API. Picking
``bluesky`` for bare names reads them as Bluesky handles (``name`` -> ``name.bsky.social``),
which may be a different person than the Twitter account of that name: the list is the
user's to check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from turing_tui.errors import UserError

BACKENDS = ("bluesky", "mastodon", "x", "twint")
DEFAULT_BARE_BACKEND = "x"  # bare lines are Twitter handles (see module docstring)

# Prefixes a line may carry, and the backend each names.
PREFIXES = {
    "bsky": "bluesky",
    "bluesky": "bluesky",
    "mastodon": "mastodon",
    "masto": "mastodon",
    "x": "x",
    "twitter": "x",
    "twint": "twint",
}

_TWITTER_HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_BSKY_HANDLE = re.compile(r"^(did:[a-z]+:[A-Za-z0-9._:%-]+|[A-Za-z0-9][A-Za-z0-9.-]{0,252})$")
_MASTODON_ACCT = re.compile(r"^[A-Za-z0-9_.-]+(@[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?)?$")


@dataclass(frozen=True, order=True)
class Source:
    """One account to scrape: the backend and the handle that backend understands."""

    backend: str
    handle: str

    @property
    def key(self) -> str:
        """Stable identity in the resume state (handles are case-insensitive everywhere)."""
        return f"{self.backend}:{self.handle.lower()}"

    def __str__(self) -> str:
        return self.key if self.backend != "x" else f"x:@{self.handle}"

    @property
    def label(self) -> str:
        """Short, unambiguous name for a table row: Bluesky and Mastodon handles show
        their network by their shape; Twitter handles say which way they are read."""
        if self.backend == "bluesky":
            return self.handle
        if self.backend == "mastodon":
            return "@" + self.handle
        return f"{self.backend}:@{self.handle}"


def normalize_handle(backend: str, handle: str) -> str:
    """The handle as ``backend`` wants it, or a ValueError naming what is wrong."""
    handle = handle.strip()
    if backend in ("x", "twint"):
        handle = handle.removeprefix("@")
        if not _TWITTER_HANDLE.match(handle):
            raise ValueError(f"'{handle}' is not a Twitter handle (1-15 letters, digits or '_')")
        return handle
    if backend == "bluesky":
        handle = handle.removeprefix("@")
        if not handle.startswith("did:") and "." not in handle:
            handle += ".bsky.social"
        if not _BSKY_HANDLE.match(handle):
            raise ValueError(f"'{handle}' is not a Bluesky handle (like name.bsky.social)")
        return handle.lower() if not handle.startswith("did:") else handle
    if backend == "mastodon":
        handle = handle.removeprefix("@")
        if not _MASTODON_ACCT.match(handle):
            raise ValueError(f"'{handle}' is not a Mastodon account (like user@mastodon.social)")
        return handle
    raise ValueError(f"unknown backend '{backend}' (use one of {', '.join(BACKENDS)})")


def parse_line(line: str, default_backend: str = DEFAULT_BARE_BACKEND) -> Source | None:
    """One line of a handle list as a :class:`Source`, None for blanks and comments."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    backend = default_backend
    prefix, sep, rest = text.partition(":")
    if sep and prefix.lower() in PREFIXES:
        backend, text = PREFIXES[prefix.lower()], rest.strip()
    elif sep and not text.startswith("did:"):
        raise ValueError(f"unknown prefix '{prefix}:' (use bsky:, mastodon:, x: or twint:)")
    return Source(backend, normalize_handle(backend, text))


def parse_sources(text: str, *, default_backend: str = DEFAULT_BARE_BACKEND, origin: str = "handle list") -> list[Source]:
    """Every source of a handle list, in order, each once; a bad line is a UserError."""
    if default_backend not in BACKENDS:
        raise UserError(f"Unknown backend '{default_backend}': use one of {', '.join(BACKENDS)}.")
    sources: list[Source] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            source = parse_line(line, default_backend)
        except ValueError as exc:
            raise UserError(f"{origin}, line {number}: {exc}; fix or remove that line.") from None
        if source is not None and source.key not in seen:
            seen.add(source.key)
            sources.append(source)
    return sources


def read_sources(path: Path, *, default_backend: str = DEFAULT_BARE_BACKEND) -> list[Source]:
    """Read a handle list file; a missing or empty list is a UserError saying what to do."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(
            f"There is no handle list at {path}: create it with one account a line "
            "(e.g. bsky:name.bsky.social) or pass --sources FILE."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"The handle list {path} could not be read ({exc}).") from None
    sources = parse_sources(text, default_backend=default_backend, origin=str(path))
    if not sources:
        raise UserError(f"The handle list {path} names no accounts: add one account a line.")
    return sources
