"""Fake Bluesky, Mastodon and X APIs on 127.0.0.1, for scrape tests and the benchmark.

One Starlette app speaks the three protocols of PROTOCOLS.md with recorded-shape JSON:
``getAuthorFeed`` with cursors, Mastodon lookup + statuses with ``max_id`` and ``Link``
headers, X v2 user lookup + tweets with ``next_token``. Each account holds a timeline
(newest first) and a queue of faults its next feed requests answer with — a 429 with a
wait hint, a 500, malformed JSON — or a fault that repeats forever. Requests are counted
per account so tests can check that a rerun asked only for what was new.

Run it standalone (for the benchmark or a manual try):
``python tests/fakes_social.py --port 8765 --posts 2000 --handles 4``.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

EPOCH = datetime(2024, 3, 1, tzinfo=timezone.utc)
X_TOKEN = "test-token"
MASTODON_ID_BASE = 110_000_000_000_000_000
X_ID_BASE = 1_700_000_000_000_000_000


@dataclass
class FakePost:
    """One post; ``index`` grows with time (index 1 is the oldest)."""

    index: int
    text: str
    kind: str = "post"  # post | repost | reply | self_reply | link

    @property
    def created(self) -> datetime:
        return EPOCH + timedelta(minutes=self.index)

    def iso(self) -> str:
        return self.created.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class FakeAccount:
    network: str  # bluesky | mastodon | x
    handle: str
    posts: list[FakePost] = field(default_factory=list)  # newest first
    faults: list[str] = field(default_factory=list)  # consumed one per feed request ("ok": none)
    forever: str | None = None  # a fault every feed request answers with
    link_header: bool = True  # Mastodon: page with Link headers (else bare max_id)

    @property
    def newest_index(self) -> int:
        return self.posts[0].index if self.posts else 0

    def add_posts(self, count: int, kind: str = "post") -> None:
        """Publish ``count`` new posts on top of the timeline."""
        top = self.newest_index
        for i in range(top + 1, top + count + 1):
            self.posts.insert(0, FakePost(i, f"Post {i} by {self.handle}: notes on coffee, compilers and tea", kind))

    @property
    def did(self) -> str:
        return "did:plc:" + self.handle.replace(".", "").replace("@", "")[:24]

    @property
    def numeric_id(self) -> str:
        return str(zlib.crc32(self.handle.lower().encode()) % 10_000_000 + 1000)


class FakeSocial:
    """The accounts and the app that serves them; ``url`` once started."""

    def __init__(self, delay: float = 0.0) -> None:
        self.accounts: dict[tuple[str, str], FakeAccount] = {}
        self.requests: Counter[str] = Counter()  # "network:handle" -> feed requests served
        self.delay = delay
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/xrpc/app.bsky.feed.getAuthorFeed", self.bsky_feed),
                Route("/api/v1/accounts/lookup", self.mastodon_lookup),
                Route("/api/v1/accounts/{id}/statuses", self.mastodon_statuses),
                Route("/2/users/by/username/{username}", self.x_user),
                Route("/2/users/{id}/tweets", self.x_tweets),
            ]
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- accounts ------------------------------------------------------------------------
    def add(self, network: str, handle: str, posts: int = 0, *, extras: tuple[str, ...] = (), **kw: Any) -> FakeAccount:
        """An account with ``posts`` ordinary posts, then ``extras`` (kinds) on top."""
        account = FakeAccount(network, handle, **kw)
        account.add_posts(posts)
        for kind in extras:
            account.add_posts(1, kind)
            if kind == "link":
                account.posts[0].text += " https://example.com/read-this"
        self.accounts[(network, handle.lower())] = account
        return account

    def find(self, network: str, handle: str) -> FakeAccount | None:
        return self.accounts.get((network, handle.lower()))

    def by_id(self, network: str, account_id: str) -> FakeAccount | None:
        for (net, _), account in self.accounts.items():
            if net == network and account.numeric_id == account_id:
                return account
        return None

    async def _fault(self, account: FakeAccount) -> Response | None:
        self.requests[f"{account.network}:{account.handle}"] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        fault = account.faults.pop(0) if account.faults else account.forever
        if fault == "429":
            return Response(b'{"error":"RateLimitExceeded"}', 429, {"Retry-After": "0"}, media_type="application/json")
        if fault == "429-reset":  # X style: epoch seconds of the reset
            return Response(b"{}", 429, {"x-rate-limit-reset": str(int(time.time()))}, media_type="application/json")
        if fault == "429-iso":  # Mastodon style: an ISO 8601 time
            stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            return Response(b'{"error":"Too many requests"}', 429, {"X-RateLimit-Reset": stamp}, media_type="application/json")
        if fault == "500":
            return Response(b'{"error":"InternalServerError"}', 500, media_type="application/json")
        if fault == "garbage":
            return Response(b'{"feed": [ {"post": ', 200, media_type="application/json")
        return None

    @staticmethod
    def _json(data: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(orjson.dumps(data), 200, headers, media_type="application/json")

    # -- Bluesky -------------------------------------------------------------------------
    async def bsky_feed(self, request: Request) -> Response:
        q = request.query_params
        account = self.find("bluesky", q.get("actor", ""))
        if account is None:
            await asyncio.sleep(self.delay)
            return Response(b'{"error":"InvalidRequest","message":"Profile not found"}', 400, media_type="application/json")
        if (fault := await self._fault(account)) is not None:
            return fault
        limit = max(1, min(100, int(q.get("limit", "50"))))
        below = int(q["cursor"]) if q.get("cursor") else None
        rest = [p for p in account.posts if below is None or p.index < below]
        page, more = rest[:limit], len(rest) > limit
        body: dict[str, Any] = {"feed": [self._bsky_item(account, p) for p in page]}
        if more:
            body["cursor"] = str(page[-1].index)
        return self._json(body)

    def _bsky_item(self, account: FakeAccount, post: FakePost) -> dict[str, Any]:
        author = {"did": account.did, "handle": account.handle, "displayName": account.handle.split(".")[0].title()}
        record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": post.text, "createdAt": post.iso(), "langs": ["en"]}
        item: dict[str, Any] = {}
        if post.kind == "repost":
            author = {"did": "did:plc:someoneelse", "handle": "someone.bsky.social", "displayName": "Someone"}
            item["reason"] = {"$type": "app.bsky.feed.defs#reasonRepost", "by": {"did": account.did, "handle": account.handle}, "indexedAt": post.iso()}
        elif post.kind in ("reply", "self_reply"):
            parent_did = "did:plc:someoneelse" if post.kind == "reply" else account.did
            ref = {"uri": f"at://{parent_did}/app.bsky.feed.post/3kparent", "cid": "bafyparent"}
            record["reply"] = {"root": ref, "parent": ref}
        elif post.kind == "link":
            start = post.text.index("https://")
            record["facets"] = [{
                "index": {"byteStart": start, "byteEnd": len(post.text)},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": post.text[start:]}],
            }]  # fmt: skip
        rkey = f"3k{post.index:011d}"
        item["post"] = {
            "uri": f"at://{author['did']}/app.bsky.feed.post/{rkey}",
            "cid": f"bafy{post.index}",
            "author": author,
            "record": record,
            "replyCount": 1,
            "repostCount": 2,
            "likeCount": post.index % 97,
            "indexedAt": post.iso(),
        }
        return item

    # -- Mastodon ------------------------------------------------------------------------
    async def mastodon_lookup(self, request: Request) -> Response:
        acct = request.query_params.get("acct", "")
        account = self.find("mastodon", acct)
        if account is None:
            return Response(b'{"error":"Record not found"}', 404, media_type="application/json")
        user = acct.split("@")[0]
        return self._json({"id": account.numeric_id, "username": user, "acct": acct, "display_name": user.title(), "url": f"https://fake.social/@{user}"})

    async def mastodon_statuses(self, request: Request) -> Response:
        account = self.by_id("mastodon", request.path_params["id"])
        if account is None:
            return Response(b'{"error":"Record not found"}', 404, media_type="application/json")
        if (fault := await self._fault(account)) is not None:
            return fault
        q = request.query_params
        limit = max(1, min(40, int(q.get("limit", "20"))))
        max_id = int(q["max_id"]) if q.get("max_id") else None
        rest = [p for p in account.posts if max_id is None or MASTODON_ID_BASE + p.index < max_id]
        page = rest[:limit]
        headers = {}
        if account.link_header and page:
            base = str(request.url).split("?")[0]
            links = [f'<{base}?limit={limit}&min_id={MASTODON_ID_BASE + page[0].index}>; rel="prev"']
            if len(rest) > limit:
                links.insert(0, f'<{base}?limit={limit}&max_id={MASTODON_ID_BASE + page[-1].index}>; rel="next"')
            headers["Link"] = ", ".join(links)
        return self._json([self._status(account, p) for p in page], headers)

    def _status(self, account: FakeAccount, post: FakePost) -> dict[str, Any]:
        user = account.handle.split("@")[0]
        sid = str(MASTODON_ID_BASE + post.index)
        text = post.text.replace("&", "&amp;").replace("<", "&lt;")
        content = f"<p>{text}</p><p>Second line with <a href=\"https://fake.social/tags/tea\" class=\"mention hashtag\" rel=\"tag\">#<span>tea</span></a></p>"
        if post.kind == "link":
            content = f'<p>{post.text.split(" https://")[0]} <a href="https://example.com/read-this" rel="nofollow"><span class="invisible">https://</span><span>example.com/read-this</span></a></p>'
        status: dict[str, Any] = {
            "id": sid,
            "created_at": post.iso(),
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "content": content,
            "url": f"https://fake.social/@{user}/{sid}",
            "uri": f"https://fake.social/users/{user}/statuses/{sid}",
            "replies_count": 0,
            "reblogs_count": 1,
            "favourites_count": post.index % 89,
            "reblog": None,
            "card": None,
        }
        if post.kind == "repost":
            status["content"] = ""
            status["reblog"] = {"id": "1", "content": f"<p>{text}</p>", "url": "https://elsewhere.social/@x/1"}
        elif post.kind in ("reply", "self_reply"):
            status["in_reply_to_id"] = "1"
            status["in_reply_to_account_id"] = "999" if post.kind == "reply" else account.numeric_id
        return status

    # -- X -------------------------------------------------------------------------------
    def _x_auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {X_TOKEN}":
            return Response(b'{"title":"Unauthorized","detail":"Unauthorized","status":401}', 401, media_type="application/json")
        return None

    async def x_user(self, request: Request) -> Response:
        if (denied := self._x_auth(request)) is not None:
            return denied
        username = request.path_params["username"]
        account = self.find("x", username)
        if account is None:  # X answers 200 with an errors list for unknown users
            return self._json({"errors": [{"title": "Not Found Error", "detail": f"Could not find user with username: [{username}]."}]})
        return self._json({"data": {"id": account.numeric_id, "name": username.title(), "username": account.handle}})

    async def x_tweets(self, request: Request) -> Response:
        if (denied := self._x_auth(request)) is not None:
            return denied
        account = self.by_id("x", request.path_params["id"])
        if account is None:
            return Response(b'{"title":"Not Found Error"}', 404, media_type="application/json")
        if (fault := await self._fault(account)) is not None:
            return fault
        q = request.query_params
        limit = max(5, min(100, int(q.get("max_results", "10"))))
        below = int(q["pagination_token"].removeprefix("tok-")) if q.get("pagination_token") else None
        rest = [p for p in account.posts if below is None or p.index < below]
        page = rest[:limit]
        data = []
        for p in page:
            item: dict[str, Any] = {
                "id": str(X_ID_BASE + p.index),
                "text": p.text,
                "created_at": p.iso(),
                "public_metrics": {"retweet_count": 1, "reply_count": 0, "like_count": p.index % 83, "quote_count": 0},
                "edit_history_tweet_ids": [str(X_ID_BASE + p.index)],
            }
            if p.kind == "repost":
                item["text"] = "RT @someone: " + p.text
                item["referenced_tweets"] = [{"type": "retweeted", "id": "1"}]
            elif p.kind in ("reply", "self_reply"):
                item["in_reply_to_user_id"] = "999" if p.kind == "reply" else account.numeric_id
                item["referenced_tweets"] = [{"type": "replied_to", "id": "1"}]
            elif p.kind == "link":
                item["entities"] = {"urls": [{"url": "https://t.co/abc", "expanded_url": "https://example.com/read-this"}]}
            data.append(item)
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=data[0]["id"], oldest_id=data[-1]["id"])
        if len(rest) > limit:
            meta["next_token"] = f"tok-{page[-1].index}"
        body: dict[str, Any] = {"meta": meta}
        if data:
            body["data"] = data
        return self._json(body)

    # -- serving -------------------------------------------------------------------------
    def start(self, port: int = 0) -> FakeSocial:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="error", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-social", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake social server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeSocial:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--handles", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds of latency per feed request")
    args = parser.parse_args()
    fake = FakeSocial(delay=args.delay)
    for i in range(args.handles):
        fake.add("bluesky", f"user{i}.bsky.social", args.posts)
        fake.add("mastodon", f"user{i}@fake.social", args.posts)
        fake.add("x", f"user{i}", args.posts)
    config = uvicorn.Config(fake.app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off", access_log=False)
    print(f"fake Bluesky/Mastodon/X on http://127.0.0.1:{args.port}", flush=True)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
