"""Few-shot tweets from a base model of the hub: the fallback when no model was trained.

With no checkpoint of a category and no endpoint, the game can still be played against
plain ``gpt2`` prompted with a handful of real tweets of the category. It is weaker than
a fine-tuned model, so every fake says so in the reveal (``source="few-shot"``). torch and
transformers load only when the generator is opened (in the game's supply thread).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from turing_tui.backends.base import FakeTweet, GeneratorError
from turing_tui.corpus.tweet import normalize_text

SHOTS = 6


def few_shot_prompt(examples: Sequence[str], category: str) -> str:
    """A list of real tweets, one per line, ending where the model writes the next one."""
    lines = [f"Tweets from the '{category}' accounts, one per line:", ""]
    lines += ["Tweet: " + " ".join(normalize_text(t).split()) for t in examples]
    return "\n".join(lines) + "\nTweet:"


class FewShotGenerator:
    """``gpt2`` (or another hub causal LM) continuing a prompt of real tweets."""

    def __init__(
        self,
        examples: Sequence[str],
        *,
        category: str,
        base: str = "gpt2",
        sampling: Any = None,
        seed: int | None = None,
    ) -> None:
        if len(examples) < 2:
            raise GeneratorError(f"Few-shot play needs real tweets of '{category}' to prompt with; fetch the category first.")
        try:
            from turing_tui.model.generate import Sampling, TextGenerator
        except ImportError as exc:  # the model package is part of turing-tui; a broken install
            raise GeneratorError(f"The local model code is unavailable ({exc}).") from exc
        self.category = category
        self.base = base
        self.examples = list(examples)
        self.sampling = sampling if sampling is not None else Sampling(max_new_tokens=50)
        self._rng = random.Random(seed)
        try:
            self._model = TextGenerator.load(base)
        except GeneratorError:
            raise
        except Exception as exc:  # noqa: BLE001 - hub failures come in many types
            raise GeneratorError(
                f"Could not load '{base}' from the model hub ({type(exc).__name__}); "
                f"train a model with: turing-tui train --category {category} --from-scratch"
            ) from exc

    @property
    def model_id(self) -> str:
        return f"few-shot:{self.base}"

    def _prompt(self) -> tuple[str, int]:
        """A prompt of as many shots (up to SHOTS) as fit the model with room to answer."""
        picked = self._rng.sample(self.examples, min(SHOTS, len(self.examples)))
        room = int(getattr(self._model, "max_positions", 1024)) - int(getattr(self.sampling, "max_new_tokens", 50))
        tokenizer = getattr(self._model, "tokenizer", None)
        for shots in range(len(picked), 0, -1):
            prompt = few_shot_prompt(picked[:shots], self.category)
            if tokenizer is None or len(tokenizer.encode(prompt)) <= room:
                return prompt, shots
        raise GeneratorError(f"'{self.base}' reads too few tokens to be prompted with a real tweet; train a model instead.")

    def generate(self, n: int) -> list[FakeTweet]:
        prompts, shots = zip(*(self._prompt() for _ in range(max(1, n))))
        completions = self._model.complete(list(prompts), self.sampling, n=1, stop=["\n"])
        settings = self.sampling.as_dict() if hasattr(self.sampling, "as_dict") else dict(vars(self.sampling))
        settings["shots"] = min(shots)
        fakes = []
        for options in completions:
            for completion in options:
                text = normalize_text(completion.text.split("\n", 1)[0])
                if text:
                    fakes.append(FakeTweet(text=text, model=self.model_id, base=self.base, sampling=settings, source="few-shot"))
        return fakes

    def close(self) -> None:
        self._model = None  # type: ignore[assignment]
