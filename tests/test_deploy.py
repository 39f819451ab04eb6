"""Deploy targets against real servers on 127.0.0.1: local serve, a fake Model Zoo, a fake Hub.

The fakes are small Starlette apps speaking just the HTTP the targets use (Model Zoo's
create / upload / start / state flow; the Hub calls ``huggingface_hub`` makes for
``whoami``, ``create_repo`` and ``create_commit``), run by uvicorn on a free port. The
local target starts a real background ``serve`` process with a real tiny model.
"""

from __future__ import annotations

import base64
import json
import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from turing_tui.errors import UserError
from turing_tui.net import Backoff
from turing_tui.serve.events import DeployCancelled, Deployed, FileUploaded, StateChanged
from turing_tui.serve.modelzoo import ModelZooConfig, checkpoint_files, deploy_modelzoo
from turing_tui.serve.server import BackgroundServer

ZOO_KEY = "zoo-key-123456"
HF_TOKEN = "hf_faketoken123456"
FAST = Backoff(retries=2, base=0.01, cap=0.05)


# -- a fake Model Zoo -------------------------------------------------------------------------
@dataclass
class FakeZoo:
    """Model Zoo's REST flow with switchable failures."""

    mode: str = "ok"  # ok | error | stall | upload-fails
    healthy_after: int = 2  # polls in STARTING before HEALTHY
    flaky_create: bool = False  # the first create answers 503
    created: dict[str, Any] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    polls: int = 0
    started: bool = False
    base: str = ""

    def app(self) -> Starlette:
        async def create(request: Request) -> Response:
            if request.headers.get("x-api-key") != ZOO_KEY:
                return JSONResponse({"message": "bad key"}, 401)
            if self.flaky_create:
                self.flaky_create = False
                return JSONResponse({"message": "try again"}, 503, headers={"retry-after": "0"})
            body = await request.json()
            self.created = body
            name = body["model_name"]
            return JSONResponse({"upload_urls": {f: f"{self.base}/s3/{name}/{f}?sig=abc" for f in body["model_files"]}})

        async def upload(request: Request) -> Response:
            if self.mode == "upload-fails":
                return Response("<Error>SignatureDoesNotMatch</Error>", 403)
            assert "x-api-key" not in request.headers  # presigned: our key never goes there
            data = await request.body()
            assert int(request.headers["content-length"]) == len(data)
            self.uploads[request.path_params["file"]] = data
            return Response(status_code=200)

        async def start(request: Request) -> Response:
            self.started = True
            return JSONResponse({})

        async def state(request: Request) -> Response:
            if request.headers.get("x-api-key") != ZOO_KEY:
                return JSONResponse({"message": "bad key"}, 401)
            self.polls += 1
            if self.mode == "error" and self.polls > 1:
                return JSONResponse({"state": {"name": "ERROR", "description": "out of memory loading weights"}})
            if self.mode == "ok" and self.polls > self.healthy_after:
                return JSONResponse({"state": {"name": "HEALTHY", "description": ""}})
            return JSONResponse({"state": {"name": "STARTING", "description": "pulling image"}})

        async def predict(request: Request) -> Response:
            if request.headers.get("x-api-key") != ZOO_KEY:
                return JSONResponse({"message": "bad key"}, 401)
            body = await request.json()
            return JSONResponse({"output": [{"generated_text": body["input"] + " Hello from the zoo."}]})

        return Starlette(routes=[
            Route("/v1/models/create", create, methods=["POST"]),
            Route("/v1/models/{name}/predict", predict, methods=["POST"]),
            Route("/s3/{name}/{file:path}", upload, methods=["PUT"]),
            Route("/v1/models/{name}/start", start, methods=["POST"]),
            Route("/v1/models/{name}", state, methods=["GET"]),
        ])


@pytest.fixture
def zoo() -> Iterator[FakeZoo]:
    fake = FakeZoo()
    with BackgroundServer(fake.app()) as server:
        fake.base = server.url
        yield fake


@pytest.fixture
def checkpoint(tiny_checkpoint: Path, paths) -> Path:  # type: ignore[no-untyped-def]
    """A private copy of the tiny checkpoint under the data root, with a trainer state to skip."""
    dest = paths.models_dir / tiny_checkpoint.name
    shutil.copytree(tiny_checkpoint, dest)
    (dest / "trainer" / "checkpoint-5").mkdir(parents=True)
    (dest / "trainer" / "checkpoint-5" / "optimizer.pt").write_bytes(b"not for upload")
    return dest


