"""The networks a scrape can read, each turned into pages of :class:`HumanTweet`.

Every backend answers the same two questions — who is this handle (:meth:`resolve`) and
what is the page of posts after this cursor (:meth:`page`) — so the engine in
:mod:`turing_tui.scrape.run` owns paging, limits, resume points and writing once for all.
Backends map each post to the twint fields the game and filters read (web link, likes,
date and time, name, username, reply targets, links) and never drop anything themselves:
reposts are flagged as retweets and replies to others carry their target, so the corpus
filters drop them and count why.

Bluesky and Mastodon need no credentials; the X API needs a bearer token; twint runs in a
child process (:mod:`turing_tui.scrape.twint_child`) because it is old, optional and can
hang, and Twitter/X has refused it since 2023.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import orjson

from turing_tui.corpus.tweet import HumanTweet
from turing_tui.corpus.twint import read_jsonl
from turing_tui.net import Backoff, RetryHook, arequest_with_retry
from turing_tui.scrape.sources import Source

DEFAULT_BASE_URLS = {
    "bluesky": "https://public.api.bsky.app",
    "mastodon": "",  # each account's own instance (user@instance)
    "x": "https://api.x.com",
    "twint": "",
}
# Environment variables that move a backend's API elsewhere (a mirror, a test fake).
BASE_URL_ENV = {
    "bluesky": "TURING_TUI_BLUESKY_URL",
    "mastodon": "TURING_TUI_MASTODON_URL",
    "x": "TURING_TUI_X_URL",
}
X_TOKEN_ENV = "X_BEARER_TOKEN"
BSKY_WEB = "https://bsky.app"
X_WEB = "https://x.com"
TWINT_TIMEOUT_S = 180.0


class HandleError(Exception):
    """One handle cannot be scraped; ``str(error)`` is the sentence shown for it."""


@dataclass(frozen=True)
class Post:
    """A post as the engine sees it: the tweet, and where it sits in the timeline."""

    tweet: HumanTweet
    order: int  # larger is newer; comparable within one handle's timeline


@dataclass
class Page:
    posts: list[Post]
    cursor: str | None  # what to ask for next; None once history has ended


@dataclass
class Account:
    """A resolved handle: what later pages need to know about it."""

    source: Source
    id: str = ""
    username: str = ""
    name: str = ""
    base: str = ""


@dataclass
class Session:
    """One handle's view of the network: the shared client plus its own retry hook."""

    client: httpx.AsyncClient
    backoff: Backoff = field(default_factory=Backoff)
    on_retry: RetryHook | None = None
    headers: dict[str, str] = field(default_factory=dict)

    async def get_json(self, url: str, params: dict[str, Any] | None, *, what: str) -> tuple[Any, httpx.Response]:
        """GET ``url`` and decode JSON; statuses that retrying cannot fix become HandleError."""
        response = await arequest_with_retry(
            self.client, "GET", url, params=params, headers=self.headers,
            backoff=self.backoff, on_retry=self.on_retry,
        )  # fmt: skip
        status = response.status_code
        if status in (401, 403):
            raise HandleError(f"The server refused access to the {what} (HTTP {status}).")
        if status == 404:
            raise HandleError("No such account (HTTP 404).")
        if status >= 400:
            detail = _error_detail(response)
            if status == 400 and "not found" in detail.lower():
                raise HandleError(f"No such account ({detail}).")
            raise HandleError(f"The server answered the {what} with HTTP {status}{f' ({detail})' if detail else ''}.")
        try:
            return orjson.loads(response.content), response
        except orjson.JSONDecodeError:
            raise HandleError(f"The server sent malformed JSON for the {what}.") from None


def _error_detail(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "title"):
            if isinstance(body.get(key), str):
                return body[key][:200]
    return ""


