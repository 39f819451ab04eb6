"""Generation: one loaded model, batched sampling with the KV cache, tweets cut and filtered.

The original served one ``pipeline("text-generation")`` call per tweet. Here a
:class:`TextGenerator` loads a checkpoint (or hub name) once and samples many sequences
in one ``generate`` call (left-padded prompts, ``num_return_sequences``, KV cache), on
the GPU when there is one. Every sequence starts with the tweet marker and is cut at the
next marker. :class:`LocalGenerator` is the game's face of it (the TweetGenerator
protocol): it samples in batches and keeps only what :class:`FakeTweetFilter` accepts.
:func:`fill_pool` stores such tweets in the game's pool ahead of play.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from turing_tui.backends.base import FakeTweet, GeneratorError, TweetGenerator
from turing_tui.corpus.tweet import normalize_text
from turing_tui.model.checkpoint import load_model_and_tokenizer, mark_id, read_metadata
from turing_tui.model.guard import FakeTweetFilter

MAX_BATCH = 64  # sequences per generate() call on a CPU: bounds memory for big requests
MAX_BATCH_GPU = 256  # a small model on a GPU is bound by per-step overhead, not by rows per step


@dataclass(frozen=True)
class Sampling:
    """How to sample. ``temperature=0`` means greedy decoding."""

    temperature: float = 0.9
    top_p: float = 0.95
    top_k: int = 50
    max_new_tokens: int = 60
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Sampling:
        """Build from a metadata or request dict, ignoring unknown keys."""
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__ and v is not None}
        return cls(**known)

    def validate(self) -> Sampling:
        from turing_tui.errors import UserError

        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise UserError("Temperature must be 0 or more (0 = greedy; 0.7-1.0 reads like people).")
        if not 0 < self.top_p <= 1:
            raise UserError("top-p must be above 0 and at most 1.")
        if self.top_k < 0:
            raise UserError("top-k must be 0 (off) or more.")
        if not 1 <= self.max_new_tokens <= 1024:
            raise UserError("max-new-tokens must be between 1 and 1024.")
        return self


@dataclass(frozen=True)
class Completion:
    """One sampled continuation: its text, why it ended, and how many tokens it took."""

    text: str
    finish_reason: str  # "stop" (end-of-tweet or a stop string) | "length"
    tokens: int


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else CUDA when present, else Apple MPS, else CPU."""
    if device:
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class TextGenerator:
    """A model loaded once, sampling batches of completions; safe to share across threads."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str, base: str = "", metadata: dict[str, Any] | None = None, device: str = "cpu") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.base = base
        self.metadata = metadata or {}
        self.device = device
        self._lock = threading.Lock()
        self.mark_id = mark_id(tokenizer)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.mark_id)
        self.decoder = "own"  # or "hf" once a model turns out to need transformers' generate()
        self._cache_arg: str | None = None
        self.max_batch = MAX_BATCH_GPU if str(device).startswith("cuda") else MAX_BATCH
        self.max_positions = int(getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 1024))

    @classmethod
    def load(cls, source: str | Path, *, device: str | None = None) -> TextGenerator:
        """Load a checkpoint folder or a hub name; bf16 on a GPU that supports it."""
        import torch

        device = pick_device(device)
        dtype = None
        if device == "cuda" and torch.cuda.is_bf16_supported():
            dtype = torch.bfloat16
        model, tokenizer = load_model_and_tokenizer(source, device=device, dtype=dtype)
        folder = Path(str(source)).expanduser()
        metadata = (read_metadata(folder) if folder.is_dir() else None) or {}
        name = str(metadata.get("name") or (folder.name if folder.is_dir() else str(source)))
        base = str(metadata.get("base") or ("" if folder.is_dir() else str(source)))
        return cls(model, tokenizer, name=name, base=base, metadata=metadata, device=device)

    @property
    def default_sampling(self) -> Sampling:
        """The sampling defaults the checkpoint was saved with (or the library's)."""
        return Sampling.from_dict(self.metadata.get("sampling"))

    def _encode(self, prompt: str) -> list[int]:
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        if not ids or ids[0] != self.mark_id:
            ids = [self.mark_id, *ids]  # every tweet starts after the marker, as in training
        return list(ids)

    def complete(
        self, prompts: list[str], sampling: Sampling, *, n: int = 1, stop: list[str] | None = None
    ) -> list[list[Completion]]:
        """``n`` completions for each prompt, in prompt order; batched on the device."""
        import torch

        sampling.validate()
        if n < 1:
            raise ValueError("n must be at least 1")
        encoded = [self._encode(p) for p in prompts]
        # Chunks keep each generate() call under max_batch rows.
        max_batch = self.max_batch
        results: list[list[Completion]] = [[] for _ in prompts]
        with self._lock, torch.inference_mode():
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            per_call = max(1, max_batch // n) if n <= max_batch else 1
            for start in range(0, len(encoded), per_call):
                group = list(range(start, min(start + per_call, len(encoded))))
                copies = n
                while copies > 0:
                    take = min(copies, max_batch)
                    outs = self._generate([encoded[i] for i in group], sampling, take)
                    for row, i in enumerate(group):
                        for k in range(take):
                            results[i].append(self._finish(outs[row * take + k], stop))
                    copies -= take
        return results

    def _generate(self, batch: list[list[int]], sampling: Sampling, copies: int) -> list[list[int]]:
        """Sample ``copies`` continuations of each prompt; new token ids per row, in order."""
        import torch

        longest = max(len(ids) for ids in batch)
        max_new = min(sampling.max_new_tokens, self.max_positions - longest)
        if max_new < 1:
            from turing_tui.errors import UserError

            raise UserError(f"The prompt is {longest} tokens long; this model reads at most {self.max_positions}.")
        greedy = sampling.temperature == 0
        rows = batch if greedy else [ids for ids in batch for _ in range(copies)]  # greedy copies are identical
        # Left padding keeps every prompt's last token in the last column for decoding.
        input_ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for row, ids in enumerate(rows):
            input_ids[row, longest - len(ids) :] = torch.tensor(ids)
            mask[row, longest - len(ids) :] = 1
        device = self.model.device
        input_ids, mask = input_ids.to(device), mask.to(device)
        out: list[list[int]] | None = None
        if self.decoder == "own":
            try:
                out = self._decode(input_ids, mask, sampling, max_new)
            except (TypeError, AttributeError, ValueError):  # a model whose forward differs: use generate()
                self.decoder = "hf"
        if out is None:
            out = self._generate_hf(input_ids, mask, sampling, max_new, 1)  # rows are already copied
        if greedy and copies > 1:
            out = [row for row in out for _ in range(copies)]
        return out

    def _decode(self, input_ids: Any, mask: Any, sampling: Sampling, max_new: int) -> list[list[int]]:
        """Our decoding loop: one forward per token for the whole batch, on the KV cache.

        Rows that reach the end-of-tweet marker leave the batch (their cache rows are
        dropped), so a batch costs what its unfinished tweets cost, not its longest one
        times its width. Sampling is temperature -> top-k -> top-p, as in transformers.
        """
        import torch

        model = self.model
        if self._cache_arg is None:
            import inspect

            self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        result = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        cache = getattr(result, "cache", None) or getattr(result, "past_key_values", None)
        active = list(range(input_ids.shape[0]))  # original row of each row still decoding
        rows: list[list[int]] = [[] for _ in active]
        next_pos = positions[:, -1] + 1
        for step in range(max_new):
            tokens = self._pick(result.logits[:, -1, :], sampling)
            picked = tokens.tolist()
            for row, token in zip(active, picked):
                rows[row].append(token)
            if step == max_new - 1:
                break
            going = tokens != self.mark_id
            if not bool(going.any()):
                break
            if not bool(going.all()):
                keep = going.nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                active = [active[i] for i in keep.tolist()]
                tokens, mask, next_pos = tokens[keep], mask[keep], next_pos[keep]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            result = model(
                input_ids=tokens[:, None], attention_mask=mask, position_ids=next_pos[:, None], use_cache=True, **{self._cache_arg: cache}
            )
            next_pos = next_pos + 1
        return rows

    @staticmethod
    def _pick(logits: Any, sampling: Sampling) -> Any:
        """The next token of each row: greedy, or sampled from the top-k/top-p set."""
        import torch

        logits = logits.float()
        if sampling.temperature == 0:
            return logits.argmax(-1)
        logits = logits / sampling.temperature
        # Sorting only the top k (50 of 8,192+) keeps this cheap on a CPU.
        k = sampling.top_k if 0 < sampling.top_k < logits.shape[-1] else logits.shape[-1]
        values, indices = logits.topk(k, dim=-1)
        probs = torch.softmax(values, dim=-1)
        if sampling.top_p < 1.0:
            # Drop tokens once the mass before them exceeds top_p (the first always stays).
            before = probs.cumsum(-1) - probs
            probs = probs.masked_fill(before > sampling.top_p, 0.0)
        choice = torch.multinomial(probs, 1)
        return indices.gather(-1, choice).squeeze(1)

    def _generate_hf(self, input_ids: Any, mask: Any, sampling: Sampling, max_new: int, copies: int) -> list[list[int]]:
        """transformers' generate(): the fallback for models our loop cannot drive."""
        greedy = sampling.temperature == 0
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new, do_sample=not greedy, num_return_sequences=copies,
            eos_token_id=self.mark_id, pad_token_id=self.pad_id, use_cache=True,
        )  # fmt: skip
        if greedy:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
        out = self.model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
        return out[:, input_ids.shape[1] :].tolist()

    def _finish(self, new_ids: list[int], stop: list[str] | None) -> Completion:
        """Cut at the first marker (finish "stop") or keep all (finish "length")."""
        finish = "length"
        if self.mark_id in new_ids:
            new_ids = new_ids[: new_ids.index(self.mark_id)]
            finish = "stop"
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        for s in stop or ():
            if s and s in text:
                text = text[: text.index(s)]
                finish = "stop"
        return Completion(text=text, finish_reason=finish, tokens=len(new_ids))

    def sample_tweets(self, count: int, sampling: Sampling | None = None) -> list[str]:
        """A few raw samples (unfiltered), for training previews."""
        done = self.complete([""], sampling or self.default_sampling, n=count)[0]
        return [normalize_text(c.text) for c in done]


class LocalGenerator:
    """The game's generator: a local model behind the TweetGenerator protocol.

    Samples ``batch_size`` tweets per model call and returns only those the filter
    accepts; with ``training_texts`` it also refuses copies of the training tweets.
    """

    def __init__(
        self,
        source: str | Path | TextGenerator,
        *,
        category: str,
        sampling: Sampling | None = None,
        training_texts: Iterable[str] | None = None,
        batch_size: int = 16,
    ) -> None:
        self._owns_model = not isinstance(source, TextGenerator)
        self.text_generator: TextGenerator | None = source if isinstance(source, TextGenerator) else TextGenerator.load(source)
        self._info = (self.text_generator.name, self.text_generator.base)
        self.category = category
        self.sampling = (sampling or self.text_generator.default_sampling).validate()
        self.filter = FakeTweetFilter(training_texts)
        self.batch_size = max(1, batch_size)
        self._calls = 0
        self._ready: deque[FakeTweet] = deque()
        self._generate_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._info[0]

    @property
    def rejected(self) -> Counter[str]:
        return self.filter.rejected

    def generate(self, n: int) -> list[FakeTweet]:
        """Up to ``n`` accepted tweets; GeneratorError when every sample is rejected."""
        if n <= 0:
            return []
        with self._generate_lock:  # the filter's memory and the ready queue are shared state
            return self._generate(n)

    def _generate(self, n: int) -> list[FakeTweet]:
        generator = self.text_generator
        if generator is None:
            raise GeneratorError(f"Model '{self.model_id}' was closed; start a new game to load it again.")
        # Accepted samples beyond what a call asked for wait here for the next call.
        tweets: list[FakeTweet] = [self._ready.popleft() for _ in range(min(n, len(self._ready)))]
        # Most samples of a trained model pass; allow ~4 candidates per wanted tweet.
        rounds = 2 + math.ceil(4 * (n - len(tweets)) / self.batch_size)
        sampling_info = self.sampling.as_dict()
        for _ in range(rounds if len(tweets) < n else 0):
            sampling = self.sampling
            if sampling.seed is not None:  # reproducible, yet each call draws new samples
                sampling = replace(sampling, seed=sampling.seed + self._calls)
            self._calls += 1
            want = min(generator.max_batch, max(self.batch_size, n - len(tweets)))
            for done in generator.complete([""], sampling, n=want)[0]:
                if self.filter.check(done.text, done.finish_reason) is None:
                    fake = FakeTweet(
                        text=normalize_text(done.text),
                        model=self.model_id,
                        base=self._info[1],
                        sampling=sampling_info,
                        source="local",
                    )
                    (tweets if len(tweets) < n else self._ready).append(fake)
            if len(tweets) >= n:
                break
        if not tweets:
            raise GeneratorError(
                f"Model '{self.model_id}' produced no usable tweet ({self.filter.summary()}); "
                "train it longer or change the sampling settings."
            )
        return tweets

    def close(self) -> None:
        """Let go of the model; one this generator loaded itself is freed (a shared one is not)."""
        generator, self.text_generator = self.text_generator, None
        if generator is not None and self._owns_model:
            generator.model = None


@dataclass(frozen=True)
class PoolFillProgress:
    """Some tweets reached the pool."""

    added: int
    target: int
    generated: int


@dataclass
class PoolFillReport:
    """What a pool fill did: asked, produced, newly stored, and rejected by reason."""

    category: str
    model: str
    requested: int
    generated: int = 0
    added: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fill_pool(
    store: Any,
    category: str,
    generator: TweetGenerator,
    n: int,
    on_event: Callable[[PoolFillProgress], None] | None = None,
) -> PoolFillReport:
    """Generate until ``n`` new tweets are in the pool (or the generator stops giving new ones)."""
    started = time.perf_counter()
    report = PoolFillReport(category=category, model=generator.model_id, requested=n)
    stalls = 0
    while report.added < n and stalls < 3:
        fakes = generator.generate(min(MAX_BATCH, n - report.added))
        report.generated += len(fakes)
        added = store.add_fakes(category, fakes)
        report.added += added
        stalls = stalls + 1 if added == 0 else 0
        if on_event is not None:
            on_event(PoolFillProgress(added=report.added, target=n, generated=report.generated))
    rejected = getattr(getattr(generator, "filter", None), "rejected", None)
    report.rejected = dict(rejected) if rejected else {}
    report.seconds = time.perf_counter() - started
    return report
