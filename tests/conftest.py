"""Shared fixtures: a temporary data root, invented tweets in twint format, ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from turing_tui.corpus.tweet import HumanTweet
from turing_tui.paths import Paths

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """A fresh, empty data root; TURING_TUI_HOME points at it for subprocesses too."""
    root = tmp_path / "home"
    monkeypatch.setenv("TURING_TUI_HOME", str(root))
    return Paths.resolve(root).ensure()


def make_tweet(i: int, text: str | None = None, username: str = "alice", **kw: object) -> HumanTweet:
    """An invented tweet, as twint would store it."""
    tid = str(1_300_000_000_000_000_000 + i)
    return HumanTweet(
        id=tid,
        username=username,
        name=username.title(),
        text=text if text is not None else f"Invented tweet number {i} about startups and coffee",
        date="2020-06-01",
        time="12:00:00",
        created_at=1590969600000 + i * 1000,
        likes=i,
        link=f"https://twitter.com/{username}/status/{tid}",
        reply_to=(username,),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def shared_tweets() -> Path:
    """../shared/tweets, or skip when this clone has no ../shared beside it."""
    folder = SHARED / "tweets"
    if not folder.is_dir():
        pytest.skip("../shared/tweets is absent (only present beside the development checkout)")
    return folder


# -- tiny models (owned by the model helper) -------------------------------------------------
_SUBJECTS = ("Founders", "Investors", "Great teams", "Most startups", "Seed rounds", "Good products",
             "Remote teams", "Early customers", "Board meetings", "Pitch decks")  # fmt: skip
_VERBS = ("should focus on", "always underestimate", "rarely talk about", "need more", "win by ignoring",
          "are built on")  # fmt: skip
_OBJECTS = ("distribution", "hiring slowly", "talking to users", "pricing power", "boring markets",
            "the next ten customers", "coffee and long walks", "writing things down")  # fmt: skip


def invented_tweet_texts(count: int = 50) -> list[str]:
    """``count`` distinct, tweet-like sentences (deterministic, no real data)."""
    texts = []
    for i in range(count):
        s, v, o = _SUBJECTS[i % len(_SUBJECTS)], _VERBS[(i // 3) % len(_VERBS)], _OBJECTS[(i * 7) % len(_OBJECTS)]
        texts.append(f"{s} {v} {o}. Lesson #{i} from this week.")
    return texts


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny GPT-2 checkpoint (category "vc") trained 30 steps on 50 invented tweets.

    Session-scoped and shared: copy it (shutil.copytree) before changing anything in it.
    """
    from tests.tinymodel import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("models"), invented_tweet_texts(50), train_steps=30)
