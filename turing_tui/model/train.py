"""Fine-tuning (or training from scratch) a tweet model with the Hugging Face Trainer.

A run reads top-down: config -> seed -> human tweets (filtered) -> stable held-out split
-> tokenizer (the base model's, or a BPE trained on the training tweets) -> tokens
(cached) -> packed blocks -> Trainer with evaluation every N steps, early stopping and
the best checkpoint kept -> export to ``models/<name>/`` with metadata. The loop knows
nothing about any UI: progress and cancellation travel through :class:`ProgressCallback`
as small event dataclasses and a ``threading.Event``. The same code runs on a CPU, one
GPU (bf16 where supported, else fp16) and several GPUs under ``accelerate launch`` or
``torchrun`` (the Trainer reads the launcher's environment; only rank 0 reports/exports).
"""

from __future__ import annotations

import math
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from turing_tui.errors import UserError
from turing_tui.model.checkpoint import (
    TRAINER_DIR,
    CheckpointInfo,
    checkpoint_info,
    list_checkpoints,
    load_model_and_tokenizer,
    mark_id,
    prepare_tokenizer,
    quiet_transformers,
    read_metadata,
    remove_trainer_states,
    save_checkpoint,
    write_metadata,
)
from turing_tui.model.data import (
    BlockDataset,
    TrainingTweet,
    data_fingerprint,
    pack_blocks,
    split_heldout,
    tokenize_tweets,
)
from turing_tui.model.generate import Sampling, TextGenerator
from turing_tui.model.scratch import DEFAULT_VOCAB, ScratchShape, make_scratch_model, train_tweet_tokenizer
from turing_tui.paths import Paths, validate_category

SCRATCH = "scratch"
# One pass over vc (~1.4M tokens) at ~3.4k tokens/s on a 2-core CPU is ~7 minutes with
# evaluations (6:51 measured); the cap keeps a slower machine's run inside 15 minutes.
SCRATCH_CPU_MINUTES = 13.0
# The automatic batch size: 16 blocks (~2k tokens) a step when data is plentiful; halved,
# down to 4, while an epoch would make fewer than 100 optimizer steps. A small set (1,000
# tweets ~ 500 blocks) would otherwise give ~30 steps an epoch: too few updates for the
# model to move, however many times it sees each token. On a CPU a small model costs about
# the same per token at batch 4 as at 16 (a step is mostly arithmetic, not overhead).
DEFAULT_BATCH = 16
MIN_AUTO_BATCH = 4
MIN_STEPS_PER_EPOCH = 100
# Sample tweets are a preview for the person watching: at most one batch every 30 s (the
# first evaluation always has some). Generating them costs ~0.1-0.5 s a time, 10-30% of
# a 15-second run if done at each of its ~10 evaluations.
SAMPLE_EVERY_S = 30.0
# Fine-tuning runs at most FINE_TUNE_EPOCHS by default, more on a small set (see
# fine_tune_epochs). On 1,000 vc tweets from a small pretrained base (129 steps an epoch),
# 2 epochs already beat the original recipe's held-out loss (5.19 vs 5.22) in 1/25 of its
# time; a 3rd gave 0.11 nats more for 50% more time (ask for it with --epochs 3). On 400
# tweets (57 steps an epoch) 2 epochs fell short of the original (5.61 vs 5.57) where 3-4
# beat it (5.52, 5.49); 6 overfitted (5.54).
FINE_TUNE_EPOCHS = 2.0
MIN_RUN_STEPS = 200
MAX_AUTO_EPOCHS = 4.0
# An evaluation costs about half a training step per block on a CPU (a forward pass, no
# backward or optimizer; measured 3.6 vs 7.8 ms a 128-token block for a 2x128 GPT-2), and
# evaluations may take about this share of a run (see evaluation_interval).
EVAL_COST = 0.5
EVAL_SHARE = 0.07
# Fine-tuning a small model made by --from-scratch takes a bold rate that shrinks as the
# model widens (as for Adam in muP): OWN_BASE_LR_WIDTH / n_embd, at most OWN_BASE_LR_MAX.
# Measured on 1,000 vc tweets: a 2x128 base did best at 3e-3 (5.16 vs 5.19 at 2e-3, 5.18
# at 4e-3); a 4x256 base at 2e-3 (5.14 vs 5.21 at 4e-3).
OWN_BASE_LR_WIDTH = 0.5
OWN_BASE_LR_MAX = 3e-3