def _epoch_ms(value: Any) -> int | None:
    """ISO 8601 (``2024-05-01T12:00:00.000Z``) to epoch milliseconds, None when unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return int(stamp.timestamp() * 1000)


def _stamp_fields(ms: int | None) -> dict[str, Any]:
    if ms is None:
        return {}
    stamp = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return {"created_at": ms, "date": stamp.strftime("%Y-%m-%d"), "time": stamp.strftime("%H:%M:%S")}


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class Backend:
    """What every backend provides. ``page_min``/``page_max`` bound the page size."""

    name = ""
    page_min = 1
    page_max = 100

    def __init__(self, base_url: str | None = None) -> None:
        env = os.environ.get(BASE_URL_ENV.get(self.name, ""), "")
        self.base_url = (base_url or env or DEFAULT_BASE_URLS.get(self.name, "")).rstrip("/")

    def session_headers(self) -> dict[str, str]:
        return {}

    async def resolve(self, session: Session, source: Source) -> Account:
        raise NotImplementedError

    async def page(self, session: Session, account: Account, cursor: str | None, size: int) -> Page:
        raise NotImplementedError


# -- Bluesky ------------------------------------------------------------------------------


class BlueskyBackend(Backend):
    """The public AppView: ``app.bsky.feed.getAuthorFeed``, cursor paging, no credentials."""

    name = "bluesky"
    page_max = 100

    async def resolve(self, session: Session, source: Source) -> Account:
        # The feed call itself says whether the actor exists (HTTP 400 "Profile not found"),
        # so resolving costs no request.
        return Account(source=source, username=source.handle, base=self.base_url)

    async def page(self, session: Session, account: Account, cursor: str | None, size: int) -> Page:
        params: dict[str, Any] = {"actor": account.source.handle, "limit": size, "filter": "posts_no_replies"}
        if cursor:
            params["cursor"] = cursor
        data, _ = await session.get_json(
            f"{self.base_url}/xrpc/app.bsky.feed.getAuthorFeed", params, what="author feed"
        )
        feed = data.get("feed") if isinstance(data, dict) else None
        if not isinstance(feed, list):
            raise HandleError("The author feed answer has no 'feed' list.")
        posts = [post for item in feed if (post := bluesky_post(item)) is not None]
        next_cursor = data.get("cursor")
        # No cursor means the last page; an empty page with a cursor would loop forever.
        if not isinstance(next_cursor, str) or not next_cursor or not feed or next_cursor == cursor:
            next_cursor = None
        return Page(posts, next_cursor)


def bluesky_post(item: Any) -> Post | None:
    """One ``feed`` item as a Post; None for pins (they reappear in place) and junk."""
    item = _as_dict(item)
    post = _as_dict(item.get("post"))
    record = _as_dict(post.get("record"))
    author = _as_dict(post.get("author"))
    uri, handle = post.get("uri"), author.get("handle")
    if not isinstance(uri, str) or not isinstance(handle, str):
        return None
    reason_type = str(_as_dict(item.get("reason")).get("$type", "")) if item.get("reason") else ""
    if reason_type.endswith("reasonPin"):
        return None
    created = _epoch_ms(record.get("createdAt"))
    indexed = _epoch_ms(post.get("indexedAt"))
    # The feed is sorted by the earlier of the two (a backdated post sits at its date).
    known = [x for x in (created, indexed) if x is not None]
    order = min(known) if known else 0
    did = str(author.get("did") or "")
    reply_to: tuple[str, ...] = (handle,)
    reply = _as_dict(record.get("reply"))
    if reply:
        parent_author = _as_dict(_as_dict(_as_dict(item.get("reply")).get("parent")).get("author"))
        parent_uri = str(_as_dict(reply.get("parent")).get("uri") or "")
        parent_did = parent_uri.removeprefix("at://").split("/", 1)[0]
        if parent_did and parent_did != did:  # a self-thread stays; an answer to others goes
            reply_to = (handle, str(parent_author.get("handle") or parent_did))
    urls: list[str] = []
    for facet in record.get("facets") or ():
        for feature in _as_dict(facet).get("features") or ():
            feature = _as_dict(feature)
            if str(feature.get("$type", "")).endswith("#link") and isinstance(feature.get("uri"), str):
                urls.append(feature["uri"])
    embed = _as_dict(record.get("embed"))
    external = _as_dict(embed.get("external")) or _as_dict(_as_dict(embed.get("media")).get("external"))
    if isinstance(external.get("uri"), str):
        urls.append(external["uri"])
    rkey = uri.rsplit("/", 1)[-1]
    tweet = HumanTweet(
        id=uri,  # the at:// URI is the post's global identity (rkeys repeat across accounts)
        username=handle,
        name=str(author.get("displayName") or handle),
        text=str(record.get("text") or ""),
        likes=_count(post.get("likeCount")),
        retweets=_count(post.get("repostCount")),
        replies=_count(post.get("replyCount")),
        link=f"{BSKY_WEB}/profile/{handle}/post/{rkey}",
        reply_to=reply_to,
        urls=tuple(dict.fromkeys(urls)),
        is_retweet=bool(reason_type),
        user_id=did,
        **_stamp_fields(created if created is not None else indexed),
    )
    return Post(tweet, order)


# -- Mastodon -----------------------------------------------------------------------------


class _TextOfHTML(HTMLParser):
    """Mastodon's status HTML to plain text: paragraphs, line breaks and link targets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")
        elif tag == "a":
            values = dict(attrs)
            classes = (values.get("class") or "").split()
            href = values.get("href") or ""
            # Mentions and hashtags are links in HTML but words in the post.
            if href and "mention" not in classes and "hashtag" not in classes:
                self.links.append(href)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str) -> tuple[str, list[str]]:
    """Plain text of a status and the web links it carries."""
    parser = _TextOfHTML()
    parser.feed(content or "")
    parser.close()
    return "".join(parser.parts).strip(), parser.links