def zoo_config(zoo: FakeZoo, key: str = ZOO_KEY) -> ModelZooConfig:
    return ModelZooConfig(base_url=zoo.base + "/v1/", api_key=key)


def test_modelzoo_deploy_uploads_every_file_starts_and_waits_until_healthy(zoo: FakeZoo, checkpoint: Path) -> None:
    zoo.flaky_create = True  # a 503 on create is retried
    events: list[Any] = []
    url = deploy_modelzoo(checkpoint, "vc-tiny", config=zoo_config(zoo), poll_s=0.05, timeout=10, on_event=events.append, backoff=FAST)
    assert url == f"{zoo.base}/v1/models/vc-tiny/predict"
    files = sorted(p.relative_to(checkpoint).as_posix() for p in checkpoint_files(checkpoint))
    assert "model.safetensors" in files and not any(f.startswith("trainer/") for f in files)
    assert zoo.created["model_files"] == files and zoo.created["framework"] == "TRANSFORMERS"
    assert zoo.created["transformers_config"] == {"pipeline_class": "TextGenerationPipeline"}
    for name in files:
        assert zoo.uploads[name] == (checkpoint / name).read_bytes()
    done = {e.file for e in events if isinstance(e, FileUploaded) and e.sent == e.total}
    assert done == set(files)
    assert [e.state for e in events if isinstance(e, StateChanged)] == ["STARTING", "HEALTHY"]
    assert zoo.started and isinstance(events[-1], Deployed) and events[-1].url == url


def test_modelzoo_error_state_is_one_sentence(zoo: FakeZoo, checkpoint: Path) -> None:
    zoo.mode = "error"
    with pytest.raises(UserError, match="out of memory loading weights"):
        deploy_modelzoo(checkpoint, "vc-tiny", config=zoo_config(zoo), poll_s=0.05, timeout=10, backoff=FAST)


def test_modelzoo_stalled_start_times_out(zoo: FakeZoo, checkpoint: Path) -> None:
    zoo.mode = "stall"
    with pytest.raises(UserError, match=r"not healthy after 1 s \(last state STARTING\)"):
        deploy_modelzoo(checkpoint, "vc-tiny", config=zoo_config(zoo), poll_s=0.05, timeout=0.6, backoff=FAST)
    assert zoo.polls >= 3


def test_modelzoo_failed_upload_names_the_file(zoo: FakeZoo, checkpoint: Path) -> None:
    zoo.mode = "upload-fails"
    with pytest.raises(UserError, match=r"Uploading \S+ failed with HTTP 403: <Error>SignatureDoesNotMatch"):
        deploy_modelzoo(checkpoint, "vc-tiny", config=zoo_config(zoo), backoff=FAST)
    assert not zoo.started


def test_modelzoo_wrong_or_missing_key(zoo: FakeZoo, checkpoint: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="refused the API key"):
        deploy_modelzoo(checkpoint, "vc-tiny", config=zoo_config(zoo, key="wrong"), backoff=FAST)
    monkeypatch.delenv("MODELZOO_API_KEY", raising=False)
    with pytest.raises(UserError, match="No Model Zoo API key"):
        deploy_modelzoo(checkpoint, "vc-tiny", config=ModelZooConfig.from_env(config_file=tmp_path / "none.json"))
    # ~/.modelzoo/config.json is read when the environment says nothing.
    stored = tmp_path / "config.json"
    stored.write_text(json.dumps({"api_key": "from-file"}))
    monkeypatch.setenv("MODELZOO_BASE_API_URL", "http://127.0.0.1:9/v1")
    config = ModelZooConfig.from_env(config_file=stored)
    assert config == ModelZooConfig(base_url="http://127.0.0.1:9/v1/", api_key="from-file")


def test_modelzoo_deploy_can_be_cancelled(zoo: FakeZoo, checkpoint: Path) -> None:
    cancel = threading.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, FileUploaded) and event.sent > 0:
            cancel.set()

    with pytest.raises(DeployCancelled):
        deploy_modelzoo(checkpoint, "vc-tiny", config=zoo_config(zoo), on_event=on_event, cancel=cancel, backoff=FAST)
    assert not zoo.started


