"""Real (tiny) training runs: checkpoint and metadata, cancel and resume, and the CLI faces."""

from __future__ import annotations

import math
import socket
import threading
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import invented_tweet_texts, make_tweet
from turing_tui.cli import cli
from turing_tui.corpus.twint import write_jsonl
from turing_tui.errors import UserError
from turing_tui.model.checkpoint import METADATA_FILE, TRAINER_DIR, list_checkpoints, write_metadata
from turing_tui.model.generate import TextGenerator
from turing_tui.model.scratch import ScratchShape
from turing_tui.model.train import EvalDone, TrainConfig, TrainFinished, TrainProgress, TrainStarted, evaluation_interval, fine_tune_epochs, schedule_text, train
from turing_tui.paths import Paths

pytestmark = pytest.mark.slow


def tiny_config(**overrides: object) -> TrainConfig:
    base = dict(
        category="vc", from_scratch=True, vocab_size=400, shape=ScratchShape(2, 64, 2, 64), block_size=64,
        batch_size=8, max_steps=16, eval_every=4, heldout_fraction=0.1, samples_per_eval=2,
    )  # fmt: skip
    base.update(overrides)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def vc_paths(paths: Paths) -> Paths:
    tweets = [make_tweet(i, t) for i, t in enumerate(invented_tweet_texts(60))]
    tweets.append(make_tweet(900, "See https://example.com for the deck, thanks everyone"))  # filtered: link
    write_jsonl(paths.category_dir("vc") / "000.txt", tweets)
    return paths


def test_train_from_scratch_saves_a_complete_checkpoint(vc_paths: Paths) -> None:
    events: list[object] = []
    result = train(vc_paths, tiny_config(name="vc-first"), on_event=events.append)
    folder = vc_paths.model_dir("vc-first")
    assert result.status == "complete" and result.checkpoint.path == folder.resolve()
    assert result.steps == 16
    assert not (folder / TRAINER_DIR).exists()  # finished: optimizer states are dropped
    meta = orjson.loads((folder / METADATA_FILE).read_bytes())
    assert meta["base"] == "scratch" and meta["category"] == "vc" and meta["status"] == "complete"
    assert meta["data_tweets"] + meta["heldout_tweets"] == 60 and meta["heldout_tweets"] >= 1
    assert meta["filter"]["dropped"]["link"] == 1
    assert math.isfinite(meta["eval_loss"]) and meta["perplexity"] == pytest.approx(math.exp(meta["eval_loss"]))
    assert meta["steps"] == 16 and meta["wall_seconds"] > 0 and meta["hardware"]["device"] == "cpu"
    assert meta["config"]["block_size"] == 64 and len(meta["data_fingerprint"]) == 20
    started = next(e for e in events if isinstance(e, TrainStarted))
    assert started.total_steps == 16 and started.device == "cpu"
    assert (started.batch_size, started.eval_every, started.epochs, started.lr) == (8, 4, 0.0, 1e-3)  # --max-steps: no epoch bound
    progress = [e for e in events if isinstance(e, TrainProgress)]
    assert progress and progress[-1].step == 16 and progress[-1].tokens_per_s > 0
    evals = [e for e in events if isinstance(e, EvalDone)]
    assert [e.step for e in evals] == [4, 8, 12, 16] and len(evals[0].samples) == 2
    assert evals[-1].eval_loss < evals[0].eval_loss  # it learns
    finished = events[-1]
    assert isinstance(finished, TrainFinished) and finished.eval_loss == pytest.approx(meta["eval_loss"])
    # The best checkpoint was kept: the exported loss is the best one seen.
    assert meta["eval_loss"] == pytest.approx(min(e.eval_loss for e in evals), rel=1e-4)
    generator = TextGenerator.load(folder)
    assert len(generator.complete([""], generator.default_sampling, n=2)[0]) == 2
    # The token cache from this run is reused by the next one on the same data.
    again = train(vc_paths, tiny_config(name="vc-second", max_steps=4), on_event=None)
    assert again.checkpoint.metadata["token_cache_hit"] is True
    with pytest.raises(UserError, match="already holds a model"):
        train(vc_paths, tiny_config(name="vc-first"))


def test_cancel_saves_a_checkpoint_and_resume_finishes_the_run(vc_paths: Paths) -> None:
    stop = threading.Event()

    def on_event(event: object) -> None:
        if isinstance(event, TrainProgress) and event.step >= 6:
            stop.set()

    cancelled = train(vc_paths, tiny_config(name="vc-run"), on_event=on_event, stop=stop)
    folder = vc_paths.model_dir("vc-run")
    assert cancelled.status == "cancelled" and 6 <= cancelled.steps < 16
    assert cancelled.checkpoint.resumable and (folder / "model.safetensors").is_file()
    assert list_checkpoints(vc_paths, "vc")[0].status == "cancelled"
    events: list[object] = []
    resumed = train(vc_paths, TrainConfig(category="vc"), resume=True, on_event=events.append)
    assert resumed.status == "complete" and resumed.steps == 16
    assert resumed.checkpoint.path == folder.resolve()
    started = next(e for e in events if isinstance(e, TrainStarted))
    assert started.resumed_from_step == cancelled.steps
    first_step = next(e for e in events if isinstance(e, TrainProgress)).step
    assert first_step > cancelled.steps  # it went on, it did not start over
    meta = resumed.checkpoint.metadata
    assert meta["status"] == "complete" and meta["wall_seconds"] > cancelled.wall_s * 0.5
    with pytest.raises(UserError, match="resume"):
        train(vc_paths, TrainConfig(category="vc"), resume=True)