# -- configuration ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run; saved beside the weights and reused by ``--resume``.

    ``None`` means "the default for this kind of run" (see :meth:`resolved`).
    """

    category: str
    base: str = "gpt2"  # a hub name or a checkpoint folder; ignored with from_scratch
    from_scratch: bool = False
    epochs: float | None = None
    max_steps: int | None = None
    max_minutes: float | None = None
    block_size: int = 128
    batch_size: int | None = None  # blocks per step and device; None = auto_batch_size
    lr: float | None = None
    seed: int = 42
    max_tweets: int | None = None
    heldout_fraction: float = 0.02
    max_heldout_tweets: int = 1000  # 1,000 tweets ~ 30k tokens: an evaluation takes seconds on a CPU
    min_heldout_tweets: int = 100  # a floor for small sets (at most a tenth of them): see split_heldout
    eval_every: int | None = None  # steps; None = about 10 evaluations per run
    patience: int = 3  # evaluations without improvement before stopping
    vocab_size: int = DEFAULT_VOCAB
    shape: ScratchShape = field(default_factory=ScratchShape)
    samples_per_eval: int = 3
    name: str | None = None

    def resolved(self, *, gpu: bool) -> TrainConfig:
        """Fill the defaults that depend on the kind of run and the hardware."""
        scratch = self.from_scratch
        # Epochs are an upper bound (early stopping may end sooner). Fine-tuning: 2 here,
        # raised on a small set once its size is known (fine_tune_epochs). A fresh model: 3
        # on a GPU, and on a CPU one epoch inside SCRATCH_CPU_MINUTES.
        epochs = self.epochs if self.epochs is not None else (3.0 if scratch and gpu else 1.0 if scratch else FINE_TUNE_EPOCHS)
        # A fresh model needs a bold rate; fine-tuning GPT-2 (124M) a gentle one (the usual
        # 5e-5). A small base made here from scratch (1-5M parameters) takes a bold one too
        # (see OWN_BASE_LR_WIDTH; 1e-3 was 0.15 nats worse than 2e-3 for a 2x128 base).
        lr = self.lr if self.lr is not None else (1e-3 if scratch else self._own_base_lr() or 5e-5)
        minutes = self.max_minutes
        if minutes is None and scratch and not gpu and self.max_steps is None:
            minutes = SCRATCH_CPU_MINUTES
        return replace(self, epochs=epochs, lr=lr, max_minutes=minutes, base=SCRATCH if scratch else self.base)

    def _own_base_lr(self) -> float | None:
        """The rate for a base trained from scratch by this tool; None for any other base."""
        folder = Path(self.base).expanduser()
        metadata = (read_metadata(folder) or {}) if folder.is_dir() else {}
        if metadata.get("base") != SCRATCH:
            return None
        width = int((metadata.get("shape") or {}).get("n_embd") or ScratchShape().n_embd)
        return min(OWN_BASE_LR_MAX, float(f"{OWN_BASE_LR_WIDTH / width:.1g}"))  # on a coarse grid: 2e-3, not 1.95e-3

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if isinstance(known.get("shape"), dict):
            known["shape"] = ScratchShape(**known["shape"])
        return cls(**known)


# -- progress events -------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainPhase:
    """A preparation step began (loading tweets, training the tokenizer, tokenizing...)."""

    message: str


@dataclass(frozen=True)
class TrainStarted:
    """Data is ready and the first step is about to run."""

    output: Path
    base: str
    total_steps: int
    train_tweets: int
    heldout_tweets: int
    train_tokens: int
    blocks: int
    parameters: int
    device: str
    precision: str
    resumed_from_step: int = 0
    epochs: float = 0.0  # the resolved schedule: an upper bound, early stopping may end sooner
    batch_size: int = 0  # blocks per step and device
    lr: float = 0.0
    eval_every: int = 0


def schedule_text(total_steps: int, batch_size: int, epochs: float, lr: float, eval_every: int) -> str:
    """One line on the resolved schedule (the CLI prints it, the Train screen logs it)."""
    bound = f" (up to {epochs:g} epoch{'' if epochs == 1 else 's'})" if epochs else ""
    return (
        f"Schedule: {total_steps:,} steps of {batch_size} blocks{bound}, "
        f"learning rate {lr:g} decaying linearly, evaluated every {eval_every:,} steps."
    )


@dataclass(frozen=True)
class TrainProgress:
    """A logging step: training loss, learning rate, throughput and ETA."""

    step: int
    total_steps: int
    epoch: float
    loss: float | None
    learning_rate: float | None
    tokens_per_s: float
    elapsed_s: float
    eta_s: float | None


@dataclass(frozen=True)
class EvalDone:
    """An evaluation on the held-out tweets, with a few samples from the model as it is."""

    step: int
    eval_loss: float
    perplexity: float
    best_eval_loss: float
    samples: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainFinished:
    """The run ended; ``status`` is "complete", "cancelled" or "stopped" (time limit)."""

    path: Path
    status: str
    steps: int
    eval_loss: float | None
    perplexity: float | None
    wall_s: float
    samples: tuple[str, ...] = ()


TrainEvent = TrainPhase | TrainStarted | TrainProgress | EvalDone | TrainFinished
EventHook = Callable[[TrainEvent], None]


# -- the callback ----------------------------------------------------------------------------
def _perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 50 else float("inf")


def _make_callback_class() -> type:
    """Build the TrainerCallback subclass lazily (transformers loads only when training)."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        """Turns Trainer hooks into events; stops on request or at the time limit."""

        def __init__(self, run: _Run) -> None:
            self.run = run
            self.started = time.perf_counter()
            self.first_step: int | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = time.perf_counter()
            self.first_step = state.global_step

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            run = self.run
            if run.stop.is_set():
                run.status = "cancelled"
                control.should_training_stop = True
                control.should_save = True  # the resume point
            elif run.config.max_minutes is not None and time.perf_counter() - self.started > run.config.max_minutes * 60:
                run.status = "stopped"
                control.should_training_stop = True
                control.should_save = True
                control.should_evaluate = True  # the latest weights may be the best: measure them
            elif state.global_step >= state.max_steps:
                # Measure the final, fully decayed weights (transformers 5 does this itself;
                # 4.x would keep an earlier evaluation and drop the last steps).
                control.should_evaluate = True
                control.should_save = True

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            elapsed = time.perf_counter() - self.started
            done = state.global_step - (self.first_step or 0)
            tokens_per_s = done * self.run.tokens_per_step / elapsed if elapsed > 0 else 0.0
            left = state.max_steps - state.global_step
            eta = None
            if done > 0:
                eta = left * elapsed / done
                if self.run.config.max_minutes is not None:
                    eta = min(eta, max(0.0, self.run.config.max_minutes * 60 - elapsed))
            self.run.emit(
                TrainProgress(
                    step=state.global_step,
                    total_steps=state.max_steps,
                    epoch=float(state.epoch or 0.0),
                    loss=float(logs["loss"]),
                    learning_rate=float(logs["learning_rate"]) if "learning_rate" in logs else None,
                    tokens_per_s=tokens_per_s,
                    elapsed_s=elapsed,
                    eta_s=eta,
                )
            )

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, model: Any = None, **kw: Any) -> None:
            if not state.is_world_process_zero or not metrics or "eval_loss" not in metrics or self.run.quiet:
                return
            loss = float(metrics["eval_loss"])
            self.run.best = min(self.run.best, loss)
            now = time.perf_counter()
            due = self.run.sampled_at is None or now - self.run.sampled_at >= SAMPLE_EVERY_S
            samples = self.run.samples(model) if model is not None and due else ()
            if samples:
                self.run.sampled_at = now
            self.run.emit(EvalDone(step=state.global_step, eval_loss=loss, perplexity=_perplexity(loss), best_eval_loss=self.run.best, samples=samples))

    return ProgressCallback


# -- the run ---------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """Where the checkpoint went and how the run ended."""

    checkpoint: CheckpointInfo
    status: str
    steps: int
    eval_loss: float | None
    wall_s: float


class _Run:
    """State shared by the run and its callback."""

    def __init__(self, config: TrainConfig, on_event: EventHook | None, stop: threading.Event, tokenizer: Any) -> None:
        self.config = config
        self.on_event = on_event
        self.stop = stop
        self.tokenizer = tokenizer
        self.status = "complete"
        self.best = float("inf")
        self.tokens_per_step = 0.0
        self.is_main = True
        self.quiet = False
        self.sampled_at: float | None = None  # perf_counter() of the last preview samples

    def emit(self, event: TrainEvent) -> None:
        if self.on_event is not None and self.is_main:
            self.on_event(event)

    def samples(self, model: Any) -> tuple[str, ...]:
        """A few tweets from the model as it is now (unfiltered: this is a preview)."""
        count = self.config.samples_per_eval
        if count <= 0:
            return ()
        was_training = model.training
        model.eval()
        try:
            device = str(next(model.parameters()).device)
            preview = TextGenerator(model, self.tokenizer, name="preview", device=device)
            return tuple(preview.sample_tweets(count, Sampling(max_new_tokens=min(60, self.config.block_size - 1))))
        finally:
            if was_training:
                model.train()


def _hardware() -> tuple[str, str, dict[str, Any]]:
    """(device, precision, description) for this machine."""
    import torch

    info: dict[str, Any] = {"machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__}
    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported()
        info.update(gpu=torch.cuda.get_device_name(0), gpus=torch.cuda.device_count())
        return "cuda", "bf16" if bf16 else "fp16", info
    return "cpu", "fp32", info


def auto_batch_size(blocks: int, world: int = 1) -> int:
    """Blocks per step and device: DEFAULT_BATCH, halved (not below MIN_AUTO_BATCH) until
    an epoch makes at least MIN_STEPS_PER_EPOCH optimizer steps.

    e.g. all of vc (~12k blocks): 16 (~750 steps an epoch); 1,000 tweets (~500 blocks): 4.
    """
    batch = DEFAULT_BATCH
    while batch > MIN_AUTO_BATCH and blocks / (batch * max(1, world)) < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return batch


def fine_tune_epochs(steps_per_epoch: int) -> float:
    """The default epoch bound for fine-tuning: FINE_TUNE_EPOCHS, or more on a small set.

    What moves a pretrained model towards the category is the number of optimizer updates;
    a few hundred tweets give ~50 steps an epoch even at the smallest automatic batch, so
    the bound grows until the run makes MIN_RUN_STEPS updates (at most MAX_AUTO_EPOCHS).
    """
    wanted = MIN_RUN_STEPS / max(1, steps_per_epoch)
    return round(min(MAX_AUTO_EPOCHS, max(FINE_TUNE_EPOCHS, wanted)), 1)


def evaluation_interval(total_steps: int, heldout_blocks: int, blocks_per_step: int) -> int:
    """Steps between evaluations: ~10 per run, 10-500 steps apart, costing <= EVAL_SHARE of it.

    An evaluation is a forward pass over every held-out block, about EVAL_COST of a
    training step's cost per block. On a small set the held-out side is big next to a step
    (1,000 tweets: ~56 blocks vs a step of 4, so one evaluation ~ 7 steps): there they are
    spaced further apart (~100 steps: 3 evaluations over 2 epochs). The Trainer also
    evaluates the last step, so the final, annealed weights are always measured.
    """
    cost_steps = heldout_blocks * EVAL_COST / max(1, blocks_per_step)
    return max(1, min(500, max(10, total_steps // 10, math.ceil(cost_steps / EVAL_SHARE)), total_steps))


def default_run_name(config: TrainConfig) -> str:
    base = SCRATCH if config.from_scratch else Path(config.base).name.replace(".", "-") or "model"
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in base)[:24]
    return f"{config.category}-{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


def find_resumable(paths: Paths, category: str) -> CheckpointInfo | None:
    """The newest checkpoint of ``category`` that a cancelled or time-limited run left."""
    for info in list_checkpoints(paths, category, usable_only=False):
        if info.resumable:
            return info
    return None


def _load_tweets(paths: Paths, config: TrainConfig, emit: EventHook) -> tuple[list[TrainingTweet], dict[str, Any]]:
    from turing_tui.corpus.load import load_category

    emit(TrainPhase(f"Loading {config.category} tweets"))
    corpus = load_category(paths, config.category)
    chosen = corpus.tweets if config.max_tweets is None else corpus.tweets[: config.max_tweets]
    tweets = [TrainingTweet.from_human(t) for t in chosen]
    if len(tweets) < 2:
        raise UserError(
            f"Category '{config.category}' has {len(tweets)} usable tweet(s); training needs at least 2 "
            "(one to learn from, one to check on). Add tweets with 'turing-tui data' or 'turing-tui scrape'."
        )
    return tweets, corpus.report.as_dict()


def heldout_split(tweets: list[TrainingTweet], config: TrainConfig) -> tuple[list[TrainingTweet], list[TrainingTweet]]:
    """(train, held-out) exactly as a run with ``config`` splits them (benchmarks reuse it)."""
    return split_heldout(tweets, config.heldout_fraction, max_heldout=config.max_heldout_tweets, min_heldout=config.min_heldout_tweets)


def train(
    paths: Paths,
    config: TrainConfig,
    *,
    output: Path | None = None,
    resume: bool = False,
    on_event: EventHook | None = None,
    stop: threading.Event | None = None,
) -> TrainResult:
    """Run one training job to its end (complete, early-stopped, time limit or cancelled).

    With ``resume``, continue the run in ``output`` (or the newest resumable run of the
    category) with its saved config. Setting ``stop`` ends the run at the next step with
    a checkpoint saved: a later ``resume`` picks it up.
    """
    import torch
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    quiet_transformers()
    wall_start = time.perf_counter()
    stop = stop or threading.Event()
    # Under torchrun / accelerate every process runs this; only the first one reports.
    emit: EventHook = on_event if on_event is not None and int(os.environ.get("RANK", "0")) == 0 else (lambda event: None)
    validate_category(config.category)
    device, precision, hardware = _hardware()
    gpu = device == "cuda"

    # -- where, and with which config ------------------------------------------------------
    resume_from: str | None = None
    auto_epochs = False  # True: the epoch bound waits for the data's size (fine_tune_epochs)
    if resume:
        folder = Path(output) if output else None
        if folder is None:
            found = find_resumable(paths, config.category)
            if found is None:
                raise UserError(f"No cancelled run of category '{config.category}' to resume in {paths.models_dir}; start one without --resume.")
            folder = found.path
        saved = read_metadata(folder)
        resume_from = get_last_checkpoint(str(folder / TRAINER_DIR)) if (folder / TRAINER_DIR).is_dir() else None
        if saved is None or not saved.get("config") or resume_from is None:
            raise UserError(f"{folder} holds no resumable run (it finished, or was never started); start a new run without --resume.")
        config = replace(TrainConfig.from_dict(saved["config"]), max_minutes=config.max_minutes)
        # Only the time limit may change on resume; the data, model and schedule must not.
    else:
        auto_epochs = config.epochs is None and not config.from_scratch
        config = config.resolved(gpu=gpu)
        if output:
            folder = Path(output)
            config = replace(config, name=folder.name)
        else:
            config = replace(config, name=config.name or default_run_name(config))
            folder = paths.model_dir(config.name or "")
        if (folder / "model.safetensors").exists() or (folder / TRAINER_DIR).exists():
            raise UserError(f"{folder} already holds a model; choose another --output, or continue it with --resume.")
    if config.max_minutes is None and config.from_scratch and not gpu and config.max_steps is None:
        config = replace(config, max_minutes=SCRATCH_CPU_MINUTES)
    set_seed(config.seed)

    # -- data ------------------------------------------------------------------------------
    tweets, filter_report = _load_tweets(paths, config, emit)
    train_tweets, heldout = heldout_split(tweets, config)

    # -- tokenizer and model ---------------------------------------------------------------
    if resume_from is not None:
        # The architecture comes from the trainer checkpoint (Trainer restores its weights,
        # optimizer and RNG); the tokenizer is the one saved when the run began.
        from transformers import AutoTokenizer

        model, _ = load_model_and_tokenizer(resume_from)
        tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(str(folder)))
    elif config.from_scratch:
        emit(TrainPhase(f"Training a {config.vocab_size:,}-token BPE on {len(train_tweets):,} tweets"))
        # Trained on the training side only: held-out text stays unseen, so its loss is honest.
        tokenizer = train_tweet_tokenizer((t.text for t in train_tweets), vocab_size=config.vocab_size)
        shape = replace(config.shape, n_positions=max(config.shape.n_positions, config.block_size))
        config = replace(config, shape=shape)
        model = make_scratch_model(tokenizer, shape, seed=config.seed)
    else:
        emit(TrainPhase(f"Loading base model {config.base}"))
        model, tokenizer = load_model_and_tokenizer(config.base)
    limit = int(getattr(model.config, "n_positions", 0) or getattr(model.config, "max_position_embeddings", 0) or config.block_size)
    if config.block_size > limit:
        config = replace(config, block_size=limit)
    mark = mark_id(tokenizer)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.train()

    emit(TrainPhase("Tokenizing and packing tweets"))
    cache_dir = paths.cache_dir
    train_ids, cached = tokenize_tweets(train_tweets, tokenizer, cache_dir=cache_dir)
    held_ids, _ = tokenize_tweets(heldout, tokenizer, cache_dir=cache_dir)
    train_blocks, stats = pack_blocks(train_ids, config.block_size, mark, best_fit=True)
    held_blocks, held_stats = pack_blocks(held_ids, config.block_size, mark, best_fit=True)  # fewer blocks: cheaper evaluations
    if not train_blocks or not held_blocks:
        raise UserError(f"Category '{config.category}' has too little text to train on; add more tweets.")
    train_data = BlockDataset(train_blocks, config.block_size, tokenizer.pad_token_id)
    held_data = BlockDataset(held_blocks, config.block_size, tokenizer.pad_token_id)

    # -- schedule --------------------------------------------------------------------------
    world = int(os.environ.get("WORLD_SIZE", "1"))
    # Evaluation keeps no gradients: twice the step's batch fits; an automatic batch (shrunk
    # only to make more steps) evaluates in batches of 32 blocks, as plentiful data would.
    eval_batch = 2 * (config.batch_size or DEFAULT_BATCH)
    if config.batch_size is None:
        config = replace(config, batch_size=auto_batch_size(len(train_blocks), world))  # saved: resume reuses it
    assert config.batch_size is not None
    # e.g. 16 blocks x 128 tokens = 2,048 token slots per step and device, ~90% real tokens.
    steps_per_epoch = max(1, math.ceil(len(train_data) / (config.batch_size * world)))
    if auto_epochs:
        config = replace(config, epochs=fine_tune_epochs(steps_per_epoch))  # saved: resume reuses it
    total_steps = config.max_steps or max(1, math.ceil(steps_per_epoch * (config.epochs or 1.0)))
    eval_every = config.eval_every or evaluation_interval(total_steps, len(held_blocks), config.batch_size * world)
    warmup = min(200, max(1, total_steps // 20))
    tokens_per_step = stats.tokens / len(train_blocks) * config.batch_size * world

    folder.mkdir(parents=True, exist_ok=True)
    run = _Run(config, on_event, stop, tokenizer)
    run.tokens_per_step = tokens_per_step
    metadata: dict[str, Any] = {
        "category": config.category,
        "base": config.base,
        "created": time.time(),
        "status": "training",
        "config": config.as_dict(),
        "data_fingerprint": data_fingerprint(tweets),
        "data_tweets": len(train_tweets),
        "heldout_tweets": len(heldout),
        "heldout_fraction": config.heldout_fraction,
        "train_tokens": stats.tokens,
        "heldout_tokens": held_stats.tokens,
        "blocks": len(train_blocks),
        "truncated_tweets": stats.truncated,
        "token_cache_hit": cached,
        "filter": filter_report,
        "block_size": config.block_size,
        "tokenizer": "scratch-bpe" if config.from_scratch else config.base,
        "sampling": Sampling().as_dict(),
        "hardware": {"device": device, "precision": precision, **hardware, "world_size": world},
    }
    if config.from_scratch:
        metadata["shape"] = config.shape.as_dict()
    args = TrainingArguments(
        output_dir=str(folder / TRAINER_DIR),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=eval_batch,
        learning_rate=config.lr or 5e-5,
        num_train_epochs=float(config.epochs or 1.0),
        max_steps=total_steps,
        warmup_steps=warmup,
        # Linear decay to zero: on 1,000 vc tweets it beat cosine by 0.01-0.025 nats of
        # held-out loss at the same steps (3 seeds), as it did in published comparisons.
        lr_scheduler_type="linear",
        weight_decay=0.01,
        eval_strategy="steps",
        eval_steps=eval_every,
        save_strategy="steps",
        save_steps=eval_every,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_strategy="steps",
        logging_steps=max(1, min(50, eval_every // 4)),
        bf16=gpu and precision == "bf16",
        fp16=gpu and precision == "fp16",
        use_cpu=not gpu,
        seed=config.seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        save_only_model=False,
        prediction_loss_only=True,  # evaluation needs the loss only: no logits kept and gathered
        ddp_find_unused_parameters=False,  # GPT-2 uses every parameter: skip DDP's extra graph walk
        log_level_replica="error",  # other ranks stay as quiet as the first (quiet_transformers)
        **_length_grouping(),
    )
    run.is_main = args.process_index == 0
    if run.is_main and not resume:
        tokenizer.save_pretrained(folder)  # a scratch run's BPE is needed to resume it
        write_metadata(folder, {"name": folder.name, **metadata})
    callback = _make_callback_class()(run)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=held_data,
        data_collator=train_data.collate,  # pads each batch to its longest block only
        callbacks=[callback, EarlyStoppingCallback(early_stopping_patience=config.patience)],
    )
    # Our events replace Trainer's own console output (it prints raw log dicts without tqdm).
    from transformers.trainer_callback import PrinterCallback, ProgressCallback as HFProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(HFProgressCallback)
    parameters = sum(p.numel() for p in model.parameters())
    resumed_step = int(resume_from.rsplit("-", 1)[-1]) if resume_from else 0
    run.emit(
        TrainStarted(
            output=folder,
            base=config.base,
            total_steps=total_steps,
            train_tweets=len(train_tweets),
            heldout_tweets=len(heldout),
            train_tokens=stats.tokens,
            blocks=len(train_blocks),
            parameters=parameters,
            device=device,
            precision=precision,
            resumed_from_step=resumed_step,
            epochs=0.0 if config.max_steps else float(config.epochs or 1.0),  # 0: --max-steps decides
            batch_size=config.batch_size,
            lr=float(config.lr or 0.0),
            eval_every=eval_every,
        )
    )
    output_state = trainer.train(resume_from_checkpoint=resume_from)
    steps = int(trainer.state.global_step)
    early = steps < total_steps and run.status == "complete"

    # The best checkpoint is loaded back at the end (load_best_model_at_end): the metadata
    # gives the loss of exactly the weights we export.
    run.quiet = True  # the final measurement is reported once, in TrainFinished
    state = trainer.state
    if state.best_model_checkpoint and state.best_metric is not None:
        # load_best_model_at_end put back the weights that scored best_metric on these
        # very held-out blocks: evaluating them again would only repeat that number.
        eval_loss: float | None = float(state.best_metric)
    else:  # no evaluation ran (e.g. cancelled before the first one)
        final = trainer.evaluate()  # every rank takes part under DDP
        eval_loss = float(final["eval_loss"]) if "eval_loss" in final else None
    samples: tuple[str, ...] = ()
    if run.is_main:
        samples = run.samples(trainer.model)
        best_model = trainer.model
        sampling = Sampling()
        best_model.generation_config.update(
            do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
            max_new_tokens=sampling.max_new_tokens, eos_token_id=mark, bos_token_id=mark, pad_token_id=tokenizer.pad_token_id,
        )  # fmt: skip
        previous = read_metadata(folder) or {}
        metadata.update(
            created=previous.get("created", metadata["created"]),
            status=run.status,
            early_stopped=early,
            steps=steps,
            epochs=float(trainer.state.epoch or 0.0),
            train_loss=float(output_state.training_loss) if output_state.training_loss else None,
            eval_loss=eval_loss,
            perplexity=_perplexity(eval_loss) if eval_loss is not None else None,
            best_step=_best_step(trainer.state.best_model_checkpoint),
            tokens_seen=int(steps * tokens_per_step),
            wall_seconds=float(previous.get("wall_seconds") or 0.0) + (time.perf_counter() - wall_start),
            samples=list(samples),
            exported=time.time(),
        )
        with torch.no_grad():
            save_checkpoint(folder, best_model.to(torch.float32) if gpu else best_model, tokenizer, metadata)
        if run.status == "complete":
            remove_trainer_states(folder)
    run.emit(
        TrainFinished(
            path=folder,
            status=run.status,
            steps=steps,
            eval_loss=eval_loss,
            perplexity=_perplexity(eval_loss) if eval_loss is not None else None,
            wall_s=time.perf_counter() - wall_start,
            samples=samples,
        )
    )
    _leave_process_group()
    info = checkpoint_info(folder)
    assert info is not None or not run.is_main
    return TrainResult(checkpoint=info, status=run.status, steps=steps, eval_loss=eval_loss, wall_s=time.perf_counter() - wall_start)  # type: ignore[arg-type]


def _leave_process_group() -> None:
    """Under torchrun / accelerate: wait for rank 0's export, then close the process group.

    A rank that exits with the group still open can abort in C++ ("terminate called
    without an active exception", 1 run in ~20 with two CPU ranks) and fail the launch.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _length_grouping() -> dict[str, Any]:
    """TrainingArguments that batch blocks of similar length together (see BlockDataset).

    transformers 5 names it ``train_sampling_strategy``; 4.x had ``group_by_length``.
    """
    from dataclasses import fields

    from transformers import TrainingArguments

    names = {f.name for f in fields(TrainingArguments)}
    if "train_sampling_strategy" in names:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True} if "group_by_length" in names else {}


def _best_step(path: str | None) -> int | None:
    if not path:
        return None
    try:
        return int(path.rstrip("/").rsplit("-", 1)[-1])
    except ValueError:
        return None
