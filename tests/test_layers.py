"""The core never imports Textual: each core module loads in a fresh interpreter without it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import turing_tui

CORE_PACKAGES = ("corpus", "game", "scrape", "model", "backends", "serve", "store")


def core_modules() -> list[str]:
    names = ["turing_tui.paths", "turing_tui.errors", "turing_tui.net", "turing_tui.cli"]
    for info in pkgutil.walk_packages(turing_tui.__path__, "turing_tui."):
        top = info.name.split(".")[1]
        if top in CORE_PACKAGES:
            names.append(info.name)
    return names


def test_core_never_imports_textual() -> None:
    modules = core_modules()
    assert "turing_tui.corpus.twint" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print('LEAKED', bad) if bad else print('CLEAN')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "CLEAN", out


def test_help_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from turing_tui.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'textual', 'httpx') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY []", out
