"""turing-tui: a terminal Turing test for tweets, and the workbench that makes it.

The package is split into a headless core (corpus, scrape, model, backends, serve, store,
game) and a thin Textual shell (``turing_tui.ui``). Nothing outside ``ui`` imports Textual.
"""

from __future__ import annotations

__version__ = "0.1.0"