class MastodonBackend(Backend):
    """A Mastodon instance's public API: account lookup, then statuses by ``max_id``."""

    name = "mastodon"
    page_max = 40

    async def resolve(self, session: Session, source: Source) -> Account:
        user, _, instance = source.handle.partition("@")
        base = self.base_url or (f"https://{instance}" if instance else "")
        if not base:
            raise HandleError(
                "Write the account as user@instance (or pass --base-url)."
            )
        data, _ = await session.get_json(f"{base}/api/v1/accounts/lookup", {"acct": source.handle}, what="account lookup")
        data = _as_dict(data)
        if not isinstance(data.get("id"), (str, int)):
            raise HandleError("The account lookup gave no account id.")
        acct = str(data.get("acct") or user)
        if "@" not in acct:
            acct = f"{acct}@{instance or urlsplit(base).hostname}"
        return Account(source, id=str(data["id"]), username=acct, name=str(data.get("display_name") or ""), base=base)

    async def page(self, session: Session, account: Account, cursor: str | None, size: int) -> Page:
        params: dict[str, Any] = {"limit": size, "exclude_replies": "true", "exclude_reblogs": "true"}
        if cursor:
            params["max_id"] = cursor
        url = f"{account.base}/api/v1/accounts/{quote(account.id, safe='')}/statuses"
        data, response = await session.get_json(url, params, what="statuses")
        if not isinstance(data, list):
            raise HandleError("The statuses answer is not a list.")
        posts = [post for status in data if (post := mastodon_post(status, account)) is not None]
        if not data:
            return Page(posts, None)
        next_cursor: str | None = None
        if "link" in response.headers:
            # Follow the server's own paging: no rel="next" means the last page.
            nxt = response.links.get("next", {}).get("url")
            if nxt:
                next_cursor = (parse_qs(urlsplit(nxt).query).get("max_id") or [None])[0]
        else:
            last = _as_dict(data[-1]).get("id")
            next_cursor = str(last) if last is not None else None
        return Page(posts, next_cursor if next_cursor != cursor else None)


def mastodon_post(status: Any, account: Account) -> Post | None:
    status = _as_dict(status)
    status_id = status.get("id")
    if status_id is None:
        return None
    reblog = _as_dict(status.get("reblog"))
    text, links = html_to_text(str((reblog or status).get("content") or ""))
    card = _as_dict(status.get("card"))
    if isinstance(card.get("url"), str):
        links.append(card["url"])
    reply_to: tuple[str, ...] = (account.username,)
    target = status.get("in_reply_to_account_id")
    if status.get("in_reply_to_id") is not None and target is not None and str(target) != account.id:
        reply_to = (account.username, f"id:{target}")
    created = _epoch_ms(status.get("created_at"))
    sid = str(status_id)
    tweet = HumanTweet(
        id=str(status.get("uri") or status.get("url") or f"{account.base}/statuses/{sid}"),
        username=account.username,
        name=account.name or account.username,
        text=text,
        likes=_count(status.get("favourites_count")),
        retweets=_count(status.get("reblogs_count")),
        replies=_count(status.get("replies_count")),
        link=str(status.get("url") or status.get("uri") or ""),
        reply_to=reply_to,
        urls=tuple(dict.fromkeys(links)),
        is_retweet=bool(reblog),
        user_id=account.id,
        **_stamp_fields(created),
    )
    # Mastodon ids are time-ordered snowflakes; fall back to the date if one is not.
    return Post(tweet, int(sid) if sid.isdigit() else (created or 0))


# -- X API v2 -----------------------------------------------------------------------------


