"""The HTTP face of a checkpoint: Model Zoo predict, OpenAI completions, health.

The original game called hosted Model Zoo endpoints that no longer exist. This ASGI app
(Starlette, run by uvicorn) speaks that same predict protocol and the OpenAI-compatible
completions protocol that vLLM speaks, so the game's HTTP generators, the original game's
own request (``{"input": "...", "min_length": 3}``) and any OpenAI client work against a
checkpoint served from a laptop. Requests go through :class:`CompletionBatcher`, so
concurrent players share generate calls. It is safe by default: an optional API key
compared in constant time and never logged, caps on body size, prompt length, new
tokens, ``n`` and queue depth, each answered with a 4xx (or 503) naming what was wrong,
and no request can take the server down.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from turing_tui.errors import UserError
from turing_tui.serve.batching import BatchPolicy, CompletionBatcher, Overloaded

log = logging.getLogger("turing_tui.serve")


class CompletionModel(Protocol):
    """What the server needs from a model (``turing_tui.model.generate.TextGenerator``)."""

    @property
    def name(self) -> str: ...

    def complete(
        self, prompts: list[str], sampling: Any, *, n: int = 1, stop: Sequence[str] | None = None
    ) -> list[list[Any]]: ...


@dataclass(frozen=True)
class Limits:
    """Caps on what one request may ask for. Tweets are short: these are generous."""

    max_body_bytes: int = 64 * 1024
    max_prompt_chars: int = 2_000
    max_prompts: int = 32  # prompts in one OpenAI request (a list prompt)
    max_new_tokens: int = 256
    max_n: int = 16
    max_stop: int = 4  # as OpenAI


class ApiError(Exception):
    """An answer other than 200, with the sentence that tells the client what was wrong."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error", param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.headers = headers or {}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def error_response(error: ApiError) -> Response:
    # One shape for both protocols: OpenAI's error object, which Model Zoo clients can read too.
    body = {"error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.status}}
    return json_response(body, error.status, error.headers)


# -- request parsing ----------------------------------------------------------------------
async def read_json(request: Request, limits: Limits) -> dict[str, Any]:
    """The body as a JSON object, refusing bodies over the cap before reading them whole."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "The Content-Length header is not a number.") from None
        if size > limits.max_body_bytes:
            raise ApiError(413, f"The request body is {size} bytes; the limit is {limits.max_body_bytes}.")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limits.max_body_bytes:
            raise ApiError(413, f"The request body is over the limit of {limits.max_body_bytes} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def _number(body: dict[str, Any], key: str, default: Any, *, lo: float, hi: float, integer: bool = False) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int) and not float(value).is_integer()):
        kind = "an integer" if integer else "a number"
        raise ApiError(400, f"'{key}' must be {kind}.", param=key)
    if not lo <= value <= hi:
        raise ApiError(400, f"'{key}' must be between {lo:g} and {hi:g}; got {value}.", param=key)
    return int(value) if integer else float(value)


def _prompt(value: Any, key: str, limits: Limits) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"'{key}' must be a string.", param=key)
    if len(value) > limits.max_prompt_chars:
        raise ApiError(400, f"'{key}' is {len(value)} characters; the limit is {limits.max_prompt_chars}.", param=key)
    return value


def _stop(value: Any, limits: Limits) -> list[str] | None:
    if value is None:
        return None
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise ApiError(400, "'stop' must be a non-empty string or a list of them.", param="stop")
    if len(stops) > limits.max_stop:
        raise ApiError(400, f"'stop' has {len(stops)} entries; the limit is {limits.max_stop}.", param="stop")
    return stops or None


def _reject_unknown(body: dict[str, Any], accepted: frozenset[str]) -> None:
    unknown = sorted(set(body) - accepted)
    if unknown:
        raise ApiError(400, f"Unknown parameter {unknown[0]!r}; accepted: {', '.join(sorted(accepted))}.", param=unknown[0])


# Generate kwargs a Hugging Face text-generation pipeline takes that mean nothing here or
# that we honour in spirit; accepted so the original game's request works unchanged.
PREDICT_KEYS = frozenset(
    {
        "input", "max_new_tokens", "max_length", "min_length", "min_new_tokens", "temperature",
        "top_p", "top_k", "seed", "num_return_sequences", "do_sample", "return_full_text",
        "stop", "repetition_penalty",
    }
)
OPENAI_KEYS = frozenset(
    {
        "model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "n", "stop", "seed",
        "stream", "echo", "logprobs", "user", "presence_penalty", "frequency_penalty", "best_of",
        "suffix",
    }
)


@dataclass(frozen=True)
class ServedModel:
    """What the routes need: the model's name, its defaults and the batcher in front of it."""

    name: str
    base: str
    metadata: dict[str, Any]
    defaults: dict[str, Any]  # sampling defaults (temperature, top_p, top_k, max_new_tokens)


class CompletionServer:
    """The routes, bound to one model, one key and one set of limits."""

    def __init__(
        self,
        model: CompletionModel,
        *,
        name: str | None = None,
        api_key: str | None = None,
        limits: Limits = Limits(),
        policy: BatchPolicy = BatchPolicy(),
    ) -> None:
        from turing_tui.model.generate import Sampling

        metadata = dict(getattr(model, "metadata", None) or {})
        # The checkpoint's own sampling defaults (saved by train) fill what a request leaves out.
        self.default_sampling = Sampling.from_dict(metadata.get("sampling"))
        self.model = model
        self.served = ServedModel(
            name=name or model.name,
            base=str(getattr(model, "base", "") or ""),
            metadata=metadata,
            defaults={k: v for k, v in self.default_sampling.as_dict().items() if k != "seed"},
        )
        self._key = api_key.encode("utf-8") if api_key else None
        self.limits = limits
        self.batcher = CompletionBatcher(self._complete, policy)
        self.started = time.time()

    # -- plumbing ---------------------------------------------------------------------------
    def _complete(self, prompts: list[str], sampling: Any, n: int, stop: tuple[str, ...] | None) -> list[list[Any]]:
        return self.model.complete(prompts, sampling, n=n, stop=list(stop) if stop else None)

    def check_key(self, request: Request) -> None:
        if self._key is None:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        # compare_digest takes time independent of where the strings differ.
        if given is None or not hmac.compare_digest(given.encode("utf-8"), self._key):
            raise ApiError(
                401,
                "Missing or wrong API key: send it as 'x-api-key: KEY' or 'Authorization: Bearer KEY'.",
                kind="authentication_error",
                headers={"www-authenticate": "Bearer"},
            )

    def check_name(self, name: str) -> None:
        if name != self.served.name:
            raise ApiError(404, f"No model named {name!r} here; this server serves {self.served.name!r}.", kind="not_found_error", param="model")

    def sampling(self, *, temperature: float | None, top_p: float | None, top_k: int | None, max_new_tokens: int, seed: int | None) -> Any:
        from dataclasses import replace

        given = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "max_new_tokens": max_new_tokens}
        # The seed is the request's alone: a default seed would make every answer the same.
        sampling = replace(self.default_sampling, seed=seed, **{k: v for k, v in given.items() if v is not None})
        try:
            return sampling.validate()
        except UserError as exc:
            raise ApiError(400, str(exc)) from None

    async def generate(self, prompts: list[str], sampling: Any, n: int, stop: list[str] | None) -> list[list[Any]]:
        try:
            return await self.batcher.submit(prompts, sampling, n=n, stop=stop)
        except Overloaded as exc:
            raise ApiError(503, f"The server is busy ({exc}); retry shortly.", kind="overloaded_error", headers={"retry-after": "1"}) from None
        except ApiError:
            raise
        except UserError as exc:  # the model refused this request (e.g. a prompt over its context)
            raise ApiError(400, str(exc)) from None
        except Exception as exc:  # the model failed on this request; the server lives on
            raise ApiError(500, f"Generation failed: {type(exc).__name__}.", kind="server_error") from None

    def model_card(self) -> dict[str, Any]:
        return {
            "id": self.served.name,
            "object": "model",
            "created": int(self.started),
            "owned_by": "turing-tui",
            "base": self.served.base,
            "category": self.served.metadata.get("category"),
            "sampling": self.served.defaults,
            # Model Zoo's model state shape, so its health poll works against us too.
            "state": {"name": "HEALTHY", "description": "serving"},
        }

    # -- routes -----------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        return json_response(
            {
                "status": "ok",
                "model": self.served.name,
                "pid": os.getpid(),
                "uptime_s": round(time.time() - self.started, 3),
                "queued": self.batcher.queued,
                "batching": self.batcher.policy.enabled,
                "stats": self.batcher.stats.as_dict(),
            }
        )

    async def list_models(self, request: Request) -> Response:
        self.check_key(request)
        return json_response({"object": "list", "data": [self.model_card()]})

    async def get_model(self, request: Request) -> Response:
        self.check_key(request)
        self.check_name(request.path_params["name"])
        return json_response(self.model_card())

    async def predict(self, request: Request) -> Response:
        """Model Zoo: ``{"input": str, **generate kwargs}`` -> ``{"output": [{"generated_text"}]}``."""
        self.check_key(request)
        self.check_name(request.path_params["name"])
        body = await read_json(request, self.limits)
        _reject_unknown(body, PREDICT_KEYS)
        if "input" not in body:
            raise ApiError(400, "'input' is required: the text to continue (may be empty).", param="input")
        prompt = _prompt(body["input"], "input", self.limits)
        cap = self.limits.max_new_tokens
        max_new = _number(body, "max_new_tokens", None, lo=1, hi=cap, integer=True)
        if max_new is None:
            # The pipeline's max_length counts the prompt too; tweets are far below any cap,
            # so it bounds the new tokens here.
            max_new = _number(body, "max_length", None, lo=1, hi=cap, integer=True)
        if max_new is None:
            max_new = min(self.default_sampling.max_new_tokens, cap)
        do_sample = body.get("do_sample", True)
        if not isinstance(do_sample, bool):
            raise ApiError(400, "'do_sample' must be true or false.", param="do_sample")
        temperature = _number(body, "temperature", None, lo=0.0, hi=5.0)
        sampling = self.sampling(
            temperature=0.0 if not do_sample else temperature,
            top_p=_number(body, "top_p", None, lo=0.0, hi=1.0),
            top_k=_number(body, "top_k", None, lo=0, hi=100_000, integer=True),
            max_new_tokens=min(int(max_new), cap),
            seed=_number(body, "seed", None, lo=0, hi=2**32 - 1, integer=True),
        )
        n = _number(body, "num_return_sequences", 1, lo=1, hi=self.limits.max_n, integer=True)
        full = body.get("return_full_text", True)
        if not isinstance(full, bool):
            raise ApiError(400, "'return_full_text' must be true or false.", param="return_full_text")
        stop = _stop(body.get("stop"), self.limits)
        (completions,) = await self.generate([prompt], sampling, n, stop)
        # Like a transformers text-generation pipeline: the prompt is part of the text
        # unless return_full_text is false.
        output = [{"generated_text": (prompt + c.text) if full else c.text, "finish_reason": c.finish_reason} for c in completions]
        return json_response({"output": output, "model": self.served.name})

    async def completions(self, request: Request) -> Response:
        """OpenAI-compatible ``POST /v1/completions`` (the subset vLLM and the game use)."""
        self.check_key(request)
        body = await read_json(request, self.limits)
        _reject_unknown(body, OPENAI_KEYS)
        if body.get("model") is not None:
            if not isinstance(body["model"], str):
                raise ApiError(400, "'model' must be a string.", param="model")
            self.check_name(body["model"])
        if body.get("stream"):
            raise ApiError(400, "Streaming is not supported; leave 'stream' out or false.", param="stream")
        if body.get("echo"):
            raise ApiError(400, "'echo' is not supported.", param="echo")
        if body.get("logprobs") is not None:
            raise ApiError(400, "'logprobs' is not supported.", param="logprobs")
        if body.get("suffix") is not None:
            raise ApiError(400, "'suffix' is not supported.", param="suffix")
        for key in ("presence_penalty", "frequency_penalty"):
            if body.get(key) not in (None, 0, 0.0):
                raise ApiError(400, f"'{key}' is not supported; leave it out or 0.", param=key)
        if "prompt" not in body:
            raise ApiError(400, "'prompt' is required: a string or a list of strings.", param="prompt")
        raw = body["prompt"]
        prompts = [raw] if isinstance(raw, str) else raw
        if not isinstance(prompts, list) or not prompts:
            raise ApiError(400, "'prompt' must be a string or a non-empty list of strings.", param="prompt")
        if len(prompts) > self.limits.max_prompts:
            raise ApiError(400, f"'prompt' has {len(prompts)} entries; the limit is {self.limits.max_prompts}.", param="prompt")
        prompts = [_prompt(p, "prompt", self.limits) for p in prompts]
        n = _number(body, "n", 1, lo=1, hi=self.limits.max_n, integer=True)
        best_of = _number(body, "best_of", None, lo=1, hi=self.limits.max_n, integer=True)
        if best_of is not None and best_of != n:
            raise ApiError(400, "'best_of' other than 'n' is not supported.", param="best_of")
        top_k = _number(body, "top_k", None, lo=-1, hi=100_000, integer=True)
        sampling = self.sampling(
            temperature=_number(body, "temperature", None, lo=0.0, hi=2.0),
            top_p=_number(body, "top_p", None, lo=0.0, hi=1.0),
            top_k=0 if top_k == -1 else top_k,  # vLLM spells "no top-k" as -1
            max_new_tokens=_number(body, "max_tokens", 16, lo=1, hi=self.limits.max_new_tokens, integer=True),
            seed=_number(body, "seed", None, lo=0, hi=2**63 - 1, integer=True),
        )
        stop = _stop(body.get("stop"), self.limits)
        results = await self.generate(prompts, sampling, n, stop)
        choices = []
        completion_tokens = 0
        for i, completions in enumerate(results):
            for j, c in enumerate(completions):
                completion_tokens += int(getattr(c, "tokens", 0) or 0)
                choices.append({"index": i * n + j, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason})
        prompt_tokens = self._count_tokens(prompts)
        return json_response(
            {
                "id": f"cmpl-{secrets.token_hex(12)}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": self.served.name,
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    def _count_tokens(self, prompts: list[str]) -> int:
        tokenizer = getattr(self.model, "tokenizer", None)
        if tokenizer is None:
            return 0
        try:
            # +1 per prompt: the tweet marker the generator puts in front of every prompt.
            return sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) + 1 for p in prompts)
        except Exception:
            return 0


