"""The real server on 127.0.0.1 with a real tiny GPT-2: both protocols, keys, caps, batching.

One server (uvicorn on a thread, a free port) is shared by the module; every test speaks
HTTP to it. The game's own HTTP generators play against it at the end.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from turing_tui.errors import UserError
from turing_tui.serve.app import Limits, create_app
from turing_tui.serve.batching import BatchPolicy, CompletionBatcher
from turing_tui.serve.server import BackgroundServer, check_exposure, is_loopback

KEY = "test-key-0123456789"
AUTH = {"x-api-key": KEY}
BEARER = {"authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def generator(tiny_checkpoint: Path):  # type: ignore[no-untyped-def]
    from turing_tui.model.generate import TextGenerator

    return TextGenerator.load(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def server(generator) -> Iterator[BackgroundServer]:  # type: ignore[no-untyped-def]
    # A small body cap so the oversize test needs only a small body; a wide batch window so
    # the concurrency test sees batching even on a loaded CI machine.
    app = create_app(
        generator,
        api_key=KEY,
        limits=Limits(max_body_bytes=16 * 1024, max_prompt_chars=1_000, max_new_tokens=64, max_n=8),
        policy=BatchPolicy(max_batch=32, max_wait_s=0.02),
    )
    with BackgroundServer(app) as running:
        yield running


@pytest.fixture
def client(server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def error_of(response: httpx.Response) -> str:
    return response.json()["error"]["message"]


# -- the two protocols -----------------------------------------------------------------------
def test_predict_answers_the_original_games_request(client: httpx.Client, generator) -> None:  # type: ignore[no-untyped-def]
    r = client.post(f"/v1/models/{generator.name}/predict", json={"input": "Founders", "min_length": 3}, headers=AUTH)
    assert r.status_code == 200, r.text
    output = r.json()["output"]
    assert len(output) == 1
    # Like a transformers pipeline, the text includes the prompt.
    assert output[0]["generated_text"].startswith("Founders")
    assert len(output[0]["generated_text"]) > len("Founders")


def test_predict_returns_n_sequences_and_honours_return_full_text(client: httpx.Client, generator) -> None:  # type: ignore[no-untyped-def]
    body = {"input": "Seed", "num_return_sequences": 3, "max_new_tokens": 12, "return_full_text": False, "do_sample": True}
    r = client.post(f"/v1/models/{generator.name}/predict", json=body, headers=BEARER)
    assert r.status_code == 200, r.text
    texts = [o["generated_text"] for o in r.json()["output"]]
    assert len(texts) == 3
    assert not all(t.startswith("Seed") for t in texts)


def test_openai_completions_shape(client: httpx.Client, generator) -> None:  # type: ignore[no-untyped-def]
    body = {"model": generator.name, "prompt": ["", "Investors"], "max_tokens": 20, "n": 2, "temperature": 0.8, "stop": ["\n"]}
    r = client.post("/v1/completions", json=body, headers=BEARER)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "text_completion" and data["model"] == generator.name
    assert data["id"].startswith("cmpl-")
    assert [c["index"] for c in data["choices"]] == [0, 1, 2, 3]
    assert all(c["finish_reason"] in ("stop", "length") and "\n" not in c["text"] for c in data["choices"])
    usage = data["usage"]
    assert usage["completion_tokens"] > 0 and usage["prompt_tokens"] >= 2
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_same_seed_same_text_and_greedy_is_deterministic(client: httpx.Client) -> None:
    seeded = {"prompt": "", "max_tokens": 16, "seed": 1234, "temperature": 1.0}
    a = client.post("/v1/completions", json=seeded, headers=BEARER).json()["choices"][0]["text"]
    b = client.post("/v1/completions", json=seeded, headers=BEARER).json()["choices"][0]["text"]
    assert a == b
    greedy = {"prompt": "Founders", "max_tokens": 16, "temperature": 0}
    c = client.post("/v1/completions", json=greedy, headers=BEARER).json()["choices"][0]["text"]
    d = client.post("/v1/completions", json=greedy, headers=BEARER).json()["choices"][0]["text"]
    assert c == d


def test_model_info_health_and_listing(client: httpx.Client, generator) -> None:  # type: ignore[no-untyped-def]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == generator.name and health["batching"] is True
    listed = client.get("/v1/models", headers=AUTH).json()
    assert [m["id"] for m in listed["data"]] == [generator.name]
    info = client.get(f"/v1/models/{generator.name}", headers=AUTH).json()
    assert info["state"]["name"] == "HEALTHY" and info["category"] == "vc"


# -- keys, caps and bad requests -----------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong-key-123"}, {"authorization": "Bearer nope-nope-nope"}, {"authorization": KEY}])
def test_wrong_or_missing_key_is_401_on_both_protocols(client: httpx.Client, generator, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    r1 = client.post(f"/v1/models/{generator.name}/predict", json={"input": ""}, headers=headers)
    r2 = client.post("/v1/completions", json={"prompt": ""}, headers=headers)
    r3 = client.get("/v1/models", headers=headers)
    for r in (r1, r2, r3):
        assert r.status_code == 401
        assert "API key" in error_of(r)
        assert KEY not in r.text


def test_unknown_model_is_404(client: httpx.Client) -> None:
    r = client.post("/v1/models/nobody/predict", json={"input": ""}, headers=AUTH)
    assert r.status_code == 404 and "nobody" in error_of(r)
    r = client.post("/v1/completions", json={"model": "nobody", "prompt": ""}, headers=AUTH)
    assert r.status_code == 404
    assert client.get("/v1/models/nobody", headers=AUTH).status_code == 404
    assert client.get("/no/such/route").status_code == 404


def test_oversize_prompt_and_body(client: httpx.Client, generator) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/completions", json={"prompt": "x" * 1_001}, headers=AUTH)
    assert r.status_code == 400 and "1001 characters" in error_of(r)
    r = client.post(f"/v1/models/{generator.name}/predict", json={"input": "y" * 1_001}, headers=AUTH)
    assert r.status_code == 400 and "'input'" in error_of(r)
    big = b'{"prompt": "' + b"z" * 20_000 + b'"}'
    r = client.post("/v1/completions", content=big, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 413 and "limit" in error_of(r)

    # Without a Content-Length (chunked), the cap is enforced while reading.
    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(40):
            yield b"z" * 1024
        yield b'"}'

    r = client.post("/v1/completions", content=chunks(), headers=AUTH)
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"prompt": "", "max_tokens": 65}, "'max_tokens' must be between"),
        ({"prompt": "", "n": 9}, "'n' must be between"),
        ({"prompt": "", "temperature": "hot"}, "'temperature' must be a number"),
        ({"prompt": "", "stream": True}, "Streaming is not supported"),
        ({"prompt": "", "colour": "blue"}, "Unknown parameter 'colour'"),
        ({"prompt": 42}, "'prompt' must be"),
        ({"max_tokens": 5}, "'prompt' is required"),
        ({"prompt": "", "top_p": 0}, "top-p must be above 0"),
        ({"prompt": "", "stop": ["a", "b", "c", "d", "e"]}, "'stop' has 5 entries"),
    ],
)
def test_bad_parameters_say_what_was_wrong(client: httpx.Client, body: dict, words: str) -> None:
    r = client.post("/v1/completions", json=body, headers=AUTH)
    assert r.status_code == 400
    assert words in error_of(r)


def test_bad_json_and_wrong_method(client: httpx.Client, generator) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/completions", content=b"{not json", headers=AUTH)
    assert r.status_code == 400 and "not valid JSON" in error_of(r)
    r = client.post("/v1/completions", json=["a list"], headers=AUTH)
    assert r.status_code == 400 and "JSON object" in error_of(r)
    r = client.post(f"/v1/models/{generator.name}/predict", json={"max_length": 5}, headers=AUTH)
    assert r.status_code == 400 and "'input' is required" in error_of(r)
    assert client.get("/v1/completions", headers=AUTH).status_code == 405


def test_a_request_the_model_refuses_does_not_take_the_server_down(client: httpx.Client) -> None:
    # The tiny model reads 64 positions: a 900-character prompt is within the character cap
    # but far over the context, so the model itself refuses it.
    long_prompt = " ".join(["startups"] * 100)[:900]
    r = client.post("/v1/completions", json={"prompt": long_prompt, "max_tokens": 8}, headers=AUTH)
    assert r.status_code == 400 and "at most 64" in error_of(r)
    r = client.post("/v1/completions", json={"prompt": "", "max_tokens": 8}, headers=AUTH)
    assert r.status_code == 200
    assert client.get("/health").json()["status"] == "ok"


# -- concurrency and batching ----------------------------------------------------------------
def test_fifty_concurrent_requests_are_all_answered_in_shared_batches(server: BackgroundServer, generator) -> None:  # type: ignore[no-untyped-def]
    before = httpx.get(server.url + "/health").json()["stats"]

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=60) as c:
            jobs = []
            for i in range(50):
                if i % 2:
                    jobs.append(c.post("/v1/completions", json={"prompt": "", "max_tokens": 12}))
                else:
                    jobs.append(c.post(f"/v1/models/{generator.name}/predict", json={"input": "", "max_new_tokens": 12}))
            return await asyncio.gather(*jobs)

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * 50
    after = httpx.get(server.url + "/health").json()["stats"]
    calls = after["batches"] - before["batches"]
    # 50 requests sharing one sampling setting: far fewer generate calls than requests.
    assert after["requests"] - before["requests"] == 50
    assert calls < 25, after
    assert after["largest_batch"] > 1


def test_batcher_groups_by_sampling_runs_seeded_alone_and_isolates_failures() -> None:
    from turing_tui.model.generate import Completion, Sampling

    calls: list[tuple[tuple[str, ...], Sampling]] = []
    lock = threading.Lock()

    def complete(prompts: list[str], sampling: Sampling, n: int, stop: tuple[str, ...] | None) -> list[list[Completion]]:
        if "boom" in prompts:
            raise RuntimeError("this prompt breaks the model")
        with lock:
            calls.append((tuple(prompts), sampling))
        time.sleep(0.01)
        return [[Completion(f"{p}/{sampling.temperature}/{k}", "stop", 1) for k in range(n)] for p in prompts]

    async def main() -> list[object]:
        batcher = CompletionBatcher(complete, BatchPolicy(max_batch=8, max_wait_s=0.05))
        await batcher.start()
        try:
            jobs = [batcher.submit([f"p{i}"], Sampling(temperature=0.5 if i % 2 else 1.0)) for i in range(12)]
            jobs.append(batcher.submit(["s1"], Sampling(seed=7)))
            jobs.append(batcher.submit(["s2"], Sampling(seed=7)))
            jobs.append(batcher.submit(["boom"], Sampling(temperature=0.5)))
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            await batcher.close()

    results = asyncio.run(main())
    for i in range(12):
        temperature = 0.5 if i % 2 else 1.0
        assert results[i][0][0].text == f"p{i}/{temperature}/0"  # type: ignore[index]
    assert isinstance(results[-1], RuntimeError)  # only the bad request failed
    for prompts, sampling in calls:
        assert len(prompts) <= 8
        if sampling.seed is not None:
            assert len(prompts) == 1  # seeded requests never share a call
    # Same settings shared calls: 12 requests in two settings took far fewer than 12 calls.
    unseeded = [c for c in calls if c[1].seed is None]
    assert len(unseeded) <= 6
    assert all(len({s.temperature for p, s in calls if p == prompts}) == 1 for prompts, _ in calls)


def test_batching_off_runs_one_request_per_call() -> None:
    from turing_tui.model.generate import Completion, Sampling

    sizes: list[int] = []

    def complete(prompts, sampling, n, stop):  # type: ignore[no-untyped-def]
        sizes.append(len(prompts))
        return [[Completion(p, "stop", 1)] for p in prompts]

    async def main() -> None:
        batcher = CompletionBatcher(complete, BatchPolicy(max_batch=1, max_wait_s=0))
        await batcher.start()
        await asyncio.gather(*[batcher.submit([str(i)], Sampling()) for i in range(10)])
        await batcher.close()

    asyncio.run(main())
    assert sizes == [1] * 10


# -- exposure rules --------------------------------------------------------------------------
def test_binding_beyond_loopback_needs_a_key() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    check_exposure("127.0.0.1", None)
    check_exposure("0.0.0.0", "long-enough-key")
    with pytest.raises(UserError, match="--api-key"):
        check_exposure("0.0.0.0", None)
    with pytest.raises(UserError, match="too short"):
        check_exposure("127.0.0.1", "abc")


def test_cli_refuses_an_open_bind_without_a_key(tiny_checkpoint: Path, paths) -> None:  # type: ignore[no-untyped-def]
    r = subprocess.run(
        [sys.executable, "-m", "turing_tui", "serve", "--model", str(tiny_checkpoint), "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=60, env={**__import__("os").environ, "TURING_TUI_API_KEY": ""},
    )
    assert r.returncode != 0
    assert r.stderr.startswith("Error: ") and "--api-key" in r.stderr and "Traceback" not in r.stderr


# -- the game against serve -----------------------------------------------------------------------
def test_the_games_http_generators_play_against_serve(server: BackgroundServer, generator) -> None:  # type: ignore[no-untyped-def]
    from turing_tui.backends.http import ModelZooGenerator, OpenAIGenerator

    with ModelZooGenerator(f"{server.url}/v1/models/{generator.name}/predict", api_key=KEY) as zoo:
        fakes = zoo.generate(4)
        assert fakes and all(f.source == "modelzoo" and f.text for f in fakes)
        assert all(not f.text.startswith("<|endoftext|>") for f in fakes)
    with OpenAIGenerator(server.url, api_key=KEY) as openai:
        assert openai.model_id == f"openai:{generator.name}"  # found via GET /v1/models
        fakes = openai.generate(3)
        assert fakes and all(f.source == "openai" and f.text for f in fakes)
        # Our server says what the model was made from, so the reveal can too.
        assert generator.base and all(f.base == generator.base for f in fakes)
    with OpenAIGenerator(server.url, api_key="wrong-key-0000") as bad:
        from turing_tui.backends.base import GeneratorError

        with pytest.raises(GeneratorError, match="refused the API key"):
            bad.generate(1)


def test_cli_says_when_the_port_is_taken(tiny_checkpoint: Path, paths) -> None:  # type: ignore[no-untyped-def]
    import socket

    from click.testing import CliRunner

    from turing_tui.cli import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--model", str(tiny_checkpoint), "--port", str(port)])
    assert result.exit_code == 2
    assert f"Cannot listen on 127.0.0.1:{port}" in result.output and "Traceback" not in result.output


def test_a_full_queue_answers_503_with_retry_after(generator) -> None:  # type: ignore[no-untyped-def]
    # Requests wait while the model thread is busy: with room for two waiting requests,
    # the rest are turned away at once (503 + Retry-After) instead of piling up.
    release = threading.Event()

    class SlowModel:
        name = generator.name
        metadata = generator.metadata

        def complete(self, prompts, sampling, *, n=1, stop=None):  # type: ignore[no-untyped-def]
            release.wait(10)
            return generator.complete(prompts, sampling, n=n, stop=stop)

    app = create_app(SlowModel(), policy=BatchPolicy(max_batch=1, max_wait_s=0, max_queue=2))  # type: ignore[arg-type]
    with BackgroundServer(app) as running:

        async def fire() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=running.url, timeout=30) as c:
                jobs = [asyncio.create_task(c.post("/v1/completions", json={"prompt": "", "max_tokens": 4})) for _ in range(6)]
                await asyncio.sleep(0.5)
                release.set()
                return await asyncio.gather(*jobs)

        responses = asyncio.run(fire())
    codes = sorted(r.status_code for r in responses)
    busy = [r for r in responses if r.status_code == 503]
    # Two wait in the queue (a third may already be on the model thread); the rest are refused.
    assert codes.count(200) in (2, 3) and codes.count(503) == 6 - codes.count(200), codes
    assert all(r.headers["retry-after"] == "1" and "busy" in error_of(r) for r in busy)


def test_a_game_is_played_against_serve(server: BackgroundServer, generator, paths) -> None:  # type: ignore[no-untyped-def]
    # The real game loop: human tweets from a corpus, machine tweets pooled from our server
    # by the game's OpenAI generator, fair rounds, each answer on the record.
    from tests.gamekit import write_corpus
    from turing_tui.backends.http import OpenAIGenerator
    from turing_tui.corpus.load import load_category
    from turing_tui.game.rounds import MACHINE, FakeSupply, RoundDealer
    from turing_tui.store.db import Store

    write_corpus(paths, "vc", n=30)
    store = Store(paths.db_path)
    supply = FakeSupply(store, "vc", lambda: OpenAIGenerator(server.url, api_key=KEY), low_water=4, batch=6).start()
    try:
        dealer = RoundDealer(store, load_category(paths, "vc"), supply, "tester", seed=3)
        machine_rounds = []
        for _ in range(12):
            round_ = dealer.deal(timeout=30)
            assert round_ is not None, supply.failed or supply.status
            dealer.answer(round_, "human", 900)
            if round_.truth == MACHINE:
                machine_rounds.append(round_)
            if len(machine_rounds) >= 2:
                break
        assert machine_rounds, "twelve fair coins never picked the machine"
        for r in machine_rounds:
            assert r.model_id == f"openai:{generator.name}" and r.fake is not None and r.fake.source == "openai"
        assert dealer.score.total >= len(machine_rounds) and dealer.score.machine_rounds == len(machine_rounds)
        assert len(store.seen_tweet_ids("tester", "vc")) == dealer.score.total - len(machine_rounds)
    finally:
        supply.close()
        store.close()
