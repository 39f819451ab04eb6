"""Generators that ask a model over HTTP: the Model Zoo predict protocol and OpenAI completions.

The original game called hosted Model Zoo endpoints; today a player points the game at
``turing-tui serve``, a ``deploy``ed model, or a vLLM server. Both protocols are spoken with
httpx through :mod:`turing_tui.net`, so 429/503 overloads and dropped connections are retried
with backoff (honouring ``Retry-After``) and timeouts are bounded. Anything the player can fix
(a wrong key, a wrong URL, a server that keeps failing) ends as one
:class:`~turing_tui.backends.base.GeneratorError` sentence. Fine-tuned GPT-2 tweets start and
end with ``<|endoftext|>``, so that is both the prompt and the stop sequence.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import httpx

from turing_tui.backends.base import FakeTweet, GeneratorError
from turing_tui.corpus.tweet import normalize_text
from turing_tui.errors import NetworkError
from turing_tui.net import USER_AGENT, Backoff, RetryHook, request_with_retry

TWEET_MARK = "<|endoftext|>"
ENV_API_KEY = "TURING_TUI_API_KEY"
PROTOCOLS = ("modelzoo", "openai")
DEFAULT_SAMPLING: dict[str, Any] = {"temperature": 0.9, "top_p": 0.95, "top_k": 50, "max_new_tokens": 60}


def clean_completion(text: str, prompt: str = TWEET_MARK) -> str:
    """The tweet inside a raw completion: drop an echoed prompt, cut at the end mark."""
    if prompt and text.startswith(prompt):
        text = text[len(prompt) :]
    text = text.lstrip()
    if text.startswith(TWEET_MARK):
        text = text[len(TWEET_MARK) :]
    return normalize_text(text.split(TWEET_MARK, 1)[0])


class HttpGenerator:
    """What both protocols share: one httpx client, retries, error sentences."""

    protocol = ""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        prompt: str = TWEET_MARK,
        sampling: dict[str, Any] | None = None,
        timeout: float = 30.0,
        backoff: Backoff = Backoff(retries=4, base=0.5, cap=10.0),
        on_retry: RetryHook | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise GeneratorError(f"{url!r} is not an http(s) URL; pass the endpoint as --endpoint http://HOST:PORT/...")
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get(ENV_API_KEY) or None
        self.prompt = prompt
        self.sampling = {**DEFAULT_SAMPLING, **(sampling or {})}
        self.backoff = backoff
        self.on_retry = on_retry
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"user-agent": USER_AGENT, **self._auth_headers()},
            transport=transport,
        )

    def _auth_headers(self) -> dict[str, str]:
        return {}

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        try:
            response = request_with_retry(self._client, "POST", url, json=body, backoff=self.backoff, on_retry=self.on_retry)
        except NetworkError as exc:
            raise GeneratorError(f"The {self.protocol} endpoint kept failing: {exc} Check that the server at {self.url} is up.") from exc
        return self._json(response)

    def _json(self, response: httpx.Response) -> Any:
        status = response.status_code
        if status in (401, 403):
            raise GeneratorError(
                f"The {self.protocol} endpoint refused the API key (HTTP {status}); "
                f"pass --api-key or set {ENV_API_KEY}."
            )
        if status == 404:
            raise GeneratorError(f"Nothing answers at {response.request.url} (HTTP 404); check the --endpoint URL.")
        if status >= 400:
            detail = response.text.strip().replace("\n", " ")[:200]
            raise GeneratorError(f"The {self.protocol} endpoint answered HTTP {status}: {detail or 'no details'}.")
        try:
            return response.json()
        except ValueError as exc:
            raise GeneratorError(f"The {self.protocol} endpoint at {self.url} did not answer with JSON.") from exc

    def _fakes(self, texts: list[str], model: str, base: str = "") -> list[FakeTweet]:
        fakes = []
        for raw in texts:
            text = clean_completion(raw, self.prompt)
            if text:
                fakes.append(FakeTweet(text=text, model=model, base=base, sampling=dict(self.sampling), source=self.protocol))
        return fakes

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ModelZooGenerator(HttpGenerator):
    """The Model Zoo predict protocol: ``POST .../v1/models/<name>/predict`` with ``x-api-key``.

    ``url`` is the model's full predict URL. The body carries the prompt as ``input`` and the
    generate keyword arguments (the original game sent ``min_length: 3``).
    """

    protocol = "modelzoo"

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        path = urlsplit(self.url).path.rstrip("/").split("/")
        if len(path) < 2 or path[-1] != "predict":
            raise GeneratorError(
                f"{url!r} is not a Model Zoo predict URL; it ends in /v1/models/<name>/predict."
            )
        self.name = path[-2]

    def _auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key} if self.api_key else {}

    @property
    def model_id(self) -> str:
        return f"modelzoo:{self.name}"

    def generate(self, n: int) -> list[FakeTweet]:
        s = self.sampling
        body = {
            "input": self.prompt,
            "min_length": 3,
            "do_sample": True,
            "temperature": s["temperature"],
            "top_p": s["top_p"],
            "top_k": s["top_k"],
            "max_new_tokens": s["max_new_tokens"],
            "num_return_sequences": max(1, int(n)),
        }
        data = self._post(self.url, body)
        output = data.get("output") if isinstance(data, dict) else None
        if not isinstance(output, list):
            raise GeneratorError(f"The Model Zoo endpoint at {self.url} answered without an 'output' list.")
        texts = [str(item.get("generated_text", "")) for item in output if isinstance(item, dict)]
        return self._fakes(texts[: max(1, int(n))], self.model_id)


class OpenAIGenerator(HttpGenerator):
    """OpenAI-compatible completions (vLLM, ``turing-tui serve``): ``POST {base}/v1/completions``.

    ``url`` is the server's base URL (with or without ``/v1``). The model name is ``model``
    when given, else the first model the server lists at ``GET /v1/models``.
    """

    protocol = "openai"

    def __init__(self, url: str, *, model: str | None = None, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.base_v1 = self.url if self.url.endswith("/v1") else self.url + "/v1"
        self._model = model
        self._base = ""  # what the model was fine-tuned from, when the server says (ours does)
        # Completions take no top_k; record only the settings that were sent.
        self.sampling.pop("top_k", None)

    def _auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def model_name(self) -> str:
        if self._model is None:
            try:
                response = request_with_retry(self._client, "GET", self.base_v1 + "/models", backoff=self.backoff, on_retry=self.on_retry)
            except NetworkError as exc:
                raise GeneratorError(f"The openai endpoint kept failing: {exc} Check that the server at {self.url} is up.") from exc
            data = self._json(response)
            models = data.get("data") if isinstance(data, dict) else None
            if not models or not isinstance(models[0], dict) or not models[0].get("id"):
                raise GeneratorError(f"The server at {self.url} lists no model; name one with --model-name.")
            self._model = str(models[0]["id"])
            self._base = str(models[0].get("base") or "")
        return self._model

    @property
    def model_id(self) -> str:
        return f"openai:{self.model_name}"

    def generate(self, n: int) -> list[FakeTweet]:
        s = self.sampling
        body = {
            "model": self.model_name,
            "prompt": self.prompt,
            "max_tokens": s["max_new_tokens"],
            "temperature": s["temperature"],
            "top_p": s["top_p"],
            "n": max(1, int(n)),
            "stop": [TWEET_MARK],
        }
        data = self._post(self.base_v1 + "/completions", body)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list):
            raise GeneratorError(f"The openai endpoint at {self.url} answered without a 'choices' list.")
        texts = [str(c.get("text", "")) for c in choices if isinstance(c, dict)]
        return self._fakes(texts, self.model_id, base=self._base)


def http_generator(url: str, protocol: str, **kwargs: Any) -> HttpGenerator:
    """The generator for ``protocol`` ("modelzoo" or "openai") at ``url``."""
    if protocol == "modelzoo":
        return ModelZooGenerator(url, **kwargs)
    if protocol == "openai":
        return OpenAIGenerator(url, **kwargs)
    raise GeneratorError(f"Unknown protocol {protocol!r}; use --protocol modelzoo or --protocol openai.")
