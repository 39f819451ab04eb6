"""A tweet drawn like a tweet: avatar, name and handle, the body, likes and date.

Until the reveal the author is ``???``: the card looks the same for a person and a model,
so nothing but the words can give the answer away. Every string is shown literally
(``rich.text.Text``, never markup), so a tweet or a name containing ``[bold]`` or
``[link=...]`` appears exactly as typed.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from turing_tui.game.rounds import Round

UNKNOWN = "???"


def _initials(name: str) -> str:
    letters = [part[0] for part in name.replace("_", " ").split() if part and part[0].isalnum()]
    return ("".join(letters[:2]) or "?").upper()


class TweetCard(Vertical):
    """One tweet card; :meth:`show` puts a round on it, :meth:`reveal` unmasks it."""

    DEFAULT_CSS = """
    TweetCard {
        width: 72;
        max-width: 100%;
        height: auto;
        border: round $primary;
        padding: 0 1;
        background: $surface;
    }
    TweetCard #tweet-head { height: 3; }
    TweetCard #tweet-avatar {
        width: 6;
        height: 3;
        content-align: center middle;
        background: $primary-muted;
        color: $text;
        text-style: bold;
        margin-right: 1;
    }
    TweetCard #tweet-who { height: 3; width: 1fr; }
    TweetCard #tweet-name { text-style: bold; }
    TweetCard #tweet-handle { color: $text-muted; }
    TweetCard #tweet-body { margin: 0 0 1 0; height: auto; }
    TweetCard #tweet-meta { color: $text-muted; height: 1; }
    TweetCard #tweet-avatar.machine { background: $error-muted; }
    TweetCard #tweet-avatar.human { background: $success-muted; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal(id="tweet-head"):
            yield Static("?", id="tweet-avatar")
            with Vertical(id="tweet-who"):
                yield Static(UNKNOWN, id="tweet-name")
                yield Static("@" + UNKNOWN, id="tweet-handle")
        yield Static(Text(""), id="tweet-body")
        yield Static(f"♥ {UNKNOWN}  ·  {UNKNOWN}", id="tweet-meta")

    def _set(self, widget_id: str, value: str) -> None:
        # Only the body can change size; the other parts have fixed heights and widths, so
        # they skip the layout pass (a new round then costs one cheap frame).
        self.query_one(f"#{widget_id}", Static).update(Text(value), layout=widget_id == "tweet-body")

    def waiting(self, text: str) -> None:
        """No tweet yet: say what the game is waiting for, in the body."""
        self.query_one("#tweet-body", Static).update(Text(text, style="italic"))

    def show(self, round_: Round) -> None:
        """Put a fresh, masked tweet on the card."""
        # Classes change on the avatar alone: re-styling the whole card costs a frame.
        self.query_one("#tweet-avatar", Static).set_classes("")
        self._set("tweet-avatar", "?")
        self._set("tweet-name", UNKNOWN)
        self._set("tweet-handle", "@" + UNKNOWN)
        self._set("tweet-body", round_.text)
        self._set("tweet-meta", f"♥ {UNKNOWN}  ·  {UNKNOWN}")

    def reveal(self, round_: Round) -> None:
        """Show who really wrote it."""
        self.query_one("#tweet-avatar", Static).set_classes(round_.truth)
        if round_.human is not None:
            tweet = round_.human
            name = tweet.name or tweet.username
            self._set("tweet-avatar", _initials(name))
            self._set("tweet-name", name)
            self._set("tweet-handle", tweet.handle)
            when = " ".join(part for part in (tweet.date, tweet.time[:5]) if part) or "date unknown"
            self._set("tweet-meta", f"♥ {tweet.likes:,}  ·  {when}")
        elif round_.fake is not None:
            fake = round_.fake
            self._set("tweet-avatar", "AI")
            self._set("tweet-name", fake.model)
            self._set("tweet-handle", f"@{fake.source or 'model'}")
            self._set("tweet-meta", "♥ —  ·  generated")