def test_cli_modelzoo_deploy(zoo: FakeZoo, checkpoint: Path, paths, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from turing_tui.cli import cli

    monkeypatch.setenv("MODELZOO_BASE_API_URL", zoo.base + "/v1")
    monkeypatch.setenv("MODELZOO_API_KEY", ZOO_KEY)
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(paths.root), "deploy", "--target", "modelzoo", "--model", "vc-tiny", "--poll", "0.05", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["url"] == f"{zoo.base}/v1/models/vc-tiny/predict"
    status = runner.invoke(cli, ["--home", str(paths.root), "deploy", "status", "--target", "modelzoo", "--name", "vc-tiny", "--json"])
    assert status.exit_code == 0 and json.loads(status.stdout)["state"] == "HEALTHY"
    zoo.mode, zoo.polls = "error", 0
    result = runner.invoke(cli, ["--home", str(paths.root), "deploy", "--target", "modelzoo", "--model", "vc-tiny", "--poll", "0.05"])
    assert result.exit_code != 0
    assert "Error: Model Zoo could not start vc-tiny: out of memory" in result.output
    assert "Traceback" not in result.output


# -- a fake Hugging Face Hub -------------------------------------------------------------------
@dataclass
class FakeHub:
    """The Hub endpoints huggingface_hub calls for whoami, create_repo and create_commit."""

    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    base: str = ""

    def app(self) -> Starlette:
        def authorised(request: Request) -> bool:
            return request.headers.get("authorization") == f"Bearer {HF_TOKEN}"

        def denied() -> Response:
            return JSONResponse({"error": "Invalid credentials in Authorization header"}, 401)

        async def whoami(request: Request) -> Response:
            self.calls.append("whoami")
            return JSONResponse({"name": "tester", "type": "user"}) if authorised(request) else denied()

        async def create(request: Request) -> Response:
            self.calls.append("create")
            if not authorised(request):
                return denied()
            body = await request.json()
            repo = f"{body.get('organization') or 'tester'}/{body['name']}"
            if repo in self.repos:
                return JSONResponse({"error": "You already created this model repo", "url": f"{self.base}/{repo}"}, 409)
            self.repos[repo] = body
            return JSONResponse({"url": f"{self.base}/{repo}", "name": repo})

        async def repo_info(request: Request) -> Response:
            repo = f"{request.path_params['owner']}/{request.path_params['name']}"
            if not authorised(request):
                return denied()
            return JSONResponse({"id": repo, "sha": "0" * 40, "private": True}) if repo in self.repos else JSONResponse({"error": "Repository not found"}, 404)

        async def preupload(request: Request) -> Response:
            self.calls.append("preupload")
            if not authorised(request):
                return denied()
            body = await request.json()
            # "regular": files travel inside the commit, base64 (no LFS/Xet storage needed).
            return JSONResponse({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in body["files"]]})

        async def commit(request: Request) -> Response:
            self.calls.append("commit")
            if not authorised(request):
                return denied()
            repo = f"{request.path_params['owner']}/{request.path_params['name']}"
            stored = self.files.setdefault(repo, {})
            for line in (await request.body()).splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    stored[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            return JSONResponse({"commitUrl": f"{self.base}/{repo}/commit/{'1' * 40}", "commitOid": "1" * 40, "pullRequestUrl": None})

        async def validate_yaml(request: Request) -> Response:
            # The Hub checks a model card's front matter before a commit that adds README.md.
            self.calls.append("validate-yaml")
            content = (await request.json())["content"]
            ok = content.startswith("---\n") and "\n---\n" in content[4:]
            return JSONResponse({"errors": [] if ok else [{"message": "no front matter"}], "warnings": []}, 200 if ok else 400)

        return Starlette(routes=[
            Route("/api/validate-yaml", validate_yaml, methods=["POST"]),
            Route("/api/whoami-v2", whoami, methods=["GET"]),
            Route("/api/repos/create", create, methods=["POST"]),
            Route("/api/models/{owner}/{name}", repo_info, methods=["GET"]),
            Route("/api/models/{owner}/{name}/revision/{rev:path}", repo_info, methods=["GET"]),
            Route("/api/models/{owner}/{name}/preupload/{rev}", preupload, methods=["POST"]),
            Route("/api/models/{owner}/{name}/commit/{rev}", commit, methods=["POST"]),
        ])


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    fake = FakeHub()
    with BackgroundServer(fake.app()) as server:
        fake.base = server.url
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield fake


def test_hf_push_creates_the_repo_and_commits_checkpoint_and_card(hub: FakeHub, checkpoint: Path) -> None:
    from turing_tui.serve.hub import push_to_hub

    events: list[Any] = []
    url = push_to_hub(checkpoint, "vc-gpt2", token=HF_TOKEN, on_event=events.append)
    assert url == f"{hub.base}/tester/vc-gpt2"
    assert hub.calls[:2] == ["whoami", "create"] and "commit" in hub.calls and "validate-yaml" in hub.calls
    assert hub.repos["tester/vc-gpt2"]["visibility"] == "private" and hub.repos["tester/vc-gpt2"]["type"] == "model"
    stored = hub.files["tester/vc-gpt2"]
    for path in checkpoint_files(checkpoint):
        rel = path.relative_to(checkpoint).as_posix()
        assert stored[rel] == path.read_bytes()
    assert not any(k.startswith("trainer/") for k in stored)
    card = stored["README.md"].decode()
    assert "vllm serve tester/vc-gpt2" in card and "--protocol openai" in card
    assert isinstance(events[-1], Deployed) and any("vllm serve tester/vc-gpt2" in h for h in events[-1].hints)
    # A second push to the same repo is fine (exist_ok).
    push_to_hub(checkpoint, "tester/vc-gpt2", token=HF_TOKEN)


def test_hf_push_with_a_bad_or_missing_token(hub: FakeHub, checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from turing_tui.serve.hub import push_to_hub

    with pytest.raises(UserError, match="refused the token"):
        push_to_hub(checkpoint, "tester/vc-gpt2", token="hf_wrong")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(UserError, match="set HF_TOKEN"):
        push_to_hub(checkpoint, "tester/vc-gpt2")


# -- the local target ----------------------------------------------------------------------------
def run_cli(paths, *args: str) -> Any:  # type: ignore[no-untyped-def]
    """The real CLI in this process (the server it starts is still a real child process)."""
    from turing_tui.cli import cli

    return CliRunner(env={"TURING_TUI_API_KEY": None}).invoke(cli, ["--home", str(paths.root), *args])


@pytest.mark.slow
def test_local_deploy_serves_the_game_and_stops(checkpoint: Path, paths) -> None:  # type: ignore[no-untyped-def]
    from turing_tui.backends.choose import choose_generator, open_generator
    from turing_tui.serve.deploy import local_api_key, local_endpoint, local_status, run_file

    assert local_endpoint(paths) is None
    started = run_cli(paths, "deploy", "--target", "local", "--model", "vc-tiny", "--json")
    try:
        assert started.exit_code == 0, started.output
        info = json.loads(started.stdout)
        assert info["url"].startswith("http://127.0.0.1:") and info["protocol"] == "openai"
        # The record holds the key, so only its owner may read it.
        assert stat.S_IMODE(run_file(paths).stat().st_mode) == 0o600
        endpoint = local_endpoint(paths)
        assert endpoint is not None
        url, protocol, key = endpoint
        assert (url, protocol) == (info["url"], "openai") and key
        assert local_api_key(paths, url) == key and local_api_key(paths, url + "/v1/models/vc-tiny/predict") == key
        assert local_api_key(paths, "http://127.0.0.1:1") is None
        assert httpx.post(url + "/v1/completions", json={"prompt": ""}).status_code == 401
        # The game's default: with no checkpoint of this category, the local endpoint.
        spec = choose_generator(paths, "elsewhere", allow_hub=False)
        assert (spec.kind, spec.source, spec.api_key) == ("openai", url, key)
        generator = open_generator(spec, category="elsewhere")
        try:
            fakes = generator.generate(2)
        finally:
            generator.close()
        assert fakes and all(f.source == "openai" for f in fakes)

        again = run_cli(paths, "deploy", "--target", "local", "--model", "vc-tiny")
        assert again.exit_code != 0 and "already runs" in again.stderr

        status = run_cli(paths, "deploy", "status", "--json")
        assert status.exit_code == 0
        report = json.loads(status.stdout)
        assert report["state"] == "healthy" and "api_key" not in report["server"]
        assert report["health"]["stats"]["requests"] >= 1
    finally:
        stopped = run_cli(paths, "deploy", "stop")
    assert stopped.exit_code == 0 and "Stopped" in stopped.stdout
    assert local_status(paths).state == "stopped" and local_endpoint(paths) is None
    status = run_cli(paths, "deploy", "status")
    assert status.exit_code == 1 and "stopped" in status.stdout


@pytest.mark.slow
def test_local_deploy_of_a_broken_checkpoint_reports_why(paths) -> None:  # type: ignore[no-untyped-def]
    from turing_tui.serve.deploy import local_status, start_local

    broken = paths.models_dir / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{}")
    with pytest.raises(UserError, match="exited with code"):
        start_local(paths, str(broken), timeout=60)
    assert local_status(paths).state == "stopped"


def test_cli_deploy_with_a_missing_model_is_one_sentence(paths) -> None:  # type: ignore[no-untyped-def]
    from turing_tui.cli import cli

    result = CliRunner().invoke(cli, ["--home", str(paths.root), "deploy", "--target", "hf", "--model", "./nowhere"])
    assert result.exit_code != 0 and result.output.startswith("Error: ") and "Traceback" not in result.output


# -- the Deploy screen -------------------------------------------------------------------------
async def wait_for(pilot: Any, condition: Any, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the screen"
        await pilot.pause(0.05)


async def test_deploy_screen_deploys_to_model_zoo_and_tries_it(zoo: FakeZoo, checkpoint: Path, paths, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Log, ProgressBar, Select, Static

    from turing_tui.ui.app import build_app
    from turing_tui.ui.screens.deploy import DeployScreen

    monkeypatch.setenv("MODELZOO_BASE_API_URL", zoo.base + "/v1")
    monkeypatch.setenv("MODELZOO_API_KEY", ZOO_KEY)
    app = build_app(paths=paths, screen="deploy")
    async with app.run_test(size=(110, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, DeployScreen)
        await wait_for(pilot, lambda: isinstance(screen.query_one("#checkpoint", Select).value, str))
        assert screen.query_one("#checkpoint", Select).value == str(checkpoint)
        screen.query_one("#target", Select).value = "modelzoo"
        await pilot.pause()
        assert screen.query_one("#zoo-options").has_class("shown")
        # Poll fast: the screen passes no poll interval, so shorten the fake's start instead.
        zoo.healthy_after = 0
        await pilot.click("#deploy")
        await wait_for(pilot, lambda: not screen.deploying)
        log = "\n".join(screen.query_one("#log", Log).lines)
        assert "Uploading" in log and "HEALTHY" in log and f"{zoo.base}/v1/models/vc-tiny/predict" in log, log
        assert screen.query_one("#progress", ProgressBar).percentage == 1.0
        assert set(zoo.uploads) == {p.relative_to(checkpoint).as_posix() for p in checkpoint_files(checkpoint)}
        await pilot.press("t")
        tweet = screen.query_one("#tweet", Static)
        await wait_for(pilot, lambda: "Hello from the zoo." in str(tweet.render()))


async def test_deploy_screen_shows_a_failed_deploy(zoo: FakeZoo, checkpoint: Path, paths, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Select, Static

    from turing_tui.ui.app import build_app
    from turing_tui.ui.screens.deploy import DeployScreen

    zoo.mode = "upload-fails"
    monkeypatch.setenv("MODELZOO_BASE_API_URL", zoo.base + "/v1")
    monkeypatch.setenv("MODELZOO_API_KEY", ZOO_KEY)
    app = build_app(paths=paths, screen="deploy", target="modelzoo")
    async with app.run_test(size=(110, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, DeployScreen)
        await wait_for(pilot, lambda: isinstance(screen.query_one("#checkpoint", Select).value, str))
        await pilot.press("d")
        await wait_for(pilot, lambda: not screen.deploying)
        assert "failed with HTTP 403" in str(screen.query_one("#phase", Static).render())
        assert not screen.query_one("#deploy").disabled
        assert not zoo.started
        # Nothing deployed, no local server: "try it" says so instead of failing.
        await pilot.press("t")
        assert "Deploy a model" in str(screen.query_one("#tweet", Static).render())
