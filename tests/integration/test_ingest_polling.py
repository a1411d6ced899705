"""Polling over real HTTP: a loopback server serving saved RSS 2.0 and Atom documents with
ETags, ingest on the real broker. Entries land on ``reports.raw.v1`` once however often
the feeds are fetched; 304s publish nothing; a malformed feed is reported and skipped."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from services.common.settings import Settings
from services.ingest.main import create_app
from tests.integration.test_ingest_broker import raw_reports
from tests.support import DATA, EmbeddedBroker, wait_until

pytestmark = pytest.mark.broker
FEEDS = DATA / "feeds"


class FeedServer:
    """Serves documents by path with an ETag; answers 304 to a matching If-None-Match."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[bytes, str]] = {}
        self.log: list[tuple[str, int]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body, etag = server.documents.get(self.path, (b"", ""))
                if not etag:
                    status = 404
                elif self.headers.get("If-None-Match") == etag:
                    status = 304
                else:
                    status = 200
                server.log.append((self.path, status))
                self.send_response(status)
                if etag:
                    self.send_header("ETag", etag)
                if status == 200:
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def serve(self, path: str, body: bytes, etag: str) -> None:
        self.documents[path] = (body, etag)

    def answered(self, path: str, status: int) -> bool:
        return (path, status) in self.log

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def config(directory: Path, base: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "feeds.yaml").write_text(
        "feeds:\n"
        + "".join(
            f"  - id: {name}\n    poll: {{url: '{base}/{path}', every: 1s{extra}}}\n"
            for name, path, extra in [
                ("monitor", "rss2.xml", ", allow_private: true"),
                ("bulletin", "atom.xml", ", allow_private: true"),
                ("broken", "malformed.xml", ", allow_private: true"),
                ("sneaky", "sneaky.xml", ""),  # loopback without permission: refused
            ]
        )
    )
    return directory


async def test_feeds_are_polled_once_per_entry_with_304s_and_malformed_skipped(
    kafka: EmbeddedBroker, feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    rss = (FEEDS / "rss2.xml").read_bytes()
    feed_server.serve("/rss2.xml", rss, '"rss-1"')
    feed_server.serve("/atom.xml", (FEEDS / "atom.xml").read_bytes(), '"atom-1"')
    feed_server.serve("/malformed.xml", (FEEDS / "malformed.xml").read_bytes(), '"bad-1"')
    feed_server.serve("/sneaky.xml", rss, '"sneaky-1"')
    settings = Settings(
        kafka_bootstrap=kafka.bootstrap,
        config_dir=config(tmp_path / "config", feed_server.base),
        database_url=sqlite_url,
    )
    app = create_app(settings)
    sample = app.state.metrics.registry.get_sample_value

    async def on_kafka(n: int) -> bool:
        return len(await raw_reports(kafka.bootstrap)) >= n

    async with app.router.lifespan_context(app):
        await wait_until(lambda: on_kafka(5), 30, "the five entries on reports.raw.v1")
        await wait_until(
            lambda: (
                feed_server.answered("/rss2.xml", 304) and feed_server.answered("/atom.xml", 304)
            ),
            30,
            "conditional GETs answered 304",
        )
        # the monitor publishes one more item: only that one is new
        extra = (
            b"<item><title>Curfew in Osh</title><guid>monitor-2010-06-11-osh</guid>"
            b"<description>A curfew was declared in Osh after clashes.</description></item>"
        )
        feed_server.serve("/rss2.xml", rss.replace(b"</channel>", extra + b"</channel>"), '"2"')
        await wait_until(lambda: on_kafka(6), 30, "the new item on reports.raw.v1")
        await wait_until(
            lambda: (
                (
                    sample("tocsin_ingest_polls_total", {"feed": "broken", "outcome": "malformed"})
                    or 0
                )
                >= 2
            ),
            30,
            "the malformed feed to be reported twice",
        )
        # one more full round after the change, so any repeat would have been published
        await wait_until(lambda: feed_server.log.count(("/rss2.xml", 304)) >= 2, 30, "another 304")
        assert sample("tocsin_ingest_polls_total", {"feed": "sneaky", "outcome": "refused"})
        assert sample("tocsin_ingest_poll_last_success_timestamp_seconds", {"feed": "monitor"})
        assert (
            sample("tocsin_ingest_poll_last_success_timestamp_seconds", {"feed": "broken"}) is None
        )
    reports = [r for _, r in await raw_reports(kafka.bootstrap)]
    assert sorted((r.feed_id, r.external_id) for r in reports) == [
        ("bulletin", "urn:uuid:7a1c1d0e-0000-4000-8000-000000000002"),
        ("bulletin", "urn:uuid:7a1c1d0e-0000-4000-8000-000000000003"),
        ("monitor", "https://monitor.example.org/2005/05/convoy"),
        ("monitor", "monitor-2005-05-13-andijan"),
        ("monitor", "monitor-2005-05-15-refugees"),
        ("monitor", "monitor-2010-06-11-osh"),
    ]
    # the sneaky feed's fetches never reached the server
    assert {path for path, _ in feed_server.log} == {"/rss2.xml", "/atom.xml", "/malformed.xml"}
