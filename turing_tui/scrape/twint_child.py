"""Run twint for one handle in its own process: ``python -m turing_tui.scrape.twint_child``.

twint is optional (``pip install 'turing-tui[twint]'``), old (its console script refuses
Python >= 3.10, so we drive its Python API), runs its own asyncio loop, and since Twitter/X
closed the guest endpoints in 2023 it fails or hangs. Keeping it in a child process lets
the parent time it out, kill it, and go on with the other handles. The child writes twint
JSON lines to ``--output`` and, when it fails, one sentence as the last line of stderr
with exit status 3 (twint missing) or 4 (twint failed).
"""

from __future__ import annotations

import argparse
import sys

REFUSED = "Twitter/X refused twint ({detail}); it has shut twint out since 2023, use --backend x with X_BEARER_TOKEN or a bsky:/mastodon: account."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m turing_tui.scrape.twint_child")
    parser.add_argument("--handle", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--since", default=None)
    args = parser.parse_args(argv)
    try:
        import twint  # type: ignore[import-not-found]
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "twint"
        hint = "pip install 'turing-tui[twint]'"
        print(f"twint is not installed ({missing} is missing): {hint}.", file=sys.stderr)
        return 3
    config = twint.Config()
    config.Username = args.handle
    config.Store_json = True
    config.Output = args.output
    config.Hide_output = True
    if args.limit:
        config.Limit = args.limit
    if args.since:
        config.Since = args.since
    try:
        twint.run.Search(config)
    except Exception as exc:  # any failure of twint's is the same news for the user
        detail = f"{type(exc).__name__}: {exc}".strip().rstrip(":")[:200]
        print(REFUSED.format(detail=detail), file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
