"""Ingest's HTTP contract, with the broker replaced by FastStream's TestKafkaBroker."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker

from schemas import topics
from schemas.reports import ReportReceived
from services.common.settings import Settings
from services.ingest.main import create_app
from tests.support import DATA

AUTH = {"Authorization": "Bearer test-token-a"}
SLOW = {"Authorization": "Bearer test-token-slow"}
NDJSON = {**AUTH, "Content-Type": "application/x-ndjson"}


@dataclass
class Ingest:
    app: FastAPI
    http: httpx.AsyncClient
    published: list[ReportReceived]
    raw: list[dict[str, Any]]


def settings_for(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    shutil.copy(DATA / "feeds" / "feeds.yaml", config / "feeds.yaml")
    return Settings(config_dir=config, database_url=database_url, ingest_polling=False, **overrides)


async def started(settings: Settings) -> AsyncIterator[Ingest]:
    app = create_app(settings)
    published: list[ReportReceived] = []

    @app.state.broker.subscriber(topics.REPORTS_RAW, group_id="test")
    async def seen(r: ReportReceived) -> None:
        published.append(r)

    async with TestKafkaBroker(app.state.broker), app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as c:
            raw = _RawCalls(seen.mock)
            yield Ingest(app, c, published, raw)  # type: ignore[arg-type]


class _RawCalls(list[dict[str, Any]]):
    """The JSON bodies the test subscriber received, as Kafka carried them."""

    def __init__(self, mock: Any) -> None:
        super().__init__()
        self._mock = mock

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter([c.args[0] for c in self._mock.call_args_list])


@pytest.fixture
async def ingest(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Ingest]:
    async for i in started(settings_for(tmp_path, sqlite_url)):
        yield i


async def test_accepted_report_is_on_kafka_with_feed_from_token(ingest: Ingest) -> None:
    r = await ingest.http.post(
        "/v1/reports", json={"text": "Shelling in Misrata.", "country": "ly"}, headers=AUTH
    )
    assert r.status_code == 202
    assert r.json()["status"] == "accepted"
    assert [(p.id, p.feed_id, p.country) for p in ingest.published] == [
        (r.json()["id"], "feed-a", "LY")
    ]


async def test_report_is_normalised_before_publishing(ingest: Ingest) -> None:
    body = {
        "text": "<p>Soldiers fired on   protesters in Andijan&nbsp;today.</p>"
        "<script>alert(1)</script><p>Cafe&#769; owners fled.</p>",
        "title": "  Andijan:\n<b>shots</b>  ",
        "url": "HTTPS://Example.ORG:443/news?utm_source=x&b=2&a=1#top",
    }
    r = await ingest.http.post("/v1/reports", json=body, headers=AUTH)
    assert r.status_code == 202
    [p] = ingest.published
    assert p.text == "Soldiers fired on protesters in Andijan today.\nCaf\u00e9 owners fled."
    assert p.title == "Andijan: shots"
    assert p.url == "https://example.org/news?a=1&b=2"
    assert p.language == "en"


async def test_given_language_is_kept(ingest: Ingest) -> None:
    body = {"text": "Government forces shelled the town overnight.", "language": "fr"}
    await ingest.http.post("/v1/reports", json=body, headers=AUTH)
    assert [p.language for p in ingest.published] == ["fr"]


async def test_repeat_is_a_duplicate_with_the_same_id_and_no_second_message(
    ingest: Ingest,
) -> None:
    first = await ingest.http.post(
        "/v1/reports", json={"text": "a", "external_id": "42"}, headers=AUTH
    )
    second = await ingest.http.post(
        "/v1/reports", json={"text": "b", "external_id": "42"}, headers=AUTH
    )
    assert first.json() == {"id": first.json()["id"], "status": "accepted"}
    assert second.json() == {"id": first.json()["id"], "status": "duplicate"}
    assert len(ingest.published) == 1


async def test_same_content_differently_formatted_is_a_duplicate(ingest: Ingest) -> None:
    first = await ingest.http.post(
        "/v1/reports", json={"text": "Homes burned in Osh.", "title": "Osh"}, headers=AUTH
    )
    second = await ingest.http.post(
        "/v1/reports",
        json={"text": "<p>Homes  burned\nin Osh.</p>", "title": " Osh "},
        headers=AUTH,
    )
    assert second.json() == {"id": first.json()["id"], "status": "duplicate"}
    assert len(ingest.published) == 1


async def test_reporter_contact_never_leaves_ingest(ingest: Ingest) -> None:
    body = {
        "text": "Detentions at the checkpoint.",
        "kind": "field",
        "reporter": {"name": "Aigul", "email": "aigul@example.org", "phone": "+996 555"},
    }
    r = await ingest.http.post("/v1/reports", json=body, headers=AUTH)
    assert r.status_code == 202
    [carried] = list(ingest.raw)
    assert "reporter" not in carried
    assert "aigul" not in json.dumps(carried).lower()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
async def test_missing_or_bad_token_is_401(ingest: Ingest, headers: dict[str, str]) -> None:
    for path, body in (("/v1/reports", {"text": "x"}), ("/v1/reports/batch", [{"text": "x"}])):
        r = await ingest.http.post(path, json=body, headers=headers)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert not ingest.published


async def test_invalid_report_is_422_naming_the_field(ingest: Ingest) -> None:
    r = await ingest.http.post(
        "/v1/reports", json={"text": "", "country": "Kyrgyzstan"}, headers=AUTH
    )
    assert r.status_code == 422
    fields = {tuple(e["loc"]) for e in r.json()["detail"]}
    assert {("body", "text"), ("body", "country")} <= fields
    assert not ingest.published


async def test_text_that_is_only_markup_is_422(ingest: Ingest) -> None:
    r = await ingest.http.post(
        "/v1/reports", json={"text": "<p> <br> </p><script>x()</script>"}, headers=AUTH
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "text"]
    assert "markup" in r.json()["detail"][0]["msg"]


async def test_body_over_the_limit_is_413(tmp_path: Path, sqlite_url: str) -> None:
    settings = settings_for(tmp_path, sqlite_url, ingest_max_body_bytes=4096)
    async for i in started(settings):
        big = [{"text": f"{n}" + "x" * 1000} for n in range(5)]
        r = await i.http.post("/v1/reports/batch", json=big, headers=AUTH)
        assert r.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as read
            yield b'[{"text": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}]'

        r = await i.http.post(
            "/v1/reports/batch",
            content=chunks(),
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        small = await i.http.post("/v1/reports/batch", json=big[:2], headers=AUTH)
        assert small.status_code == 202
        assert len(i.published) == 2


async def test_over_the_rate_limit_is_429_with_retry_after(ingest: Ingest) -> None:
    for n in range(2):
        ok = await ingest.http.post("/v1/reports", json={"text": f"r{n}"}, headers=SLOW)
        assert ok.status_code == 202
    r = await ingest.http.post("/v1/reports", json={"text": "r3"}, headers=SLOW)
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    # the limit is per feed: another feed is unaffected
    assert (await ingest.http.post("/v1/reports", json={"text": "r3"}, headers=AUTH)).is_success
    assert [p.feed_id for p in ingest.published] == ["feed-slow", "feed-slow", "feed-a"]


async def test_kafka_failure_is_503_and_the_report_is_not_marked_seen(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*args: Any, **kwargs: Any) -> None:
        raise KafkaConnectionError("broker down")

    broker = ingest.app.state.broker
    with monkeypatch.context() as m:
        m.setattr(broker, "publish", down)
        r = await ingest.http.post(
            "/v1/reports", json={"text": "a", "external_id": "7"}, headers=AUTH
        )
        b = await ingest.http.post("/v1/reports/batch", json=[{"text": "b"}], headers=AUTH)
    for answer in (r, b):
        assert answer.status_code == 503
        assert int(answer.headers["Retry-After"]) >= 1
    again = await ingest.http.post(
        "/v1/reports", json={"text": "a", "external_id": "7"}, headers=AUTH
    )
    assert again.json()["status"] == "accepted"
    assert len(ingest.published) == 1


async def test_saturated_producer_is_503(tmp_path: Path, sqlite_url: str) -> None:
    async for i in started(settings_for(tmp_path, sqlite_url, ingest_max_in_flight=2)):
        r = await i.http.post(
            "/v1/reports/batch", json=[{"text": f"t{n}"} for n in range(3)], headers=AUTH
        )
        assert r.status_code == 503
        assert "saturated" in r.json()["detail"]
        assert not i.published


async def test_batch_answers_per_item(ingest: Ingest) -> None:
    items = [
        {"text": "Good one."},
        {"text": "", "country": "XYZ"},
        {"text": "Good two.", "external_id": "e2"},
        {"text": "Good one."},
        {"text": "ok", "unknown": 1},
    ]
    r = await ingest.http.post("/v1/reports/batch", json=items, headers=AUTH)
    assert r.status_code == 202
    body = r.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 1, 2)
    results = body["results"]
    assert [x["index"] for x in results] == [0, 1, 2, 3, 4]
    assert [x["status"] for x in results] == [
        "accepted",
        "rejected",
        "accepted",
        "duplicate",
        "rejected",
    ]
    assert {tuple(e["loc"]) for e in results[1]["errors"]} == {("text",), ("country",)}
    assert results[4]["errors"][0]["loc"] == ["unknown"]
    assert results[3]["id"] == results[0]["id"]
    assert sorted(p.id for p in ingest.published) == sorted([results[0]["id"], results[2]["id"]])
    sample = ingest.app.state.metrics.registry.get_sample_value
    assert [
        sample("tocsin_ingest_reports_total", {"feed": "feed-a", "outcome": o})
        for o in ("accepted", "duplicate", "rejected")
    ] == [2, 1, 2]


async def test_ndjson_batch_answers_per_line(ingest: Ingest) -> None:
    body = b'{"text": "first"}\n\n{"text": broken\n{"text": "third", "country": "kg"}\n'
    r = await ingest.http.post("/v1/reports/batch", content=body, headers=NDJSON)
    assert r.status_code == 202
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "rejected", "accepted"]
    assert "invalid JSON" in results[1]["errors"][0]["msg"]
    assert sorted(p.text for p in ingest.published) == ["first", "third"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "1 to 1000"),
        (json.dumps([{"text": "x"}] * 1001).encode(), "got 1001"),
        (b'{"text": "not an array"}', "JSON array"),
        (b"[{", "invalid JSON"),
    ],
)
async def test_unusable_batch_is_422(ingest: Ingest, body: bytes, reason: str) -> None:
    r = await ingest.http.post(
        "/v1/reports/batch", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert reason in r.json()["detail"][0]["msg"]
    assert not ingest.published


async def test_batch_with_no_valid_item_is_422_by_index(ingest: Ingest) -> None:
    r = await ingest.http.post(
        "/v1/reports/batch", json=[{"text": ""}, {"title": "no text"}], headers=AUTH
    )
    assert r.status_code == 422
    assert {tuple(e["loc"]) for e in r.json()["detail"]} == {
        ("body", 0, "text"),
        ("body", 1, "text"),
    }


async def test_full_batch_of_1000_is_accepted(ingest: Ingest) -> None:
    items = [{"text": f"Report number {n}.", "external_id": str(n)} for n in range(1000)]
    r = await ingest.http.post("/v1/reports/batch", json=items, headers=AUTH)
    assert r.status_code == 202
    assert r.json()["accepted"] == 1000
    assert len({p.id for p in ingest.published}) == 1000


async def test_undecodable_body_is_422_not_400(ingest: Ingest) -> None:
    r = await ingest.http.post(
        "/v1/reports",
        content=b"\xff\xfe{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body"]


async def test_unreachable_database_is_503_and_nothing_published(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app = create_app(settings)
    async with TestKafkaBroker(app.state.broker):  # no lifespan: it would create tables
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as c:
            r = await c.post("/v1/reports", json={"text": "x"}, headers=AUTH)
    assert r.status_code == 503
    assert "database" in r.json()["detail"]
    assert r.headers["Retry-After"] == "5"
