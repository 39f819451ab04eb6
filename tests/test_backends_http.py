"""The HTTP generators against real servers on 127.0.0.1: both protocols, overloads, timeouts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from turing_tui.backends.base import GeneratorError, TweetGenerator
from turing_tui.backends.choose import GeneratorSpec, choose_generator, open_generator
from turing_tui.backends.http import ModelZooGenerator, OpenAIGenerator, clean_completion
from turing_tui.errors import UserError
from turing_tui.net import Backoff
from turing_tui.paths import Paths

from tests.gamekit import ModelServer, offline_hub

FAST = Backoff(retries=3, base=0.01, cap=0.05)


def test_modelzoo_protocol_shape_and_key() -> None:
    with ModelServer(api_key="s3cret") as server:
        gen = ModelZooGenerator(server.predict_url, api_key="s3cret", backoff=FAST)
        assert isinstance(gen, TweetGenerator)
        fakes = gen.generate(3)
        method, path, headers, body = server.requests[-1]
        assert (method, path) == ("POST", "/v1/models/tiny-vc/predict")
        assert headers["x-api-key"] == "s3cret"
        assert body["input"] == "<|endoftext|>" and body["min_length"] == 3 and body["num_return_sequences"] == 3
        assert [f.text for f in fakes] == [f"Served tweet {i}: shipping beats planning, every single week" for i in (1, 2, 3)]
        assert {(f.model, f.source) for f in fakes} == {("modelzoo:tiny-vc", "modelzoo")}
        assert fakes[0].sampling["temperature"] == 0.9
        gen.close()


def test_openai_protocol_discovers_the_model_and_sends_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURING_TUI_API_KEY", "env-key")
    with ModelServer(api_key="env-key", model="vc-scratch") as server:
        with OpenAIGenerator(server.url + "/v1", backoff=FAST) as gen:  # base URL with /v1 works too
            assert gen.model_id == "openai:vc-scratch"
            fakes = gen.generate(2)
        completions = [r for r in server.requests if r[1] == "/v1/completions"]
        _, _, headers, body = completions[0]
        assert headers["authorization"] == "Bearer env-key"
        assert body["model"] == "vc-scratch" and body["n"] == 2 and body["stop"] == ["<|endoftext|>"]
        assert body["prompt"] == "<|endoftext|>" and "top_k" not in body
        # The server ignored stop; the generator cuts at the end-of-tweet mark itself.
        assert all("ignored tail" not in f.text for f in fakes) and len(fakes) == 2


def test_429_with_retry_after_then_success() -> None:
    with ModelServer() as server:
        server.script.extend([(429, {"Retry-After": "0"}, 0.0), (503, {}, 0.0)])
        retries: list[tuple[int, float, str]] = []
        gen = OpenAIGenerator(server.url, model="tiny-vc", backoff=FAST, on_retry=lambda a, w, r: retries.append((a, w, r)))
        assert len(gen.generate(1)) == 1
        assert [r[2] for r in retries] == ["HTTP 429", "HTTP 503"]
        assert retries[0][1] == 0.0  # Retry-After honoured


def test_503_forever_is_one_sentence() -> None:
    with ModelServer() as server:
        server.script.extend([(503, {}, 0.0)] * 10)
        gen = ModelZooGenerator(server.predict_url, backoff=FAST)
        with pytest.raises(GeneratorError, match=r"kept failing.*HTTP 503.*Check that the server"):
            gen.generate(1)
        assert len(server.requests) == FAST.retries + 1


def test_timeouts_are_retried_then_reported() -> None:
    with ModelServer(delay=1.0) as server:
        gen = OpenAIGenerator(server.url, model="tiny-vc", timeout=0.2, backoff=Backoff(retries=1, base=0.01, cap=0.01))
        started = time.monotonic()
        with pytest.raises(GeneratorError, match="ReadTimeout"):
            gen.generate(1)
        assert time.monotonic() - started < 2.0
        assert len(server.requests) == 2


def test_wrong_key_and_wrong_url_say_what_to_do() -> None:
    with ModelServer(api_key="right") as server:
        with pytest.raises(GeneratorError, match="refused the API key.*--api-key"):
            ModelZooGenerator(server.predict_url, api_key="wrong", backoff=FAST).generate(1)
        with pytest.raises(GeneratorError, match="HTTP 404.*--endpoint"):
            ModelZooGenerator(server.url + "/v1/models/nope/predict", api_key="right", backoff=FAST).generate(1)
    with pytest.raises(GeneratorError, match="predict URL"):
        ModelZooGenerator("http://127.0.0.1:9/v1/completions")
    with pytest.raises(GeneratorError, match="not an http"):
        OpenAIGenerator("ftp://example.org")


def test_unreachable_server_is_reported(unused_port: int) -> None:
    gen = OpenAIGenerator(f"http://127.0.0.1:{unused_port}", model="m", backoff=FAST)
    with pytest.raises(GeneratorError, match="ConnectError"):
        gen.generate(1)


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_clean_completion() -> None:
    assert clean_completion("<|endoftext|> Hello  world &amp; all<|endoftext|>more") == "Hello world & all"
    assert clean_completion("<|endoftext|><|endoftext|>x y z") == "x y z"


def test_choose_generator(paths: Paths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    offline_hub(monkeypatch, paths)
    monkeypatch.delenv("TURING_TUI_API_KEY", raising=False)
    with pytest.raises(UserError, match=r"turing-tui train --category vc --from-scratch.*--endpoint"):
        choose_generator(paths, "vc")
    spec = choose_generator(paths, "vc", endpoint="http://h:1/v1/models/gpt2-vc/predict", api_key="k")
    assert spec == GeneratorSpec("modelzoo", "http://h:1/v1/models/gpt2-vc/predict", api_key="k")
    assert spec.model_id_hint() == "modelzoo:gpt2-vc"
    assert choose_generator(paths, "vc", endpoint="http://h:8000").kind == "openai"
    with pytest.raises(UserError, match="/predict"):
        choose_generator(paths, "vc", endpoint="http://h:8000", protocol="modelzoo")
    with pytest.raises(UserError, match="not both"):
        choose_generator(paths, "vc", endpoint="http://h:8000", model="x")
    with pytest.raises(UserError, match="No model at"):
        choose_generator(paths, "vc", model=str(tmp_path / "missing"))
    with ModelServer() as server:
        gen = open_generator(choose_generator(paths, "vc", endpoint=server.url), category="vc")
        assert gen.model_id == "openai:tiny-vc" and gen.generate(1)
        gen.close()


@pytest.mark.slow
def test_choose_prefers_the_newest_local_checkpoint(paths: Paths, tiny_checkpoint: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    target = paths.models_dir / "vc-tiny"
    shutil.copytree(tiny_checkpoint, target)
    spec = choose_generator(paths, "vc")
    assert spec.kind == "local" and Path(spec.source) == target.resolve()
    gen = open_generator(spec, category="vc")
    assert gen.model_id == spec.model_id_hint()
    gen.close()


@pytest.mark.slow
def test_few_shot_generator_prompts_a_base_model_with_real_tweets(tiny_checkpoint: Path) -> None:
    """The hub path with a local folder standing in for ``gpt2`` (same loading code)."""
    from turing_tui.backends.fewshot import FewShotGenerator, few_shot_prompt

    from turing_tui.model.generate import Sampling

    examples = [f"hire slowly {i}" for i in range(10)]
    prompt = few_shot_prompt(examples[:2], "vc")
    assert prompt.endswith("Tweet: hire slowly 1\nTweet:")
    # The tiny model reads 64 tokens: the generator fits as many shots as leave room to answer.
    gen = FewShotGenerator(examples, category="vc", base=str(tiny_checkpoint), sampling=Sampling(max_new_tokens=12), seed=1)
    assert gen.model_id == f"few-shot:{tiny_checkpoint}"
    fakes = gen.generate(3)
    assert all(f.source == "few-shot" and "\n" not in f.text for f in fakes)
    assert len(fakes) <= 3 and 1 <= gen._prompt()[1] < 6
    gen.close()
    with pytest.raises(GeneratorError, match="fetch the category first"):
        FewShotGenerator(["one"], category="vc", base=str(tiny_checkpoint))
