"""The one place that turns a data root into paths.

Everything the tool reads or writes lives under one root:

    <root>/sources/<category>.txt   handle lists
    <root>/data/<category>/*.txt    human tweets, twint JSON lines
    <root>/models/<name>/           checkpoints
    <root>/turing-tui.sqlite3       players, rounds, leaderboard, generated-tweet pool
    <root>/run/                     state of background services (deploy local)

The root is ``--home`` if given, else ``$TURING_TUI_HOME``, else the git checkout this
package runs from (so a developer's clone uses its own ``data/`` and ``sources/``), else a
per-user data directory. No other module builds paths by hand.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from turing_tui.errors import UserError

ENV_HOME = "TURING_TUI_HOME"
DB_NAME = "turing-tui.sqlite3"
CATEGORY_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PUBLISHED_CATEGORIES = ("vc", "republicans", "democrats", "covid19")


def validate_category(name: str) -> str:
    """Return ``name`` if it is a safe category name (letters, digits, ``-``, ``_``)."""
    if not isinstance(name, str) or not CATEGORY_RE.match(name):
        raise UserError(
            f"{name!r} is not a valid category name: use 1-64 letters, digits, '-' or '_'."
        )
    return name


def _checkout_root() -> Path | None:
    """The repository top when this package runs from a git checkout of turing-tui."""
    top = Path(__file__).resolve().parent.parent
    if (top / ".git").exists() and (top / "pyproject.toml").is_file():
        return top
    return None


def default_root() -> Path:
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    checkout = _checkout_root()
    if checkout is not None:
        return checkout
    from platformdirs import user_data_dir

    return Path(user_data_dir("turing-tui", appauthor=False))


@dataclass(frozen=True)
class Paths:
    """Paths under one data root. Build it with :meth:`resolve`."""

    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Paths:
        root = Path(home).expanduser() if home else default_root()
        return cls(root=root.resolve())

    # -- folders ---------------------------------------------------------------------
    @property
    def sources_dir(self) -> Path:
        return self.root / "sources"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    # -- per category ----------------------------------------------------------------
    def category_dir(self, category: str) -> Path:
        return self.data_dir / validate_category(category)

    def sources_file(self, category: str) -> Path:
        """The handle list of ``category``: the root's own, else the bundled default."""
        own = self.sources_dir / f"{validate_category(category)}.txt"
        if own.exists():
            return own
        package = Path(__file__).resolve().parent
        # A wheel bundles the published lists in the package; an editable install from a
        # checkout reads them from the checkout's own sources/.
        for bundled in (package / "default_sources" / f"{category}.txt", package.parent / "sources" / f"{category}.txt"):
            if bundled.exists():
                return bundled
        return own

    def own_sources_file(self, category: str) -> Path:
        """Where an edited handle list of ``category`` is saved (never the bundled copy)."""
        return self.sources_dir / f"{validate_category(category)}.txt"

    def scrape_state_file(self, category: str) -> Path:
        """Per-handle resume points of ``scrape``; kept inside the category folder so that
        deleting a category's tweets also forgets how far scraping got (a hidden name, so
        no reader takes it for tweets)."""
        return self.category_dir(category) / ".scrape-state.json"

    def model_dir(self, name: str) -> Path:
        return self.models_dir / validate_category(name)

    def categories(self) -> list[str]:
        """Categories with at least one data file, sorted."""
        if not self.data_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.data_dir.iterdir()
            if p.is_dir() and CATEGORY_RE.match(p.name) and any(p.glob("*.txt"))
        )

    def ensure(self) -> Paths:
        """Create the root's folders (idempotent) and return self."""
        for d in (self.data_dir, self.models_dir, self.sources_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self
