"""Test helpers for the game: a real TweetGenerator that needs no model, and a ready corpus.

``ScriptedGenerator`` implements the generator protocol for real (numbered tweets, an
optional delay, failures on demand) so the game's pool, supply thread and UI are driven
exactly as by a model, without loading one.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from turing_tui.backends.base import FakeTweet, GeneratorError
from turing_tui.corpus.twint import write_jsonl
from turing_tui.paths import Paths
from turing_tui.store.db import Store

from tests.conftest import make_tweet


class ScriptedGenerator:
    """Writes 'Machine tweet number N ...' tweets; can be slowed down or made to fail."""

    def __init__(self, model_id: str = "scripted-gpt", *, delay: float = 0.0, fail_times: int = 0, fail_always: bool = False) -> None:
        self._model_id = model_id
        self.delay = delay
        self.fail_times = fail_times
        self.fail_always = fail_always
        self.calls = 0
        self.closed = False
        self._count = 0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    def generate(self, n: int) -> list[FakeTweet]:
        with self._lock:
            self.calls += 1
            if self.delay:
                time.sleep(self.delay)
            if self.fail_always or self.fail_times > 0:
                self.fail_times -= 1
                raise GeneratorError("The scripted endpoint is overloaded (HTTP 503).")
            out = []
            for _ in range(n):
                self._count += 1
                out.append(
                    FakeTweet(
                        text=f"Machine tweet number {self._count} about founders, growth and coffee",
                        model=self._model_id,
                        base="scratch",
                        sampling={"temperature": 0.9, "top_p": 0.95},
                        source="local",
                    )
                )
            return out

    def close(self) -> None:
        self.closed = True


def write_corpus(paths: Paths, category: str = "vc", n: int = 40, **kw: object) -> list[str]:
    """Write ``n`` invented human tweets to ``data/<category>/000.txt``; returns their ids.

    ``text`` may hold ``{i}``, replaced by the tweet's number (identical texts would be
    dropped as duplicates by the corpus filter).
    """
    text = kw.pop("text", None)
    tweets = [make_tweet(i, text=text.replace("{i}", str(i)) if isinstance(text, str) else None, **kw) for i in range(n)]  # type: ignore[arg-type]
    write_jsonl(paths.category_dir(category) / "000.txt", tweets)
    return [t.id for t in tweets]


def fill_pool(store: Store, category: str, generator: ScriptedGenerator, n: int) -> int:
    return store.add_fakes(category, generator.generate(n))


def wait_for(predicate, timeout: float = 10.0, step: float = 0.01) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class ModelServer:
    """A real HTTP server on 127.0.0.1 speaking both generator protocols.

    ``POST /v1/models/<name>/predict`` answers the Model Zoo shape, ``POST /v1/completions``
    and ``GET /v1/models`` the OpenAI shape. ``script`` holds (status, headers, delay)
    answers given before the normal ones, e.g. a 429 with Retry-After then success.
    Every request is kept in ``requests`` as (method, path, headers, json body).
    """

    def __init__(self, *, api_key: str | None = None, model: str = "tiny-vc", delay: float = 0.0, port: int = 0) -> None:
        self.api_key = api_key
        self.model = model
        self.delay = delay
        self.script: deque[tuple[int, dict[str, str], float]] = deque()
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.count = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                owner.requests.append((method, self.path, dict(self.headers), body))
                if owner.script:
                    status, headers, delay = owner.script.popleft()
                    time.sleep(delay)
                    if status != 200:
                        self._send(status, {"error": f"scripted {status}"}, headers)
                        return
                time.sleep(owner.delay)
                if owner.api_key is not None:
                    given = self.headers.get("x-api-key") or (self.headers.get("authorization") or "").removeprefix("Bearer ")
                    if given != owner.api_key:
                        self._send(401, {"error": "bad key"})
                        return
                if method == "GET" and self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": owner.model, "object": "model"}]})
                elif method == "POST" and self.path == f"/v1/models/{owner.model}/predict":
                    n = int((body or {}).get("num_return_sequences", 1))
                    prompt = (body or {}).get("input", "")
                    self._send(200, {"output": [{"generated_text": prompt + owner.text()} for _ in range(n)]})
                elif method == "POST" and self.path == "/v1/completions":
                    n = int((body or {}).get("n", 1))
                    choices = [{"index": i, "text": owner.text(), "logprobs": None, "finish_reason": "stop"} for i in range(n)]
                    self._send(200, {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": owner.model, "choices": choices})
                else:
                    self._send(404, {"error": "not found"})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up (a killed game) is not the test's business

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def text(self) -> str:
        self.count += 1
        return f"Served tweet {self.count}: shipping beats planning, every single week<|endoftext|>ignored tail"

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def predict_url(self) -> str:
        return f"{self.url}/v1/models/{self.model}/predict"

    def __enter__(self) -> ModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def offline_hub(monkeypatch: Any, paths: Paths) -> None:
    """No model hub: an endpoint nobody listens on and an empty cache.

    (Not HF_HUB_OFFLINE: huggingface_hub freezes its settings at first import, so setting
    it here would leak into every later test of the session.)
    """
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_CACHE", str(paths.root / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


__all__ = ["offline_hub", "ModelServer", "ScriptedGenerator", "write_corpus", "fill_pool", "wait_for"]