class XBackend(Backend):
    """The paid X API v2 with a bearer token: the latest ~3,200 posts of an account."""

    name = "x"
    page_min = 5  # max_results must be 5..100
    page_max = 100
    TWEET_FIELDS = "created_at,public_metrics,in_reply_to_user_id,referenced_tweets,entities"

    def __init__(self, base_url: str | None = None, token: str | None = None) -> None:
        super().__init__(base_url)
        self.token = token if token is not None else os.environ.get(X_TOKEN_ENV, "")

    def session_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def resolve(self, session: Session, source: Source) -> Account:
        if not self.token:
            raise HandleError(f"Set {X_TOKEN_ENV} to an X API bearer token to read X accounts.")
        data, _ = await session.get_json(f"{self.base_url}/2/users/by/username/{quote(source.handle)}", None, what="user lookup")
        user = _as_dict(_as_dict(data).get("data"))
        if not user.get("id"):
            raise HandleError("No such account.")
        return Account(
            source, id=str(user["id"]), username=str(user.get("username") or source.handle),
            name=str(user.get("name") or ""), base=self.base_url,
        )  # fmt: skip

    async def page(self, session: Session, account: Account, cursor: str | None, size: int) -> Page:
        params: dict[str, Any] = {
            "max_results": size,
            "exclude": "retweets,replies",
            "tweet.fields": self.TWEET_FIELDS,
        }
        if cursor:
            params["pagination_token"] = cursor
        data, _ = await session.get_json(f"{self.base_url}/2/users/{account.id}/tweets", params, what="timeline")
        data = _as_dict(data)
        items = data.get("data") or []
        if not isinstance(items, list):
            raise HandleError("The timeline answer's 'data' is not a list.")
        posts = [post for item in items if (post := x_post(item, account)) is not None]
        token = _as_dict(data.get("meta")).get("next_token")
        return Page(posts, token if isinstance(token, str) and token and items and token != cursor else None)


def x_post(item: Any, account: Account) -> Post | None:
    item = _as_dict(item)
    tid = str(item.get("id") or "")
    if not tid.isdigit():
        return None
    metrics = _as_dict(item.get("public_metrics"))
    refs = [_as_dict(r).get("type") for r in item.get("referenced_tweets") or ()]
    reply_to: tuple[str, ...] = (account.username,)
    target = item.get("in_reply_to_user_id")
    if target is not None and str(target) != account.id:
        reply_to = (account.username, f"id:{target}")
    urls = [
        str(_as_dict(u).get("expanded_url") or _as_dict(u).get("url"))
        for u in _as_dict(item.get("entities")).get("urls") or ()
        if _as_dict(u).get("expanded_url") or _as_dict(u).get("url")
    ]
    tweet = HumanTweet(
        id=tid,
        username=account.username,
        name=account.name or account.username,
        text=str(item.get("text") or ""),
        likes=_count(metrics.get("like_count")),
        retweets=_count(metrics.get("retweet_count")),
        replies=_count(metrics.get("reply_count")),
        link=f"{X_WEB}/{account.username}/status/{tid}",
        reply_to=reply_to,
        urls=tuple(urls),
        is_retweet="retweeted" in refs,
        user_id=account.id,
        **_stamp_fields(_epoch_ms(item.get("created_at"))),
    )
    return Post(tweet, int(tid))  # snowflake ids grow with time


# -- twint (legacy) -----------------------------------------------------------------------


class TwintBackend(Backend):
    """twint's Python API in a child process, one handle per child, one "page" per run.

    twint cannot resume from a cursor, so a run asks for up to ``size`` tweets from the
    top and the engine skips what it already has.
    """

    name = "twint"
    page_max = 1_000_000

    def __init__(self, base_url: str | None = None, *, timeout: float = TWINT_TIMEOUT_S, since: str | None = None) -> None:
        super().__init__(base_url)
        self.timeout = timeout
        self.since = since

    async def resolve(self, session: Session, source: Source) -> Account:
        return Account(source, username=source.handle)

    async def page(self, session: Session, account: Account, cursor: str | None, size: int) -> Page:
        handle = account.source.handle
        with tempfile.TemporaryDirectory(prefix="turing-tui-twint-") as tmp:
            out = Path(tmp) / "tweets.json"
            argv = [sys.executable, "-m", "turing_tui.scrape.twint_child", "--handle", handle, "--output", str(out), "--limit", str(size)]
            if self.since:
                argv += ["--since", self.since]
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            try:
                _, err = await asyncio.wait_for(proc.communicate(), self.timeout)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
                raise HandleError(
                    f"twint gave no answer in {self.timeout:.0f} s; Twitter/X has refused twint "
                    "since 2023, use --backend x with X_BEARER_TOKEN or a bsky:/mastodon: account."
                ) from None
            except asyncio.CancelledError:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                raise
            if proc.returncode != 0:
                lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
                raise HandleError(lines[-1] if lines else f"twint stopped with exit status {proc.returncode}.")
            tweets = list(read_jsonl(out)) if out.exists() else []
        if not tweets:
            raise HandleError(
                "twint brought back no tweets; Twitter/X has refused twint since 2023, "
                "use --backend x with X_BEARER_TOKEN or a bsky:/mastodon: account."
            )
        posts = [Post(t, int(t.id) if t.id.isdigit() else (t.created_at or 0)) for t in tweets]
        posts.sort(key=lambda p: p.order, reverse=True)  # newest first, like every feed
        return Page(posts, None)


BACKEND_CLASSES: dict[str, Callable[..., Backend]] = {
    "bluesky": BlueskyBackend,
    "mastodon": MastodonBackend,
    "x": XBackend,
    "twint": TwintBackend,
}