def test_time_limit_stops_and_keeps_the_run_resumable(vc_paths: Paths) -> None:
    events: list[object] = []
    result = train(vc_paths, tiny_config(name="vc-timed", max_steps=2000, max_minutes=0.0001), on_event=events.append)
    assert result.status == "stopped" and result.steps < 2000 and result.checkpoint.resumable
    evaluated = [e.step for e in events if isinstance(e, EvalDone)]
    assert evaluated[-1] == result.steps and result.eval_loss is not None  # the weights it stopped with were measured


def test_the_last_step_is_always_evaluated(vc_paths: Paths) -> None:
    events: list[object] = []
    result = train(vc_paths, tiny_config(name="vc-last", max_steps=6, eval_every=4, samples_per_eval=0), on_event=events.append)
    assert [e.step for e in events if isinstance(e, EvalDone)] == [4, 6]
    assert result.checkpoint.metadata["best_step"] in (4, 6)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_exit_codes_and_messages(vc_paths: Paths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    runner = CliRunner()
    home = ["--home", str(vc_paths.root)]
    offline = runner.invoke(cli, [*home, "train", "-c", "vc", "--base", "gpt2"])
    assert offline.exit_code == 2 and "--from-scratch" in offline.output and "Traceback" not in offline.output
    missing = runner.invoke(cli, [*home, "train", "-c", "covid19", "--from-scratch"])
    assert missing.exit_code != 0 and "data fetch covid19" in missing.output
    bad = runner.invoke(cli, [*home, "train", "-c", "vc", "--batch-size", "0"])
    assert bad.exit_code == 2
    nothing = runner.invoke(cli, [*home, "generate", "-c", "vc"])
    assert nothing.exit_code == 2 and "turing-tui train --category vc" in nothing.output
    resume = runner.invoke(cli, [*home, "train", "-c", "vc", "--resume"])
    assert resume.exit_code == 2 and "resume" in resume.output
    empty = runner.invoke(cli, [*home, "models", "--json"])
    assert empty.exit_code == 0 and orjson.loads(empty.output) == []


def test_cli_train_json_then_models_and_generate(vc_paths: Paths) -> None:
    runner = CliRunner()
    home = ["--home", str(vc_paths.root)]
    args = ["train", "-c", "vc", "--from-scratch", "--max-steps", "8", "--eval-every", "4", "--block-size", "64",
            "--batch-size", "8", "--layers", "2", "--width", "64", "--heads", "2", "--vocab-size", "400",
            "--name", "vc-cli", "--json"]  # fmt: skip
    result = runner.invoke(cli, [*home, *args])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    kinds = [line["event"] for line in lines]
    assert kinds[-1] == "TrainFinished" and "TrainStarted" in kinds and kinds.count("EvalDone") == 2
    assert lines[-1]["status"] == "complete" and lines[-1]["path"].endswith("vc-cli")
    started = next(line for line in lines if line["event"] == "TrainStarted")
    assert schedule_text(started["total_steps"], started["batch_size"], started["epochs"], started["lr"], started["eval_every"]) == (
        "Schedule: 8 steps of 8 blocks, learning rate 0.001 decaying linearly, evaluated every 4 steps."
    )
    assert "(up to 1 epoch)" in schedule_text(676, 16, 1.0, 1e-3, 99) and "(up to 2 epochs)" in schedule_text(258, 4, 2.0, 3e-3, 102)
    listed = orjson.loads(runner.invoke(cli, [*home, "models", "--json"]).output)
    assert [m["name"] for m in listed] == ["vc-cli"] and listed[0]["base"] == "scratch"
    table = runner.invoke(cli, [*home, "models"])
    assert table.exit_code == 0 and "vc-cli" in table.output
    made = runner.invoke(cli, [*home, "generate", "-c", "vc", "-n", "4", "--seed", "1", "--json"])
    assert made.exit_code == 0, made.output
    tweets = [orjson.loads(line) for line in made.stdout.splitlines()]
    assert len(tweets) == 4 and all(t["model"] == "vc-cli" and t["sampling"]["seed"] == 1 for t in tweets)
    assert "samples judged" in made.stderr
    plain = runner.invoke(cli, [*home, "generate", "-c", "vc", "-n", "3", "--seed", "1"])
    assert plain.exit_code == 0 and len(plain.stdout.splitlines()) == 3
    pooled = runner.invoke(cli, [*home, "generate", "-c", "vc", "-n", "5", "--to-pool", "--json"])
    assert pooled.exit_code == 0, pooled.output
    report = orjson.loads(pooled.stdout)
    assert report["added"] == 5 and report["pool_unshown"] == 5


def test_defaults_depend_on_the_kind_of_run(tiny_checkpoint: Path, tmp_path: Path) -> None:
    scratch = TrainConfig(category="vc", from_scratch=True)
    assert scratch.resolved(gpu=False).lr == 1e-3 and scratch.resolved(gpu=False).max_minutes == 13.0
    assert scratch.resolved(gpu=False).epochs == 1.0 and scratch.resolved(gpu=True).max_minutes is None
    assert TrainConfig(category="vc", base="gpt2").resolved(gpu=False).lr == 5e-5
    assert TrainConfig(category="vc", base=str(tiny_checkpoint)).resolved(gpu=False).lr == 3e-3  # 64 wide: the cap
    wide = tmp_path / "wide"
    write_metadata(wide, {"base": "scratch", "shape": {"n_layer": 4, "n_embd": 256}})
    assert TrainConfig(category="vc", base=str(wide)).resolved(gpu=False).lr == 2e-3  # 0.5 / 256
    write_metadata(wide, {"base": "gpt2"})  # fine-tuned from a hub model: a gentle rate again
    assert TrainConfig(category="vc", base=str(wide)).resolved(gpu=False).lr == 5e-5
    assert TrainConfig(category="vc", base="gpt2", lr=1e-4).resolved(gpu=True).lr == 1e-4


def test_fine_tune_a_local_checkpoint_through_the_hub_loader(vc_paths: Paths, tiny_checkpoint: Path) -> None:
    """--base PATH goes through the same from_pretrained code as --base gpt2."""
    result = train(vc_paths, TrainConfig(category="vc", base=str(tiny_checkpoint), max_steps=4, eval_every=2, batch_size=4,
                                         block_size=64, samples_per_eval=1, name="vc-tuned"))  # fmt: skip
    meta = result.checkpoint.metadata
    assert result.status == "complete" and meta["base"] == str(tiny_checkpoint) and meta["tokenizer"] == str(tiny_checkpoint)
    assert meta["config"]["lr"] == 3e-3 and math.isfinite(meta["eval_loss"])
    assert meta["config"]["epochs"] == 4.0  # a tiny set: the bound rose to MAX_AUTO_EPOCHS (--max-steps still rules)
    assert TextGenerator.load(result.checkpoint.path).model.config.n_layer == 2


def test_automatic_batch_size_gives_small_sets_enough_steps() -> None:
    from turing_tui.model.train import auto_batch_size

    assert auto_batch_size(12_000) == 16  # all of vc: 750 steps an epoch
    assert auto_batch_size(1_200) == 8  # 150 steps
    assert auto_batch_size(460) == 4  # 1,000 tweets: 115 steps
    assert auto_batch_size(50) == 4  # never below 4
    assert auto_batch_size(3_200, world=2) == 16  # 100 steps on each of 2 GPUs


def test_evaluations_are_spaced_by_their_cost() -> None:
    # Plenty of data, a small held-out side: ~10 evaluations.
    assert evaluation_interval(2250, 500, 16) == 225
    # 1,000 tweets: 56 held-out blocks ~ 7 steps of 4 blocks, so ~100 steps apart (<= 7%).
    assert evaluation_interval(387, 56, 4) == 100
    # Never more often than every 10 steps, never beyond the run, never above 500.
    assert evaluation_interval(30, 1, 16) == 10
    assert evaluation_interval(6, 1, 16) == 6
    assert evaluation_interval(100_000, 10, 16) == 500


def test_fine_tuning_a_small_set_takes_more_epochs() -> None:
    assert fine_tune_epochs(750) == 2.0  # all of vc: 2 epochs
    assert fine_tune_epochs(129) == 2.0  # 1,000 tweets: 258 steps already
    assert fine_tune_epochs(57) == 3.5  # 400 tweets: 200 steps
    assert fine_tune_epochs(5) == 4.0  # a handful: at most 4


def test_two_processes_under_torchrun_train_one_model(vc_paths: Paths) -> None:
    """The multi-GPU path on CPUs: torchrun starts 2 ranks (gloo), only rank 0 reports and saves."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_closed_port()),
               "-m", "turing_tui", "--home", str(vc_paths.root), "train", "-c", "vc", "--from-scratch", "--max-steps", "6",
               "--eval-every", "3", "--block-size", "64", "--batch-size", "4", "--layers", "2", "--width", "64", "--heads", "2",
               "--vocab-size", "400", "--name", "vc-ddp", "--json"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[:6000]
    events = [orjson.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    kinds = [e["event"] for e in events]
    assert kinds.count("TrainStarted") == 1 and kinds.count("TrainFinished") == 1 and kinds.count("EvalDone") == 2
    assert kinds.count("TrainPhase") == len({e["message"] for e in events if e["event"] == "TrainPhase"})  # each phase once
    meta = orjson.loads((vc_paths.model_dir("vc-ddp") / METADATA_FILE).read_bytes())
    assert meta["status"] == "complete" and meta["steps"] == 6 and meta["hardware"]["world_size"] == 2
    assert TextGenerator.load(vc_paths.model_dir("vc-ddp")).model.config.n_layer == 2
