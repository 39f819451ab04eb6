"""The :class:`HumanTweet` model and the text normalisation both sides of a round share.

A tweet keeps what the game reveals (author, handle, likes, date, link) and what the
filters judge (reply targets, links, retweet flag). It converts to and from one twint
JSON object; unknown fields of an imported object are not kept, the known ones are
written back in twint's shape so the output reads like the published datasets.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_STATUS_ID = re.compile(r"/status(?:es)?/(\d+)")

# Every field of a twint JSON object, in twint's order (PROTOCOLS.md).
TWINT_FIELDS = (
    "id", "conversation_id", "created_at", "date", "time", "timezone", "user_id",
    "username", "name", "place", "tweet", "mentions", "urls", "photos", "replies_count",
    "retweets_count", "likes_count", "hashtags", "cashtags", "link", "retweet",
    "quote_url", "video", "near", "geo", "source", "user_rt_id", "user_rt", "retweet_id",
    "reply_to", "retweet_date",
)  # fmt: skip
_TWINT_FIELD_SET = frozenset(TWINT_FIELDS)


# Anything normalize_text would change: an entity, a CR, an odd or doubled space, a space
# at a line's edge, three newlines in a row. Most tweets have none of these; checking is
# ~5x cheaper than the full rewrite, and this runs for every tweet at load time. (One
# character-class search plus plain substring tests: half the cost of one regex holding
# the multi-character alternatives too.)
_ODD_CHARS = re.compile(r"[&\r\t\u00a0\u2000-\u200b\u202f\u205f\u3000]")


def normalize_text(text: str) -> str:
    """The one normalisation applied to human and machine text alike.

    Decodes HTML entities (twint kept ``&amp;``), unifies line endings, folds runs of
    spaces, trims each line and the whole, and keeps at most one blank line in a row.
    """
    if (
        _ODD_CHARS.search(text) is None
        and "  " not in text
        and " \n" not in text
        and "\n " not in text
        and "\n\n\n" not in text
    ):
        return text.strip()
    text = html.unescape(text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _parse_created(value: Any) -> int | None:
    """twint ``created_at``: epoch ms (published data) or 'YYYY-mm-dd HH:MM:SS TZ'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value:
        if value.isdigit():
            return int(value)
        parts = value.split(" ")
        try:
            stamp = datetime.strptime(" ".join(parts[:2]), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
        return int(stamp.replace(tzinfo=timezone.utc).timestamp() * 1000)
    return None


@dataclass(slots=True)
class HumanTweet:
    """A tweet written by a person, as the corpus stores it."""

    id: str
    username: str
    text: str
    name: str = ""
    date: str = ""  # YYYY-MM-DD
    time: str = ""  # HH:MM:SS
    created_at: int | None = None  # epoch milliseconds
    likes: int = 0
    retweets: int = 0
    replies: int = 0
    link: str = ""
    reply_to: tuple[str, ...] = ()  # usernames this tweet answers (twint lists the author)
    urls: tuple[str, ...] = ()
    is_retweet: bool = False
    user_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # other twint fields, kept verbatim

    # -- twint conversion ------------------------------------------------------------
    @classmethod
    def from_twint(cls, obj: dict[str, Any]) -> HumanTweet:
        """Build from one twint object; raises ValueError when it is not a tweet."""
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        text = obj.get("tweet")
        if not isinstance(text, str):
            raise ValueError("no 'tweet' text field")
        username = obj.get("username")
        if not isinstance(username, str) or not username:
            raise ValueError("no 'username' field")
        link = obj.get("link")
        link = link if isinstance(link, str) else ""
        # The published data stores ids as JSON numbers rounded to double precision
        # (1267196520354295800 for ...295808); the link keeps the exact status id.
        # Fast path for the usual '.../status/<digits>' ending, the regex for the rest.
        head, _, tail = link.rpartition("/")
        if tail.isdigit() and head.endswith(("/status", "/statuses")):
            tweet_id = tail
        elif match := _STATUS_ID.search(link):
            tweet_id = match.group(1)
        elif obj.get("id") not in (None, ""):
            tweet_id = str(obj["id"])
        else:
            raise ValueError("no 'id' field")
        reply_to = obj.get("reply_to") or ()
        targets = tuple(
            str(r.get("username") or r.get("screen_name") or "") if isinstance(r, dict) else str(r)
            for r in (reply_to if isinstance(reply_to, list) else ())
        )
        urls = obj.get("urls") or ()
        known = _TWINT_FIELD_SET
        return cls(
            id=tweet_id,
            username=username,
            text=text,
            name=str(obj.get("name") or ""),
            date=str(obj.get("date") or ""),
            time=str(obj.get("time") or ""),
            created_at=_parse_created(obj.get("created_at")),
            likes=_as_int(obj.get("likes_count")),
            retweets=_as_int(obj.get("retweets_count")),
            replies=_as_int(obj.get("replies_count")),
            link=link,
            reply_to=targets,
            urls=tuple(str(u) for u in urls) if isinstance(urls, list) else (),
            is_retweet=bool(obj.get("retweet")) and obj.get("retweet") not in ("False", "false"),
            user_id=str(obj.get("user_id") or ""),
            # The published files hold exactly the twint fields: skip the scan when so.
            extra={}
            if len(obj) == len(known) and known.issuperset(obj)
            else {k: v for k, v in obj.items() if k not in known},
        )

    def to_twint(self) -> dict[str, Any]:
        """One twint JSON object with every twint field."""
        created = self.created_at
        date, time_ = self.date, self.time
        if created is not None and not date:
            stamp = datetime.fromtimestamp(created / 1000, tz=timezone.utc)
            date, time_ = stamp.strftime("%Y-%m-%d"), stamp.strftime("%H:%M:%S")
        obj: dict[str, Any] = {
            "id": int(self.id) if self.id.isdigit() else self.id,
            "conversation_id": self.id,
            "created_at": created if created is not None else "",
            "date": date,
            "time": time_,
            "timezone": "UTC",
            "user_id": self.user_id,
            "username": self.username,
            "name": self.name or self.username,
            "place": "",
            "tweet": self.text,
            "mentions": [],
            "urls": list(self.urls),
            "photos": [],
            "replies_count": self.replies,
            "retweets_count": self.retweets,
            "likes_count": self.likes,
            "hashtags": [],
            "cashtags": [],
            "link": self.link,
            "retweet": self.is_retweet,
            "quote_url": "",
            "video": 0,
            "near": "",
            "geo": "",
            "source": "",
            "user_rt_id": "",
            "user_rt": "",
            "retweet_id": "",
            "reply_to": [{"user_id": "", "username": u} for u in self.reply_to]
            or [{"user_id": "", "username": self.username}],
            "retweet_date": "",
        }
        for key, value in self.extra.items():
            if key not in obj:
                obj[key] = value
        return obj

    # -- what the game and filters ask -------------------------------------------------
    @property
    def handle(self) -> str:
        return "@" + self.username

    @property
    def display_text(self) -> str:
        return normalize_text(self.text)

    def replies_to_others(self) -> bool:
        """True when the tweet answers someone other than its author."""
        me = self.username.lower()
        return any(t and t.lower() != me for t in self.reply_to)
