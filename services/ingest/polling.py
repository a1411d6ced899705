"""Polls RSS/Atom feeds that have a ``poll:`` block and ingests their entries as reports.

Each fetch is a conditional GET (ETag, Last-Modified); the validators are remembered only
after the entries reached Kafka, so a failed publish is fetched again in full. Failures
back off exponentially. Only http(s) URLs resolving to public addresses are fetched unless
the feed sets ``allow_private`` — a feed config must not become a probe of the internal
network. Each replica polls every feed; deduplication makes the repeats harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import re
import socket
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx

from schemas.reports import ReportReceived
from services.ingest.feeds import Feed
from services.ingest.intake import Refused, receive, validate
from services.ingest.metrics import IngestMetrics
from services.ingest.publisher import ReportPublisher, Unavailable

log = logging.getLogger("tocsin.ingest.polling")

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_BACKOFF_S = 3600.0
CHUNK = 1_000
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# feedparser's bozo flags that are only about declared vs. actual encoding: the parse is fine.
_HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


class FetchRefused(Exception):
    """The URL is not http(s), or resolves to an address the feed may not reach."""


class FetchFailed(Exception):
    """The server did not answer with a feed document (status, size, network)."""


async def check_address(url: str, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts with any non-public address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"only http(s) URLs are polled: {url!r}")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except OSError as exc:
        raise FetchFailed(f"cannot resolve {parts.hostname}: {exc}") from exc
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            raise FetchRefused(
                f"{parts.hostname} resolves to non-public {address}; set allow_private: true"
            )


def entry_item(entry: Any, feed_language: str | None) -> dict[str, Any] | None:
    """An RSS/Atom entry as a ``ReportIn`` body, or None when it has no text at all."""
    content = entry.get("content") or []
    text = (content[0].get("value") if content else None) or entry.get("summary") or ""
    title = entry.get("title") or None
    if not text.strip():
        text = title or ""
    if not text.strip():
        return None
    external_id = entry.get("id") or entry.get("link") or None
    if external_id and len(external_id) > 256:
        external_id = hashlib.sha256(external_id.encode()).hexdigest()
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    detail = content[0] if content else entry.get("summary_detail") or {}
    language = detail.get("language") or feed_language
    link = entry.get("link")
    return {
        "text": text,
        "title": title,
        "url": link if link and urlsplit(link).scheme in ("http", "https") else None,
        "external_id": external_id,
        "published_at": _utc(parsed),
        "language": language if language and _BCP47.match(language) else None,
        "kind": "news",
    }


def _utc(parsed: Any) -> str | None:
    """feedparser's UTC ``struct_time`` as RFC 3339."""
    if not parsed:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).isoformat()


class FeedPoller:
    """Fetches one feed; ``poll_once`` is one fetch, ``run`` the schedule with backoff."""

    def __init__(
        self,
        feed: Feed,
        client: httpx.AsyncClient,
        publisher: ReportPublisher,
        metrics: IngestMetrics,
    ) -> None:
        assert feed.poll is not None
        self.feed = feed
        self.poll = feed.poll
        self.client = client
        self.publisher = publisher
        self.metrics = metrics
        self.etag: str | None = None
        self.last_modified: str | None = None
        self.failures = 0
        for outcome in ("ok", "not_modified", "malformed", "refused", "error"):
            metrics.polls.labels(feed.id, outcome)

    async def run(self) -> None:
        while True:
            outcome = await self.poll_once()
            await asyncio.sleep(self.next_delay(outcome))

    def next_delay(self, outcome: str) -> float:
        every = self.poll.every.total_seconds()
        if outcome in ("ok", "not_modified"):
            self.failures = 0
            return every
        self.failures += 1
        return float(min(every * 2**self.failures, max(every, MAX_BACKOFF_S)))

    async def poll_once(self) -> str:
        """Fetch, parse and ingest; returns the outcome recorded in the metrics."""
        try:
            outcome = await self._poll()
        except FetchRefused as exc:
            log.error("feed %s: %s", self.feed.id, exc)
            outcome = "refused"
        except (FetchFailed, httpx.HTTPError, Unavailable) as exc:
            log.warning("feed %s: fetch failed: %s", self.feed.id, exc)
            outcome = "error"
        self.metrics.polls.labels(self.feed.id, outcome).inc()
        if outcome in ("ok", "not_modified"):
            self.metrics.poll_last_success.labels(self.feed.id).set(time.time())
        return outcome

    async def _poll(self) -> str:
        response, body = await self._fetch()
        if response.status_code == 304:
            return "not_modified"
        parsed = await asyncio.to_thread(
            feedparser.parse,
            body,
            response_headers={k.lower(): v for k, v in response.headers.items()},
            sanitize_html=False,
            resolve_relative_uris=False,
        )
        if parsed.get("bozo") and not isinstance(parsed.get("bozo_exception"), _HARMLESS):
            log.error(
                "feed %s: malformed document skipped: %s",
                self.feed.id,
                parsed.get("bozo_exception"),
            )
            return "malformed"
        reports = self._reports(parsed)
        for start in range(0, len(reports), CHUNK):
            await self.publisher.submit(self.feed.id, reports[start : start + CHUNK])
        self.etag = response.headers.get("etag")
        self.last_modified = response.headers.get("last-modified")
        return "ok"

    def _reports(self, parsed: Any) -> list[ReportReceived]:
        feed_language = parsed.get("feed", {}).get("language")
        reports = []
        for number, entry in enumerate(parsed.get("entries", [])):
            item = entry_item(entry, feed_language)
            if item is None:
                continue
            try:
                reports.append(receive(self.feed.id, validate(item)))
            except Refused as exc:
                log.warning("feed %s: entry %d skipped: %s", self.feed.id, number, exc)
        return reports

    async def _fetch(self) -> tuple[httpx.Response, bytes]:
        headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        url = str(self.poll.url)
        timeout = self.poll.timeout.total_seconds()
        for _ in range(MAX_REDIRECTS + 1):
            await check_address(url, self.poll.allow_private)
            async with self.client.stream("GET", url, headers=headers, timeout=timeout) as r:
                if r.is_redirect and "location" in r.headers:
                    url = urljoin(url, r.headers["location"])
                    continue
                if r.status_code == 304:
                    return r, b""
                if r.status_code != 200:
                    raise FetchFailed(f"HTTP {r.status_code} from {url}")
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise FetchFailed(f"document larger than {MAX_DOCUMENT_BYTES} bytes")
                return r, bytes(body)
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects from {self.poll.url}")


class Polling:
    """The pollers of every feed with a ``poll:`` block, as tasks of the app's lifespan."""

    def __init__(self, pollers: list[FeedPoller]) -> None:
        self.pollers = pollers
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(p.run(), name=f"poll-{p.feed.id}") for p in self.pollers]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
