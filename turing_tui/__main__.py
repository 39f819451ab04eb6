"""Allows ``python -m turing_tui``, the same as the ``turing-tui`` console script."""

from __future__ import annotations

from turing_tui.cli import main

if __name__ == "__main__":
    main()
