"""Which generator a game plays against, decided before anything heavy loads.

``play`` resolves its options into a :class:`GeneratorSpec` at once (cheap, so a wrong
path or URL is one sentence on the command line), and the game opens it later in a
background thread (loading a model takes seconds). The order when nothing is named: the
newest local checkpoint of the category, then a locally deployed endpoint, then ``gpt2``
from the model hub prompted with real tweets (few-shot); offline with none of those,
one sentence names the ways to get a generator.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turing_tui.backends.base import TweetGenerator
from turing_tui.errors import UserError
from turing_tui.paths import Paths

KINDS = ("local", "modelzoo", "openai", "few-shot")
FEW_SHOT_BASE = "gpt2"


@dataclass(frozen=True)
class GeneratorSpec:
    """How to open the generator: ``kind`` and ``source`` (a path, a URL or a hub name)."""

    kind: str
    source: str
    api_key: str | None = None
    model_name: str | None = None  # the served model's name (openai protocol)

    @property
    def label(self) -> str:
        if self.kind == "local":
            return f"local model {Path(self.source).name}"
        if self.kind == "few-shot":
            return f"{self.source} from the model hub, prompted with real tweets (few-shot)"
        return f"{self.kind} endpoint {self.source}"

    def model_id_hint(self) -> str | None:
        """The pool key of this generator's tweets, when it is known without opening it."""
        if self.kind == "modelzoo":
            return "modelzoo:" + self.source.rstrip("/").split("/")[-2]
        if self.kind == "openai" and self.model_name:
            return "openai:" + self.model_name
        if self.kind == "few-shot":
            return f"few-shot:{self.source}"
        if self.kind == "local":
            # The local generator names its tweets after the checkpoint (metadata "name",
            # else the folder), which is readable without loading torch.
            try:
                from turing_tui.model.checkpoint import read_metadata
            except ImportError:
                return None
            folder = Path(self.source)
            return str((read_metadata(folder) or {}).get("name") or folder.name)
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "model_name": self.model_name}


def _hub_cached(name: str) -> bool:
    """True when hub model ``name`` is in the local Hugging Face cache.

    Read from the cache layout (``models--<org>--<name>/snapshots/*/config.json``) rather
    than through huggingface_hub, whose settings freeze at its first import.
    """
    cache = os.environ.get("HF_HUB_CACHE")
    if not cache:
        home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
        cache = os.path.join(home, "hub")
    snapshots = Path(cache).expanduser() / f"models--{name.replace('/', '--')}" / "snapshots"
    return any(snapshots.glob("*/config.json"))


def _hub_reachable(name: str) -> bool:
    """True when ``name`` is in the local hub cache or the hub answers within 2 seconds."""
    if _hub_cached(name):
        return True
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    import httpx

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        httpx.head(f"{endpoint}/{name}/resolve/main/config.json", timeout=2.0, follow_redirects=False)
    except httpx.HTTPError:
        return False
    return True


def choose_generator(
    paths: Paths,
    category: str,
    *,
    model: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    api_key: str | None = None,
    model_name: str | None = None,
    allow_hub: bool = True,
) -> GeneratorSpec:
    """Turn the ``play`` options into a spec, or raise one clear sentence."""
    if model and endpoint:
        raise UserError("Pass either --model PATH or --endpoint URL, not both.")
    if model:
        path = Path(model).expanduser()
        if not path.is_dir() and (paths.models_dir / model).is_dir():
            path = paths.models_dir / model
        if not path.is_dir():
            raise UserError(f"No model at {model}; pass a checkpoint directory (see: turing-tui models).")
        return GeneratorSpec("local", str(path.resolve()))
    if endpoint:
        protocol = protocol or ("modelzoo" if endpoint.rstrip("/").endswith("/predict") else "openai")
        if protocol not in ("modelzoo", "openai"):
            raise UserError(f"Unknown protocol {protocol!r}; use --protocol modelzoo or --protocol openai.")
        if not endpoint.startswith(("http://", "https://")):
            raise UserError(f"{endpoint!r} is not a URL; pass --endpoint http://HOST:PORT (openai) or a .../predict URL (modelzoo).")
        if protocol == "modelzoo" and not endpoint.rstrip("/").endswith("/predict"):
            raise UserError("A Model Zoo endpoint is the model's predict URL, ending in /v1/models/<name>/predict.")
        key = api_key or os.environ.get("TURING_TUI_API_KEY")
        if key is None:
            # The locally deployed server has a random key in the data root: use it.
            try:
                from turing_tui.serve.deploy import local_api_key
            except ImportError:
                local_api_key = None  # type: ignore[assignment]
            if local_api_key is not None:
                key = local_api_key(paths, endpoint)
        return GeneratorSpec(protocol, endpoint, api_key=key, model_name=model_name)
    try:
        from turing_tui.model.checkpoint import newest_checkpoint
    except ImportError:
        newest_checkpoint = None  # type: ignore[assignment]
    if newest_checkpoint is not None:
        info = newest_checkpoint(paths, category)
        if info is not None:
            return GeneratorSpec("local", str(info.path))
    try:
        from turing_tui.serve.deploy import local_endpoint  # type: ignore[attr-defined]
    except ImportError:
        local_endpoint = None  # type: ignore[assignment]
    if local_endpoint is not None:
        found = local_endpoint(paths)
        if found:
            url, proto, key = found
            return GeneratorSpec(proto, url, api_key=api_key or key)
    if allow_hub and _hub_reachable(FEW_SHOT_BASE):
        return GeneratorSpec("few-shot", FEW_SHOT_BASE)
    raise UserError(
        f"No generator for '{category}': no checkpoint, no deployed endpoint and the model hub is "
        f"unreachable; train one with `turing-tui train --category {category} --from-scratch` or "
        "play against a server with `--endpoint URL --protocol openai`."
    )


def open_generator(
    spec: GeneratorSpec, *, category: str, training_texts: Sequence[str] = (), seed: int | None = None
) -> TweetGenerator:
    """Open the generator ``spec`` names (may load torch: call it off the UI thread)."""
    if spec.kind in ("modelzoo", "openai"):
        from turing_tui.backends.http import ModelZooGenerator, OpenAIGenerator

        if spec.kind == "modelzoo":
            return ModelZooGenerator(spec.source, api_key=spec.api_key)
        return OpenAIGenerator(spec.source, api_key=spec.api_key, model=spec.model_name)
    if spec.kind == "few-shot":
        from turing_tui.backends.fewshot import FewShotGenerator

        return FewShotGenerator(list(training_texts), category=category, base=spec.source, seed=seed)
    if spec.kind == "local":
        try:
            from turing_tui.model.generate import LocalGenerator
        except ImportError as exc:
            raise UserError(f"Local models need the model package, which failed to import ({exc}).") from exc
        return LocalGenerator(spec.source, category=category, training_texts=list(training_texts))
    raise UserError(f"Unknown generator kind {spec.kind!r}.")
