"""Checkpoints: one directory per trained model, and the one function that loads any model.

A checkpoint is what ``train`` leaves under ``models/<name>/``: the weights
(``model.safetensors``), the model and generation config, the tokenizer
(``tokenizer.json``) and :data:`METADATA_FILE`, a JSON record of how it was made (base
model, category, data fingerprint and size, steps, train/validation loss, perplexity,
sampling defaults, wall time, hardware). The game, the server and ``models`` read that
record without loading torch; :func:`load_model_and_tokenizer` is the single loader for a
checkpoint directory *and* a Hugging Face Hub name, so the hub path is the same code.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from turing_tui.errors import UserError
from turing_tui.paths import Paths

METADATA_FILE = "turing-tui.json"
TRAINER_DIR = "trainer"  # Trainer's resumable states (optimizer, scheduler, RNG) live here
TWEET_MARK = "<|endoftext|>"  # starts and ends every tweet; GPT-2's own end-of-text token
METADATA_VERSION = 1


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint directory says about itself, read without loading the model."""

    path: Path
    name: str
    category: str
    base: str
    created: float  # epoch seconds
    eval_loss: float | None
    size_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def perplexity(self) -> float | None:
        value = self.metadata.get("perplexity")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def status(self) -> str:
        """"complete", or "cancelled" when training stopped early and can be resumed."""
        return str(self.metadata.get("status") or "complete")

    @property
    def resumable(self) -> bool:
        return (self.path / TRAINER_DIR).is_dir() and any((self.path / TRAINER_DIR).glob("checkpoint-*"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "category": self.category,
            "base": self.base,
            "created": self.created,
            "eval_loss": self.eval_loss,
            "perplexity": self.perplexity,
            "status": self.status,
            "size_bytes": self.size_bytes,
            "steps": self.metadata.get("steps"),
        }


def read_metadata(folder: Path) -> dict[str, Any] | None:
    """The metadata of a checkpoint folder, or None when it is not one of ours."""
    try:
        data = orjson.loads((Path(folder) / METADATA_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_metadata(folder: Path, metadata: dict[str, Any]) -> None:
    """Write the metadata atomically (temp file + rename), so a crash never leaves half."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{METADATA_FILE}.tmp"
    tmp.write_bytes(orjson.dumps(metadata, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    os.replace(tmp, folder / METADATA_FILE)


def _size(folder: Path) -> int:
    """Bytes of the exported model (the resumable trainer states are not the model)."""
    total = 0
    for path in folder.iterdir():
        if path.is_file():
            total += path.stat().st_size
    return total


def checkpoint_info(folder: Path) -> CheckpointInfo | None:
    folder = Path(folder)
    meta = read_metadata(folder)
    if meta is None:
        return None
    loss = meta.get("eval_loss")
    return CheckpointInfo(
        path=folder.resolve(),
        name=str(meta.get("name") or folder.name),
        category=str(meta.get("category") or ""),
        base=str(meta.get("base") or ""),
        created=float(meta.get("created") or folder.stat().st_mtime),
        eval_loss=float(loss) if isinstance(loss, (int, float)) else None,
        size_bytes=_size(folder),
        metadata=meta,
    )


def has_weights(folder: Path) -> bool:
    return any((Path(folder) / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"))


def list_checkpoints(paths: Paths, category: str | None = None, *, usable_only: bool = True) -> list[CheckpointInfo]:
    """Checkpoints under ``models/``, newest first, optionally of one category.

    ``usable_only`` skips folders with metadata but no weights yet (a run that is
    still preparing its data).
    """
    folder = paths.models_dir
    if not folder.is_dir():
        return []
    found: list[CheckpointInfo] = []
    for child in folder.iterdir():
        if not child.is_dir():
            continue
        info = checkpoint_info(child)
        if info is None or (category is not None and info.category != category):
            continue
        if usable_only and not has_weights(child):
            continue
        found.append(info)
    found.sort(key=lambda c: (c.created, c.name), reverse=True)
    return found


def newest_checkpoint(paths: Paths, category: str) -> CheckpointInfo | None:
    """The most recently made usable checkpoint of ``category``, or None."""
    found = list_checkpoints(paths, category)
    return found[0] if found else None


def resolve_model_source(paths: Paths, category: str | None, model: str | None) -> str | Path:
    """What ``--model`` names: a folder, a checkpoint name under models/, or a hub name.

    Without ``--model``, the newest checkpoint of ``category``; a user error when none.
    """
    if model:
        as_path = Path(model).expanduser()
        if as_path.is_dir():
            return as_path
        if "/" not in model and (paths.models_dir / model).is_dir():
            return paths.models_dir / model
        if as_path.exists() or model.startswith((".", "~")) or os.sep in model and as_path.parent.exists():
            raise UserError(f"{model} is not a model folder: give a checkpoint folder made by 'turing-tui train'.")
        return model  # a Hugging Face Hub name, loaded (or refused) by the same loader
    if category is None:
        raise UserError("Name a model with --model PATH or a category with --category.")
    info = newest_checkpoint(paths, category)
    if info is None:
        raise UserError(
            f"No trained model for category '{category}' in {paths.models_dir}. "
            f"Make one with: turing-tui train --category {category} --from-scratch"
        )
    return info.path


def _hub_error(source: str, exc: Exception) -> UserError:
    return UserError(
        f"Could not load model '{source}' from the Hugging Face Hub ({type(exc).__name__}); "
        "without internet, train one with --from-scratch or give --base/--model a local checkpoint folder."
    )


def load_model_and_tokenizer(source: str | Path, *, device: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer from a checkpoint folder or a hub name.

    The same ``from_pretrained`` calls serve both: a folder is read locally, a name like
    ``gpt2`` is downloaded (or read from the local HF cache). Failures a user can cause
    (offline, unknown name, broken folder) become one clear :class:`UserError`.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    where = str(source)
    is_dir = Path(where).expanduser().is_dir()
    if is_dir:
        where = str(Path(where).expanduser())
        if not has_weights(Path(where)):
            raise UserError(f"{where} has no model weights: train it first or resume with 'turing-tui train --resume'.")
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if not is_dir and not _in_local_cache(where):
        _check_hub_reachable(where)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        if is_dir:
            raise UserError(f"{where} is not a loadable model folder ({exc.__class__.__name__}: {str(exc).splitlines()[0][:160]}).") from exc
        raise _hub_error(where, exc) from exc
    except Exception as exc:  # network stacks raise their own types (httpx, requests)
        if is_dir:
            raise
        raise _hub_error(where, exc) from exc
    prepare_tokenizer(tokenizer)
    if device:
        model.to(device)
    model.eval()
    return model, tokenizer


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _in_local_cache(name: str) -> bool:
    """True when the hub model is already in the local HF cache (loads with no network)."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
    except Exception:  # not cached (or not a valid name): the network decides
        return False
    return True


def _check_hub_reachable(name: str) -> None:
    """Fail in seconds, not minutes of silent retries, when the Hub cannot be reached."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise _hub_error(name, OSError("HF_HUB_OFFLINE is set"))
    import httpx

    try:
        httpx.head(hub_endpoint(), timeout=5.0, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise UserError(
            f"Could not reach the Hugging Face Hub at {hub_endpoint()} to download '{name}' "
            f"({type(exc).__name__}); without internet, train with --from-scratch "
            "or give a local checkpoint folder."
        ) from exc


def quiet_transformers() -> None:
    """Our own progress and errors say what matters; transformers' bars and hints are noise."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()
    except ImportError:  # huggingface_hub always ships with transformers; be safe anyway
        pass


def prepare_tokenizer(tokenizer: Any) -> Any:
    """GPT-2 tokenizers have no pad token: pad with end-of-text (masked out anyway)."""
    if tokenizer.eos_token is None:
        tokenizer.eos_token = TWEET_MARK
    if tokenizer.bos_token is None:
        tokenizer.bos_token = tokenizer.eos_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def save_checkpoint(folder: Path, model: Any, tokenizer: Any, metadata: dict[str, Any]) -> Path:
    """Export a model as a checkpoint: safetensors weights, tokenizer, metadata last.

    Metadata is written last, so a folder with metadata always has complete weights.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    write_metadata(folder, {"version": METADATA_VERSION, "name": folder.name, **metadata})
    return folder


def remove_trainer_states(folder: Path) -> None:
    """Drop the resumable optimizer states once a run finished (they are 2-3x the model)."""
    shutil.rmtree(Path(folder) / TRAINER_DIR, ignore_errors=True)


def mark_id(tokenizer: Any) -> int:
    """The id of the tweet marker: GPT-2's ``<|endoftext|>``, else the model's own eos."""
    vocab = tokenizer.get_vocab()
    if TWEET_MARK in vocab:
        return int(vocab[TWEET_MARK])
    if tokenizer.eos_token_id is None:
        raise UserError("This model's tokenizer has no end-of-text token to mark tweet boundaries; pick a causal LM such as gpt2.")
    return int(tokenizer.eos_token_id)
