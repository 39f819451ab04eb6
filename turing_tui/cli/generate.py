"""``turing-tui generate``: write fake tweets with a trained model, or fill the game's pool.

Prints one tweet per line (newlines escaped as ``\\n``) or JSON lines with ``--json``.
Samples are batched, cut at end-of-tweet and filtered (empty, too long, links, loops,
repeats, and copies of the category's training tweets); the rejection counts go to
stderr. ``--to-pool`` stores the tweets in the game's pool instead.
"""

from __future__ import annotations

import click

from turing_tui.cli._common import CliState, pass_state

EXAMPLES = """
\b
Examples:
  turing-tui generate --category vc                   20 tweets from the newest vc model
  turing-tui generate -c vc -n 5 --temperature 0.7 --seed 1
  turing-tui generate --model models/vc-scratch-20260101-120000 --json
  turing-tui generate -c vc -n 200 --to-pool          pre-fill the game's pool
"""


@click.command("generate", epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--category", "-c", help="Category: picks its newest model and its tweets for the copy check.")
@click.option("-n", "count", type=click.IntRange(1, 100_000), default=20, show_default=True, help="How many tweets.")
@click.option("--model", "-m", help="Checkpoint folder, a name under models/, or a hub name [newest of the category].")
@click.option("--temperature", type=click.FloatRange(min=0), help="Sampling temperature, 0 = greedy [model's default, 0.9].")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), help="Nucleus sampling mass [0.95].")
@click.option("--top-k", type=click.IntRange(min=0), help="Sample among the k likeliest tokens, 0 = off [50].")
@click.option("--max-new-tokens", type=click.IntRange(1, 1024), help="Longest tweet in tokens [60].")
@click.option("--seed", type=int, help="Make the output reproducible.")
@click.option("--batch-size", type=click.IntRange(1, 64), default=32, show_default=True, help="Tweets sampled per model call.")
@click.option("--device", help="cpu, cuda, cuda:1, mps [the GPU when present].")
@click.option("--to-pool", is_flag=True, help="Store the tweets in the game's pool instead of printing them.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: text, model, base, sampling.")
@pass_state
def generate_command(state: CliState, category: str | None, count: int, model: str | None, temperature: float | None, top_p: float | None,
                     top_k: int | None, max_new_tokens: int | None, seed: int | None, batch_size: int, device: str | None,
                     to_pool: bool, as_json: bool) -> None:  # fmt: skip
    """Generate fake tweets with a trained model."""
    import sys
    from dataclasses import replace

    import orjson

    from turing_tui.errors import UserError
    from turing_tui.model.checkpoint import resolve_model_source
    from turing_tui.model.generate import LocalGenerator, TextGenerator
    from turing_tui.paths import validate_category

    if category is not None:
        validate_category(category)
    source = resolve_model_source(state.paths, category, model)
    text_generator = TextGenerator.load(source, device=device)
    category = category or str(text_generator.metadata.get("category") or "")
    if not category:
        raise UserError("This model does not say which category it was trained on; give --category.")
    validate_category(category)
    sampling = text_generator.default_sampling
    overrides = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "max_new_tokens": max_new_tokens, "seed": seed}
    sampling = replace(sampling, **{k: v for k, v in overrides.items() if v is not None}).validate()

    training_texts = _training_texts(state, category)
    generator = LocalGenerator(text_generator, category=category, sampling=sampling, training_texts=training_texts, batch_size=batch_size)
    if to_pool:
        from turing_tui.model.generate import fill_pool
        from turing_tui.store.db import Store

        with Store(state.paths.db_path) as store:
            report = fill_pool(store, category, generator, count, on_event=lambda e: click.echo(f"pool: {e.added}/{e.target}", err=True))
            pooled = store.pool_size(category, generator.model_id)
        if as_json:
            sys.stdout.write(orjson.dumps({**report.as_dict(), "pool_unshown": pooled}).decode() + "\n")
        else:
            click.echo(
                f"Added {report.added} tweets from {report.model} to the {category} pool "
                f"({pooled} unshown) in {report.seconds:.1f}s; {generator.filter.summary()}"
            )
        return

    made = 0
    while made < count:
        tweets = generator.generate(min(count - made, 256))
        for tweet in tweets:
            if as_json:
                line = orjson.dumps({"text": tweet.text, "model": tweet.model, "base": tweet.base, "category": category, "sampling": tweet.sampling})
                sys.stdout.write(line.decode() + "\n")
            else:
                sys.stdout.write(tweet.text.replace("\\", "\\\\").replace("\n", "\\n") + "\n")
        sys.stdout.flush()
        made += len(tweets)
    click.echo(f"{made} tweets from {generator.model_id}; {generator.filter.summary()}", err=True)


def _training_texts(state: CliState, category: str) -> list[str] | None:
    """The category's human tweets for the copy check; None (with a warning) when absent."""
    from turing_tui.corpus.load import load_category
    from turing_tui.errors import UserError

    try:
        corpus = load_category(state.paths, category)
    except UserError:
        click.echo(f"Warning: no '{category}' tweets in {state.paths.data_dir}: copies of training tweets cannot be caught.", err=True)
        return None
    return [t.text for t in corpus.tweets]


COMMAND = generate_command
