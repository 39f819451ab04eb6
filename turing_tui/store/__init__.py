"""SQLite persistence: players, rounds, leaderboard and the generated-tweet pool."""

from __future__ import annotations

from turing_tui.store.db import Store

__all__ = ["Store"]
