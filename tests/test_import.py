"""Imports: twint JSON lines, Twitter archive exports, CSVs, and ``add_tweets`` dedupe."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from conftest import make_tweet
from turing_tui.corpus.importers import add_tweets, import_path, read_tweets
from turing_tui.corpus.load import load_category
from turing_tui.corpus.twint import Problem, read_jsonl, write_jsonl
from turing_tui.errors import UserError
from turing_tui.paths import Paths


def data_files(paths: Paths, category: str) -> list[str]:
    return sorted(p.name for p in paths.category_dir(category).glob("*.txt"))


# -- add_tweets ------------------------------------------------------------------------------


def test_add_tweets_filters_dedupes_and_writes_one_new_file(paths: Paths) -> None:
    batch = [make_tweet(i) for i in range(4)] + [
        make_tweet(10, text="look at this https://example.com/x"),
        replace(make_tweet(11, text="@bob yes, exactly what I said"), reply_to=("bob",)),
        make_tweet(12, text="RT @carol: a retweet of something long enough"),
        make_tweet(13, text="short"),
        make_tweet(14, text="   "),
        make_tweet(15, text="Invented tweet number 0 about startups and coffee"),  # same text as 0
    ]
    report = add_tweets(paths, "mine", batch, source="scrape")
    assert report.added == 4 and report.path is not None
    assert report.path.parent == paths.category_dir("mine") and report.path.name.startswith("scrape-")
    assert dict(report.filter.dropped) == {"link": 1, "reply": 1, "retweet": 1, "too_short": 1, "empty": 1, "duplicate": 1}
    assert [t.id for t in read_jsonl(report.path)] == [make_tweet(i).id for i in range(4)]

    again = add_tweets(paths, "mine", batch + [make_tweet(20)], source="scrape")
    assert again.added == 1 and again.filter.dropped["duplicate"] == 5
    assert len(data_files(paths, "mine")) == 2
    nothing = add_tweets(paths, "mine", batch, source="scrape")
    assert nothing.added == 0 and nothing.path is None and len(data_files(paths, "mine")) == 2
    assert "Added 0 new tweets" in nothing.summary()


def test_add_tweets_dedupes_against_published_partitions(paths: Paths) -> None:
    write_jsonl(paths.category_dir("vc") / "000.txt", [make_tweet(i) for i in range(3)])
    # Same id with different text, and same text (other case, spacing) with a new id.
    report = add_tweets(
        paths, "vc", [make_tweet(1, text="completely different words here"), make_tweet(99, text="INVENTED tweet  number 2 about startups and coffee")]
    )
    assert report.added == 0 and report.filter.dropped["duplicate"] == 2


def test_add_tweets_keep_all_still_dedupes(paths: Paths) -> None:
    batch = [make_tweet(1, text="see https://example.com"), make_tweet(1, text="see https://example.com")]
    report = add_tweets(paths, "mine", batch, apply_filters=False)
    assert report.added == 1 and report.filter.dropped["duplicate"] == 1


def test_add_tweets_rejects_bad_names(paths: Paths) -> None:
    with pytest.raises(UserError, match="not a valid category"):
        add_tweets(paths, "../../etc", [make_tweet(1)])
    with pytest.raises(UserError, match="not a valid source"):
        add_tweets(paths, "mine", [make_tweet(1)], source="a/b")
    assert not (paths.root.parent / "etc").exists()


# -- twint JSON lines --------------------------------------------------------------------------


def twint_line(i: int, **kw: object) -> bytes:
    return orjson.dumps(make_tweet(i, **kw).to_twint())


def test_malformed_lines_are_skipped_and_reported(paths: Paths, tmp_path: Path) -> None:
    source = tmp_path / "mixed.jsonl"
    huge = b'{"tweet": "' + b"x" * (1 << 20) + b'"}'
    source.write_bytes(
        b"\n".join(
            [
                twint_line(1),
                b'{"id": 2, "tweet": "unterminated',  # bad JSON
                b'{"id": 3, "username": "bob", "tweet": "caf\xe9 au lait is what I drink daily"}',  # Latin-1
                b"\x00\x01\x02\xff\xfe junk",
                b"",
                huge,
                b'{"id": 7, "tweet": "no author on this one at all"}',
                b"[1, 2, 3]",
                twint_line(9),
            ]
        )
        + b"\n"
    )
    problems: list[Problem] = []
    tweets = read_tweets(source, on_problem=problems.append)
    assert [t.id for t in tweets] == [make_tweet(1).id, make_tweet(9).id]
    by_line = {p.line: p.reason for p in problems}
    assert set(by_line) == {2, 3, 4, 6, 7, 8}
    assert by_line[2].startswith("not valid JSON") and by_line[3] == "not UTF-8 text"
    assert "byte limit" in by_line[6] and "username" in by_line[7]
    assert all(p.path == source for p in problems) and str(problems[0]).startswith(f"{source}:2: ")

    report = import_path(paths, source, "mine")
    assert report.added == 2 and len(report.problems) == 6


def test_import_twint_folder_round_trips(paths: Paths, tmp_path: Path) -> None:
    folder = tmp_path / "scraped"
    write_jsonl(folder / "a.txt", [replace(make_tweet(1), likes=5), make_tweet(2)])
    write_jsonl(folder / "sub" / "b.jsonl", [make_tweet(3)])
    (folder / ".hidden.txt").write_text("not tweets")
    report = import_path(paths, folder, "mine")
    assert report.added == 3 and report.problems == []
    corpus = load_category(paths, "mine")
    original = replace(make_tweet(1), likes=5)
    loaded = next(t for t in corpus.tweets if t.id == original.id)
    assert (loaded.username, loaded.text, loaded.likes, loaded.date, loaded.link) == (
        original.username, original.text, 5, original.date, original.link,
    )  # fmt: skip
    assert import_path(paths, folder, "mine").added == 0  # re-import adds nothing


# -- Twitter archive export ----------------------------------------------------------------------


def archive_entry(tid: str, text: str, **extra: object) -> dict[str, object]:
    tweet = {
        "id_str": tid,
        "full_text": text,
        "created_at": "Sat Feb 18 12:33:11 +0000 2023",
        "favorite_count": "7",
        "retweet_count": "2",
        "entities": {"urls": [], "user_mentions": [], "hashtags": []},
        "lang": "en",
    }
    tweet.update(extra)
    return {"tweet": tweet}


def write_archive(folder: Path, *, name: str = "tweets.js", account: bool = True) -> Path:
    data = folder / "data"
    data.mkdir(parents=True)
    entries = [
        archive_entry("101", "Shipping the new release today, it has been a long road"),
        archive_entry("102", "and a thread reply to myself with more detail", in_reply_to_status_id_str="101", in_reply_to_user_id_str="42", in_reply_to_screen_name="dana"),
        archive_entry("103", "@erin I disagree with that take entirely", in_reply_to_status_id_str="77", in_reply_to_user_id_str="9", in_reply_to_screen_name="erin"),
        archive_entry("104", "RT @frank: something frank said once upon a time"),
        archive_entry("105", "read the post https://t.co/abc", entities={"urls": [{"expanded_url": "https://blog.example/post"}]}),
        {"not": "a tweet"},
    ]  # fmt: skip
    (data / name).write_text("window.YTD.tweets.part0 = " + orjson.dumps(entries).decode())
    if account:
        acct = [{"account": {"username": "dana", "accountId": "42", "accountDisplayName": "Dana D."}}]
        (data / "account.js").write_text("window.YTD.account.part0 = " + orjson.dumps(acct).decode())
    return folder


def test_import_archive_export_folder(paths: Paths, tmp_path: Path) -> None:
    export = write_archive(tmp_path / "twitter-2023-02-18")
    report = import_path(paths, export, "me")
    assert report.added == 2
    assert dict(report.filter.dropped) == {"reply": 1, "retweet": 1, "link": 1}
    assert [p.line for p in report.problems] == [6]
    tweets = {t.id: t for t in load_category(paths, "me").tweets}
    first = tweets["101"]
    assert (first.username, first.name, first.likes, first.retweets, first.user_id) == ("dana", "Dana D.", 7, 2, "42")
    assert first.created_at == 1676723591000 and first.link == "https://twitter.com/dana/status/101"
    assert import_path(paths, export / "data" / "tweets.js", "me").added == 0


def test_archive_handle_from_flag_or_clear_error(paths: Paths, tmp_path: Path) -> None:
    export = write_archive(tmp_path / "old", name="tweet.js", account=False)
    with pytest.raises(UserError, match="no account.js.*--handle"):
        import_path(paths, export, "me")
    report = import_path(paths, export, "me", handle="@dana")
    # Without account.js the self-reply cannot be told from a reply to others by id, but
    # the screen name still shows it answers the author.
    assert report.added == 2 and {t.username for t in load_category(paths, "me").tweets} == {"dana"}


# -- CSV ---------------------------------------------------------------------------------------------


def test_import_twint_csv(paths: Paths, tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "conversation_id", "created_at", "date", "time", "timezone", "user_id", "username", "name", "tweet", "urls", "likes_count", "retweet", "reply_to"])
        writer.writerow(["1001", "1001", "2020-06-01 12:00:00 UTC", "2020-06-01", "12:00:00", "+0000", "5", "gina", "Gina", "A perfectly ordinary tweet, with a comma", "[]", "12", "False", "[]"])
        writer.writerow(["1002", "1000", "2020-06-01 12:01:00 UTC", "2020-06-01", "12:01:00", "+0000", "5", "gina", "Gina", "@hal replying to hal here today", "[]", "1", "False", "[{'screen_name': 'hal', 'name': 'Hal', 'id': '6'}]"])
        writer.writerow(["1003", "1003", "2020-06-01 12:02:00 UTC", "2020-06-01", "12:02:00", "+0000", "5", "gina", "Gina", "my blog post is up now", "['https://gina.blog/post']", "3", "False", "[]"])
    # fmt: skip
    report = import_path(paths, path, "csvs")
    assert report.added == 1 and dict(report.filter.dropped) == {"reply": 1, "link": 1}
    (tweet,) = load_category(paths, "csvs").tweets
    assert (tweet.id, tweet.username, tweet.likes, tweet.created_at) == ("1001", "gina", 12, 1591012800000)


def test_import_text_csv_needs_a_handle(paths: Paths, tmp_path: Path) -> None:
    path = tmp_path / "texts.csv"
    path.write_text("text\nThe first of my little texts\nThe second of my little texts\n\n")
    with pytest.raises(UserError, match="no username column.*--handle"):
        import_path(paths, path, "poems")
    with pytest.raises(UserError, match="is not a handle"):
        import_path(paths, path, "poems", handle="[red]ivy")
    report = import_path(paths, path, "poems", handle="@ivy")
    assert report.added == 2
    assert import_path(paths, path, "poems", handle="ivy").added == 0  # stable ids from the text
    assert {t.username for t in load_category(paths, "poems").tweets} == {"ivy"}


def test_import_windows_1252_csv(paths: Paths, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("username,text\njo,Caf\u00e9 culture is \u201cthe\u201d best thing\n".encode("cp1252"))
    report = import_path(paths, path, "cafe")
    assert report.added == 1 and "Windows-1252" in report.problems[0].reason
    assert load_category(paths, "cafe").tweets[0].text == "Caf\u00e9 culture is \u201cthe\u201d best thing"


def test_csv_without_a_text_column(paths: Paths, tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="no text column"):
        import_path(paths, path, "x")
    headless = tmp_path / "headless.csv"
    headless.write_text("Just one text without any header row\n")
    with pytest.raises(UserError, match="no username column.*--handle"):
        import_path(paths, headless, "x")


# -- what cannot be imported -------------------------------------------------------------------------


def test_unknown_empty_and_missing_inputs(paths: Paths, tmp_path: Path) -> None:
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4)
    with pytest.raises(UserError, match="not a format turing-tui can import"):
        import_path(paths, junk, "x")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n  \n")
    with pytest.raises(UserError, match="is empty"):
        import_path(paths, empty, "x")
    with pytest.raises(UserError, match="does not exist"):
        import_path(paths, tmp_path / "nope.json", "x")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": 1}\n{"tweet": 3}\n')
    with pytest.raises(UserError, match="No tweets found"):
        import_path(paths, bad, "x")
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(b"\x89PNG")
    with pytest.raises(UserError, match="holds no files to import"):
        import_path(paths, tmp_path / "pics", "x")
    assert not paths.category_dir("x").exists() or not list(paths.category_dir("x").glob("*.txt"))
