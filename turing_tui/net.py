"""HTTP with retries: one policy for every remote the tool talks to.

Dataset mirrors, scraper APIs, generator endpoints and deploy targets all fail the same
ways — 429 rate limits, 5xx hiccups, dropped connections — so they share one retry loop.
It honours the server's own hints (``Retry-After``, ``x-rate-limit-reset``,
``X-RateLimit-Reset``) and otherwise backs off exponentially with full jitter, a bounded
number of times. Responses that retrying cannot fix (404, 401, ...) go back to the caller.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable

import httpx

from turing_tui.errors import NetworkError

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "turing-tui (+https://github.com/turing-tui)"

# Called before each retry with (attempt number from 1, seconds to wait, reason).
RetryHook = Callable[[int, float, str], None]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt k waits U(0, min(cap, base * 2**k))."""

    retries: int = 4
    base: float = 0.5
    cap: float = 30.0
    max_hint: float = 300.0  # never trust a server hint beyond five minutes

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        if response is not None:
            hinted = server_hint(response)
            if hinted is not None:
                return min(max(hinted, 0.0), self.max_hint)
        return random.uniform(0, min(self.cap, self.base * (2**attempt)))


NO_RETRY = Backoff(retries=0)


def server_hint(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from its rate-limit headers, or None."""
    now = time.time() if now is None else now
    headers = response.headers
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.replace(".", "", 1).isdigit():
            return float(value)
        try:
            return parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            pass
    for name in ("x-rate-limit-reset", "x-ratelimit-reset"):
        value = headers.get(name)
        if not value:
            continue
        value = value.strip()
        try:
            number = float(value)
        except ValueError:
            try:  # Mastodon sends an ISO 8601 timestamp
                stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
                if stamp.tzinfo is None:
                    stamp = stamp.replace(tzinfo=timezone.utc)
                return stamp.timestamp() - now
            except ValueError:
                continue
        # Large numbers are epoch seconds; small ones are seconds to wait.
        return number - now if number > 1_000_000_000 else number
    return None


def _describe(response: httpx.Response | None, error: Exception | None) -> str:
    if response is not None:
        return f"HTTP {response.status_code}"
    return type(error).__name__ if error is not None else "unknown error"


def request_with_retry(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    backoff: Backoff = Backoff(),
    on_retry: RetryHook | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: object,
) -> httpx.Response:
    """Send a request, retrying transport errors and retryable statuses.

    Returns the first response that is not retryable (which may be a 4xx for the caller to
    judge). Raises :class:`NetworkError` once the retries are spent.
    """
    attempt = 0
    while True:
        response: httpx.Response | None = None
        error: Exception | None = None
        try:
            response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
            if response.status_code not in RETRY_STATUSES:
                return response
        except (httpx.TransportError, httpx.DecodingError) as exc:
            error = exc
        if attempt >= backoff.retries:
            raise NetworkError(
                f"{method} {url} failed after {attempt + 1} attempts ({_describe(response, error)}).",
                reason=_describe(response, error),
            )
        wait = backoff.delay(attempt, response)
        if on_retry is not None:
            on_retry(attempt + 1, wait, _describe(response, error))
        if response is not None:
            response.close()
        sleep(wait)
        attempt += 1


async def arequest_with_retry(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    backoff: Backoff = Backoff(),
    on_retry: RetryHook | None = None,
    **kwargs: object,
) -> httpx.Response:
    """The asyncio twin of :func:`request_with_retry`."""
    attempt = 0
    while True:
        response: httpx.Response | None = None
        error: Exception | None = None
        try:
            response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
            if response.status_code not in RETRY_STATUSES:
                return response
        except (httpx.TransportError, httpx.DecodingError) as exc:
            error = exc
        if attempt >= backoff.retries:
            raise NetworkError(
                f"{method} {url} failed after {attempt + 1} attempts ({_describe(response, error)}).",
                reason=_describe(response, error),
            )
        wait = backoff.delay(attempt, response)
        if on_retry is not None:
            on_retry(attempt + 1, wait, _describe(response, error))
        if response is not None:
            await response.aclose()
        await asyncio.sleep(wait)
        attempt += 1
