"""The feed poller over ``httpx.MockTransport``, with a fake publisher."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from schemas.reports import ReportReceived
from services.common.config import ConfigError
from services.ingest.feeds import Feed, FeedsConfig, load_feeds
from services.ingest.metrics import IngestMetrics
from services.ingest.polling import FeedPoller
from services.ingest.publisher import Unavailable
from tests.support import DATA

FEEDS = DATA / "feeds"
PUBLIC = "http://93.184.216.34/feed.xml"  # an IP literal: no DNS needed in the sandbox


class FakePublisher:
    def __init__(self) -> None:
        self.submitted: list[ReportReceived] = []
        self.fail = False

    async def submit(self, feed: str, reports: list[ReportReceived]) -> list[str]:
        if self.fail:
            raise Unavailable("kafka down", 5)
        self.submitted += reports
        return ["accepted"] * len(reports)


def poller(
    handler: Callable[[httpx.Request], httpx.Response],
    url: str = PUBLIC,
    allow_private: bool = False,
) -> tuple[FeedPoller, FakePublisher, IngestMetrics]:
    feed = Feed.model_validate(
        {"id": "monitor", "poll": {"url": url, "every": "60s", "allow_private": allow_private}}
    )
    publisher = FakePublisher()
    metrics = IngestMetrics()
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return FeedPoller(feed, client, publisher, metrics), publisher, metrics  # type: ignore[arg-type]


def serve(name: str, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    body = (FEEDS / name).read_bytes()
    return lambda request: httpx.Response(
        200, content=body, headers={"Content-Type": "application/xml", **headers}
    )


async def test_rss_items_become_normalised_reports() -> None:
    p, publisher, metrics = poller(serve("rss2.xml"))
    assert await p.poll_once() == "ok"
    by_id = {r.external_id: r for r in publisher.submitted}
    assert set(by_id) == {
        "monitor-2005-05-13-andijan",
        "https://monitor.example.org/2005/05/convoy",
        "monitor-2005-05-15-refugees",
    }
    andijan = by_id["monitor-2005-05-13-andijan"]
    assert andijan.feed_id == "monitor"
    assert andijan.text.startswith("Security forces opened fire on thousands of protesters")
    assert "<b>" not in andijan.text
    assert andijan.url == "https://monitor.example.org/2005/05/andijan"
    assert andijan.published_at == datetime(2005, 5, 13, 18, tzinfo=UTC)
    assert andijan.language == "en"
    assert metrics.registry.get_sample_value(
        "tocsin_ingest_poll_last_success_timestamp_seconds", {"feed": "monitor"}
    )


async def test_atom_entries_keep_their_language() -> None:
    p, publisher, _ = poller(serve("atom.xml"))
    assert await p.poll_once() == "ok"
    assert sorted((r.language, r.title) for r in publisher.submitted) == [
        ("en", "Hospitals overwhelmed in Benghazi"),
        ("fr", "Des avions militaires tirent sur des manifestants"),
    ]


async def test_conditional_get_and_304() -> None:
    seen: list[httpx.Request] = []
    body = (FEEDS / "rss2.xml").read_bytes()
    validators = {"ETag": '"v1"', "Last-Modified": "Sat, 14 May 2005 10:00:00 GMT"}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("If-None-Match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=body, headers=validators)

    p, publisher, metrics = poller(handler)
    assert await p.poll_once() == "ok"
    assert await p.poll_once() == "not_modified"
    assert "If-None-Match" not in seen[0].headers
    assert seen[1].headers["If-None-Match"] == '"v1"'
    assert seen[1].headers["If-Modified-Since"] == validators["Last-Modified"]
    assert len(publisher.submitted) == 3
    sample = metrics.registry.get_sample_value
    assert sample("tocsin_ingest_polls_total", {"feed": "monitor", "outcome": "not_modified"}) == 1


async def test_malformed_feed_is_reported_skipped_and_backed_off() -> None:
    p, publisher, metrics = poller(serve("malformed.xml", ETag='"bad"'))
    assert await p.poll_once() == "malformed"
    assert not publisher.submitted
    assert p.etag is None
    assert (
        metrics.registry.get_sample_value(
            "tocsin_ingest_polls_total", {"feed": "monitor", "outcome": "malformed"}
        )
        == 1
    )
    assert (
        metrics.registry.get_sample_value(
            "tocsin_ingest_poll_last_success_timestamp_seconds", {"feed": "monitor"}
        )
        is None
    )
    assert [p.next_delay("malformed"), p.next_delay("error"), p.next_delay("ok")] == [
        120.0,
        240.0,
        60.0,
    ]


async def test_backoff_is_capped() -> None:
    p, _, _ = poller(serve("rss2.xml"))
    delays = [p.next_delay("error") for _ in range(12)]
    assert max(delays) == 3600.0


async def test_unavailable_kafka_keeps_validators_so_the_next_fetch_is_full() -> None:
    p, publisher, _ = poller(serve("rss2.xml", ETag='"v1"'))
    publisher.fail = True
    assert await p.poll_once() == "error"
    assert p.etag is None
    publisher.fail = False
    assert await p.poll_once() == "ok"
    assert p.etag == '"v1"'


async def test_http_error_is_a_failure() -> None:
    p, publisher, _ = poller(lambda r: httpx.Response(500))
    assert await p.poll_once() == "error"
    assert not publisher.submitted


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/feed",
        "http://10.1.2.3/feed",
        "http://[::1]/feed",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
async def test_private_addresses_are_refused_without_a_request(url: str) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200)

    p, _, _ = poller(handler, url=url)
    assert await p.poll_once() == "refused"
    assert not requests


async def test_private_address_allowed_when_configured() -> None:
    p, publisher, _ = poller(serve("rss2.xml"), url="http://127.0.0.1:9/feed", allow_private=True)
    assert await p.poll_once() == "ok"
    assert publisher.submitted


async def test_redirect_to_a_private_address_is_refused() -> None:
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://192.168.0.1/admin"})

    p, _, _ = poller(handler)
    assert await p.poll_once() == "refused"
    assert requests == [PUBLIC]


def test_only_http_urls_are_accepted_in_config(tmp_path: Any) -> None:
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n  - id: x\n    poll: {url: 'file:///etc/passwd', every: 60s}\n"
    )
    with pytest.raises(ConfigError, match=r"feeds\.0\.poll\.url"):
        load_feeds(tmp_path)


def test_dev_config_loads() -> None:
    from services.common.settings import DEV_CONFIG_DIR

    assert isinstance(load_feeds(DEV_CONFIG_DIR), FeedsConfig)
