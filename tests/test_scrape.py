"""Scraping against fake Bluesky, Mastodon and X servers on 127.0.0.1 (real HTTP)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from turing_tui.cli import cli
from turing_tui.corpus.load import load_category
from turing_tui.corpus.twint import read_folder
from turing_tui.errors import UserError
from turing_tui.net import Backoff
from turing_tui.paths import Paths
from turing_tui.scrape.backends import html_to_text
from turing_tui.scrape.run import HandleProgressed, ScrapeSummary, plan_scrape, run_scrape
from turing_tui.scrape.sources import Source, parse_sources

sys.path.insert(0, str(Path(__file__).parent))
from fakes_social import X_TOKEN, FakeSocial  # noqa: E402

FAST = Backoff(retries=2, base=0.001, cap=0.01)  # real policy, tiny waits


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSocial]:
    with FakeSocial() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeSocial, monkeypatch: pytest.MonkeyPatch) -> FakeSocial:
    server.accounts.clear()
    server.requests.clear()
    server.delay = 0.0
    for var in ("TURING_TUI_BLUESKY_URL", "TURING_TUI_MASTODON_URL", "TURING_TUI_X_URL"):
        monkeypatch.setenv(var, server.url)
    monkeypatch.setenv("X_BEARER_TOKEN", X_TOKEN)
    return server


def scrape(paths: Paths, lines: str, *, category: str = "mine", events: list[HandleProgressed] | None = None, **options: object) -> ScrapeSummary:
    (paths.sources_dir / f"{category}.txt").write_text(textwrap.dedent(lines))
    stop = options.pop("should_stop", None)
    plan = plan_scrape(paths, category, backoff=FAST, **options)  # type: ignore[arg-type]
    return run_scrape(paths, plan, on_progress=events.append if events is not None else None, should_stop=stop)  # type: ignore[arg-type]


def row(summary: ScrapeSummary, handle: str) -> dict:
    return next(h.as_dict() for h in summary.handles if h.source.handle == handle)


def stored(paths: Paths, category: str = "mine") -> list:
    return list(read_folder(paths.category_dir(category)))


# -- handle lists -------------------------------------------------------------------------


def test_handle_list_prefixes_comments_and_bare_lines() -> None:
    text = "# mine\nbsky:Alice.bsky.social\nmastodon:@carol@fake.social  # a comment\nx:@jack\ntwint:jack\nbob\n\nbob\n"
    assert parse_sources(text, default_backend="bluesky") == [
        Source("bluesky", "alice.bsky.social"),
        Source("mastodon", "carol@fake.social"),
        Source("x", "jack"),
        Source("twint", "jack"),
        Source("bluesky", "bob.bsky.social"),
    ]
    assert parse_sources("bob\n") == [Source("x", "bob")]  # bare lines are Twitter handles
    with pytest.raises(UserError, match="line 2: unknown prefix 'insta:'"):
        parse_sources("ok\ninsta:bob\n")
    with pytest.raises(UserError, match="line 1: 'not a handle!' is not a Twitter handle"):
        parse_sources("not a handle!\n")


def test_bare_twitter_handles_without_a_token_stop_before_any_request(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    (paths.sources_dir / "vc.txt").write_text("# published list\nandrewchen\ngarrytan\n")
    with pytest.raises(UserError, match="bare Twitter handles.*X_BEARER_TOKEN is not set"):
        plan_scrape(paths, "vc")
    with pytest.raises(UserError, match="no handle list"):
        plan_scrape(paths, "nolist")


# -- Bluesky ------------------------------------------------------------------------------


def test_bluesky_two_pages_then_end_drops_repost_reply_and_link(paths: Paths, fake: FakeSocial) -> None:
    fake.add("bluesky", "alice.bsky.social", 150, extras=("repost", "reply", "self_reply", "link"))
    summary = scrape(paths, "bsky:alice.bsky.social\n")
    r = row(summary, "alice.bsky.social")
    assert (r["status"], r["pages"], r["fetched"], r["added"], r["ending"]) == ("done", 2, 154, 151, "end")
    assert r["dropped"] == {"empty": 0, "reply": 1, "link": 1, "retweet": 1, "duplicate": 0, "too_short": 0}
    tweets = load_category(paths, "mine").tweets
    assert len(tweets) == 151 and len({t.id for t in tweets}) == 151
    newest = max(tweets, key=lambda t: t.created_at or 0)  # the self-thread reply is kept
    assert newest.text.startswith("Post 153 ")
    assert newest.link.startswith("https://bsky.app/profile/alice.bsky.social/post/3k")
    assert (newest.username, newest.name, newest.date, newest.time, newest.likes) == (
        "alice.bsky.social", "Alice", "2024-03-01", "02:33:00", 153 % 97,
    )  # fmt: skip
    line = json.loads(Path(r["files"][0]).read_text().splitlines()[0])
    assert {"id", "username", "name", "tweet", "date", "time", "likes_count", "link", "reply_to", "urls"} <= line.keys()


def test_rerun_fetches_only_what_is_new(paths: Paths, fake: FakeSocial) -> None:
    alice = fake.add("bluesky", "alice.bsky.social", 120)
    scrape(paths, "bsky:alice.bsky.social\n")
    assert fake.requests["bluesky:alice.bsky.social"] == 2
    again = scrape(paths, "bsky:alice.bsky.social\n")
    assert row(again, "alice.bsky.social")["fetched"] == 0 and row(again, "alice.bsky.social")["ending"] == "caught_up"
    assert fake.requests["bluesky:alice.bsky.social"] == 3  # one page to see nothing is new
    alice.add_posts(7)
    third = scrape(paths, "bsky:alice.bsky.social\n")
    r = row(third, "alice.bsky.social")
    assert (r["fetched"], r["added"], r["dropped"]["duplicate"]) == (7, 7, 0)
    assert len(stored(paths)) == 127


def test_retries_429_and_500_then_success_and_reports_them(paths: Paths, fake: FakeSocial) -> None:
    fake.add("bluesky", "slow.bsky.social", 30, faults=["429", "500"])
    events: list[HandleProgressed] = []
    summary = scrape(paths, "bsky:slow.bsky.social\n", events=events)
    assert row(summary, "slow.bsky.social")["added"] == 30
    retries = [e.report.detail for e in events if e.report.status == "retrying"]
    assert retries[0].startswith("HTTP 429: retry 1") and retries[1].startswith("HTTP 500: retry 2")


def test_failing_handles_are_reported_and_the_others_go_on(paths: Paths, fake: FakeSocial) -> None:
    fake.add("bluesky", "ok.bsky.social", 12)
    fake.add("bluesky", "down.bsky.social", 5, forever="500")
    fake.add("bluesky", "garbled.bsky.social", 5, faults=["garbage"])
    fake.add("bluesky", "quiet.bsky.social", 0)  # an empty first page
    summary = scrape(paths, "bsky:down.bsky.social\nbsky:garbled.bsky.social\nbsky:ghost.bsky.social\nbsky:quiet.bsky.social\nbsky:ok.bsky.social\n")
    assert row(summary, "ok.bsky.social")["added"] == 12
    assert row(summary, "down.bsky.social")["error"] == "The server kept failing; gave up after 3 attempts (HTTP 500)."
    assert row(summary, "garbled.bsky.social")["error"] == "The server sent malformed JSON for the author feed."
    assert row(summary, "ghost.bsky.social")["error"] == "No such account (Profile not found)."
    quiet = row(summary, "quiet.bsky.social")
    assert (quiet["status"], quiet["fetched"], quiet["ending"]) == ("done", 0, "end")
    assert [h.source.handle for h in summary.failed] == ["down.bsky.social", "garbled.bsky.social", "ghost.bsky.social"]


def test_resume_after_a_run_broken_mid_history_gives_no_duplicates(paths: Paths, fake: FakeSocial) -> None:
    alice = fake.add("bluesky", "alice.bsky.social", 250, faults=["ok", "500", "500", "500"])
    first = scrape(paths, "bsky:alice.bsky.social\n")
    assert row(first, "alice.bsky.social")["added"] == 100 and first.failed  # page 2 never came
    second = scrape(paths, "bsky:alice.bsky.social\n")
    r = row(second, "alice.bsky.social")
    # One page from the top (nothing new), then pages 2 and 3 from where it broke.
    assert (r["status"], r["pages"], r["fetched"], r["added"], r["dropped"]["duplicate"]) == ("done", 3, 150, 150, 0)
    ids = [t.id for t in stored(paths)]
    assert len(ids) == 250 == len(set(ids))
    # New posts during an interrupted catch-up: the stretch read is finished first, no gap.
    alice.add_posts(230)
    alice.faults[:] = ["ok", "500", "500", "500"]
    third = scrape(paths, "bsky:alice.bsky.social\n")
    assert row(third, "alice.bsky.social")["added"] == 100
    alice.add_posts(3)
    fourth = scrape(paths, "bsky:alice.bsky.social\n")
    r = row(fourth, "alice.bsky.social")
    assert (r["fetched"], r["added"], r["dropped"]["duplicate"]) == (133, 133, 0)
    ids = [t.id for t in stored(paths)]
    assert len(ids) == 483 == len(set(ids))


def test_cancel_keeps_what_was_read_and_a_rerun_completes(paths: Paths, fake: FakeSocial) -> None:
    fake.delay = 0.02
    fake.add("bluesky", "big.bsky.social", 600)
    events: list[HandleProgressed] = []
    summary = scrape(
        paths, "bsky:big.bsky.social\n", events=events,
        should_stop=lambda: any(e.report.pages >= 2 for e in events),
    )  # fmt: skip
    r = row(summary, "big.bsky.social")
    assert summary.cancelled and r["status"] == "cancelled"
    assert 200 <= r["added"] < 600 and len(stored(paths)) == r["added"]
    fake.delay = 0.0
    rest = scrape(paths, "bsky:big.bsky.social\n")
    assert row(rest, "big.bsky.social")["dropped"]["duplicate"] == 0
    ids = [t.id for t in stored(paths)]
    assert len(ids) == 600 == len(set(ids))


def test_limit_and_since(paths: Paths, fake: FakeSocial) -> None:
    fake.add("bluesky", "alice.bsky.social", 300)
    limited = scrape(paths, "bsky:alice.bsky.social\n", limit=150)
    assert (row(limited, "alice.bsky.social")["fetched"], row(limited, "alice.bsky.social")["ending"]) == (150, "limit")
    # Post i is at 2024-03-01 + i minutes; we hold 151..300, and since 02:00 adds 120..150.
    rest = scrape(paths, "bsky:alice.bsky.social\n", since="2024-03-01T02:00:00Z")
    r = row(rest, "alice.bsky.social")
    assert (r["fetched"], r["ending"]) == (31, "since")
    assert len(stored(paths)) == 181
    # The page cut by --since is read again from where it was cut, not skipped.
    everything = scrape(paths, "bsky:alice.bsky.social\n", limit=0)
    assert (row(everything, "alice.bsky.social")["fetched"], row(everything, "alice.bsky.social")["dropped"]["duplicate"]) == (119, 0)
    assert len({t.id for t in stored(paths)}) == 300
    with pytest.raises(UserError, match="--since 'soon' is not a date"):
        plan_scrape(paths, "mine", since="soon")


# -- Mastodon -----------------------------------------------------------------------------


def test_html_to_text_keeps_words_and_finds_links() -> None:
    text, links = html_to_text(
        '<p>Hi <a href="https://m.s/@bob" class="u-url mention">@<span>bob</span></a> &amp; all</p>'
        '<p>line<br>two <a href="https://m.s/tags/tea" class="mention hashtag">#<span>tea</span></a> '
        '<a href="https://example.com/x"><span class="invisible">https://</span><span>example.com/x</span></a></p>'
    )
    assert text == "Hi @bob & all\n\nline\ntwo #tea https://example.com/x"
    assert links == ["https://example.com/x"]


@pytest.mark.parametrize("link_header", [True, False])
def test_mastodon_pages_by_link_or_max_id(paths: Paths, fake: FakeSocial, link_header: bool) -> None:
    fake.add("mastodon", "carol@fake.social", 70, extras=("repost", "reply", "self_reply", "link"), link_header=link_header, faults=["429-iso"])
    summary = scrape(paths, "mastodon:carol@fake.social\nmastodon:nobody@fake.social\n")
    r = row(summary, "carol@fake.social")
    assert (r["status"], r["fetched"], r["added"]) == ("done", 74, 71)
    assert r["pages"] == (2 if link_header else 3)  # without Link, an empty page marks the end
    assert r["dropped"] == {"empty": 0, "reply": 1, "link": 1, "retweet": 1, "duplicate": 0, "too_short": 0}
    assert row(summary, "nobody@fake.social")["error"] == "No such account (HTTP 404)."
    tweet = next(t for t in stored(paths) if t.text.startswith("Post 1 "))
    assert tweet.text.endswith("compilers and tea\n\nSecond line with #tea")
    assert tweet.link.startswith("https://fake.social/@carol/110") and tweet.username == "carol@fake.social"
    assert scrape(paths, "mastodon:carol@fake.social\n").added == 0


# -- X ------------------------------------------------------------------------------------


def test_x_api_pages_with_token_and_rate_limit_reset(paths: Paths, fake: FakeSocial) -> None:
    fake.add("x", "jack", 130, extras=("repost", "reply", "link"), faults=["ok", "429-reset"])
    summary = scrape(paths, "x:jack\nx:nobody\n")
    r = row(summary, "jack")
    assert (r["status"], r["pages"], r["fetched"], r["added"]) == ("done", 2, 133, 130)
    assert (r["dropped"]["retweet"], r["dropped"]["reply"], r["dropped"]["link"]) == (1, 1, 1)
    assert row(summary, "nobody")["error"] == "No such account."
    tweet = next(t for t in stored(paths) if t.text.startswith("Post 130 "))
    assert tweet.link == f"https://x.com/jack/status/{tweet.id}" and tweet.id.isdigit()


def test_x_api_refuses_a_bad_token(paths: Paths, fake: FakeSocial, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add("x", "jack", 5)
    monkeypatch.setenv("X_BEARER_TOKEN", "wrong")
    summary = scrape(paths, "x:jack\n")
    assert row(summary, "jack")["error"] == "The server refused access to the user lookup (HTTP 401)."


# -- twint --------------------------------------------------------------------------------


def test_twint_absent_is_one_sentence_per_handle_and_the_run_goes_on(paths: Paths, fake: FakeSocial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty folder shadows nothing; twint is not installed in this environment.
    pytest.importorskip("turing_tui.scrape.twint_child")
    if _importable("twint"):
        pytest.skip("twint is installed here")
    fake.add("bluesky", "ok.bsky.social", 10)
    summary = scrape(paths, "twint:jack\ntwint:ev\nbsky:ok.bsky.social\n")
    for handle in ("jack", "ev"):
        error = row(summary, handle)["error"]
        assert error.startswith("twint is not installed") and "pip install 'turing-tui[twint]'" in error
    assert row(summary, "ok.bsky.social")["added"] == 10


FAKE_TWINT = '''
import json
class Config:
    Username = Output = Since = None
    Limit = 0
class run:
    @staticmethod
    def Search(c):
        if c.Username == "refused":
            raise ValueError("Expecting value: line 1 column 1 (char 0)")
        with open(c.Output, "w") as f:
            for i in range(3):
                tid = 1300000000000000000 + i
                f.write(json.dumps({"id": tid, "username": c.Username, "name": "J", "tweet": f"twint tweet {i} about the old days",
                    "date": "2020-06-01", "time": "12:00:00", "created_at": 1590969600000 + i, "likes_count": i,
                    "link": f"https://twitter.com/{c.Username}/status/{tid}", "reply_to": [], "urls": []}) + "\\n")
'''


def test_twint_child_protocol_with_a_stand_in_twint(paths: Paths, fake: FakeSocial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in = tmp_path / "site" / "twint"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text(FAKE_TWINT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(stand_in.parent), os.environ.get("PYTHONPATH", "")]))
    summary = scrape(paths, "twint:jack\ntwint:refused\n")
    assert row(summary, "jack")["added"] == 3
    assert row(summary, "refused")["error"].startswith("Twitter/X refused twint (ValueError: Expecting value")
    assert scrape(paths, "twint:jack\n").added == 0  # the rerun skips what it has


def test_twint_that_hangs_is_killed_and_reported(paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in = tmp_path / "site" / "twint"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("import time\nclass Config: pass\nclass run:\n    Search = staticmethod(lambda c: time.sleep(60))\n")
    monkeypatch.setenv("PYTHONPATH", str(stand_in.parent))
    (paths.sources_dir / "mine.txt").write_text("twint:jack\n")
    plan = replace(plan_scrape(paths, "mine", backoff=FAST), twint_timeout=1.0)
    summary = run_scrape(paths, plan)
    assert row(summary, "jack")["error"].startswith("twint gave no answer in 1 s; Twitter/X has refused twint since 2023")


def test_unreachable_server_is_retried_then_reported(paths: Paths, fake: FakeSocial) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    summary = scrape(paths, "bsky:alice.bsky.social\n", base_url=dead)
    assert row(summary, "alice.bsky.social")["error"] == "The server kept failing; gave up after 3 attempts (ConnectError)."


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# -- the command line ---------------------------------------------------------------------


def test_cli_scrape_json_table_and_exit_codes(paths: Paths, fake: FakeSocial) -> None:
    fake.add("bluesky", "alice.bsky.social", 20, extras=("repost",))
    (paths.sources_dir / "mine.txt").write_text("alice\nghost\n")
    runner = CliRunner()
    args = ["scrape", "--category", "mine", "--backend", "bluesky", "--base-url", fake.url, "--retries", "0"]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 1, result.output  # one handle failed; the other's tweets are kept
    data = json.loads(result.stdout)
    assert (data["added"], data["failed"], data["filter"]["dropped"]["retweet"]) == (20, 1, 1)
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert "alice.bsky.social" in result.stdout and "up to date" in result.stdout and "No such account" in result.stdout
    result = runner.invoke(cli, ["scrape", "--category", "mine", "--since", "yesterday", "--backend", "bluesky"])
    assert result.exit_code == 2 and "Error: --since 'yesterday' is not a date" in result.stderr
    result = runner.invoke(cli, ["scrape", "--category", "../etc"])
    assert result.exit_code == 2 and "not a valid category name" in result.stderr


def test_damaged_state_and_a_second_scrape_are_refused_in_one_sentence(paths: Paths, fake: FakeSocial) -> None:
    from turing_tui.scrape.state import scrape_lock

    fake.add("bluesky", "alice.bsky.social", 5)
    with scrape_lock(paths.category_dir("mine"), "mine"):
        with pytest.raises(UserError, match="Another scrape of 'mine' is running"):
            scrape(paths, "bsky:alice.bsky.social\n")
    paths.scrape_state_file("mine").write_text("{not json")
    with pytest.raises(UserError, match="is damaged: delete it or pass --restart"):
        scrape(paths, "bsky:alice.bsky.social\n")
    assert scrape(paths, "bsky:alice.bsky.social\n", restart=True).added == 5