def create_app(
    model: CompletionModel,
    *,
    name: str | None = None,
    api_key: str | None = None,
    limits: Limits = Limits(),
    policy: BatchPolicy = BatchPolicy(),
) -> Starlette:
    """The ASGI app serving ``model``; run it with uvicorn (see :func:`serve`)."""
    server = CompletionServer(model, name=name, api_key=api_key, limits=limits, policy=policy)

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return error_response(exc)
            except Exception:  # a bug in a route must not take the server down
                log.exception("unhandled error in %s %s", request.method, request.url.path)
                return error_response(ApiError(500, "Internal server error.", kind="server_error"))

        return endpoint

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(ApiError(404, f"No route {request.url.path}; see GET /v1/models.", kind="not_found_error"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error_response(ApiError(405, f"{request.method} is not allowed on {request.url.path}.", kind="invalid_request_error"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.batcher.start()
        try:
            yield
        finally:
            await server.batcher.close()

    routes = [
        Route("/health", guarded(server.health), methods=["GET"]),
        Route("/v1/models", guarded(server.list_models), methods=["GET"]),
        Route("/v1/models/{name}", guarded(server.get_model), methods=["GET"]),
        Route("/v1/models/{name}/predict", guarded(server.predict), methods=["POST"]),
        Route("/v1/completions", guarded(server.completions), methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_allowed})
    app.state.server = server
    return app
