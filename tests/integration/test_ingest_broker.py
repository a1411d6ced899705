"""Ingest on the real broker and a real database: dedup across restarts and replicas, and
nothing lost or doubled through a broker outage."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import topics
from schemas.reports import ReportReceived
from services.common.settings import Settings
from services.ingest.main import create_app
from tests.support import DATA, EmbeddedBroker, wait_until

pytestmark = pytest.mark.broker
AUTH = {"Authorization": "Bearer test-token-a"}


def settings(kafka: EmbeddedBroker, tmp_path: Path, database_url: str, **kw: Any) -> Settings:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    shutil.copy(DATA / "feeds" / "feeds.yaml", config / "feeds.yaml")
    return Settings(
        kafka_bootstrap=kafka.bootstrap,
        config_dir=config,
        database_url=database_url,
        ingest_polling=False,
        **kw,
    )


@asynccontextmanager
async def running(s: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One ingest process's app, started and stopped like uvicorn would."""
    app = create_app(s)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as c:
            yield c


async def raw_reports(bootstrap: str) -> list[tuple[bytes, ReportReceived]]:
    """Everything on ``reports.raw.v1``, as (key, report)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(topics.REPORTS_RAW, p)
            for p in consumer.partitions_for_topic(topics.REPORTS_RAW) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[tuple[bytes, ReportReceived]] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [
                    (r.key or b"", ReportReceived.model_validate_json(r.value or b""))
                    for r in records
                ]
        return found
    finally:
        await consumer.stop()


async def post(c: httpx.AsyncClient, text: str, external_id: str | None = None) -> httpx.Response:
    body = {"text": text, **({"external_id": external_id} if external_id else {})}
    return await c.post("/v1/reports", json=body, headers=AUTH)


async def _dedup_across_restart_and_replicas(
    kafka: EmbeddedBroker, tmp_path: Path, database_url: str
) -> None:
    s = settings(kafka, tmp_path, database_url)
    async with running(s) as first:
        a = await post(first, "Villages shelled near Kadugli.", "k-1")
        b = await post(first, "Convoy attacked outside Kauda.")
        assert [a.json()["status"], b.json()["status"]] == ["accepted", "accepted"]
    # a restarted ingest, and two replicas side by side, remember both reports
    async with running(s) as again, running(s) as other:
        for c in (again, other):
            assert (await post(c, "Edited text, same id.", "k-1")).json() == {
                "id": a.json()["id"],
                "status": "duplicate",
            }
            assert (await post(c, " Convoy  attacked outside\nKauda. ")).json() == {
                "id": b.json()["id"],
                "status": "duplicate",
            }
        fresh = await other.post(
            "/v1/reports/batch", json=[{"text": "New", "external_id": "k-2"}], headers=AUTH
        )
        repeat = await again.post(
            "/v1/reports/batch", json=[{"text": "New", "external_id": "k-2"}], headers=AUTH
        )
        assert fresh.json()["results"][0]["status"] == "accepted"
        assert repeat.json()["results"][0]["status"] == "duplicate"
    on_kafka = await raw_reports(kafka.bootstrap)
    assert sorted(r.id for _, r in on_kafka) == sorted(
        [a.json()["id"], b.json()["id"], fresh.json()["results"][0]["id"]]
    )
    assert all(key.decode() == r.id for key, r in on_kafka)


async def test_dedup_holds_across_restart_and_replicas_sqlite(
    kafka: EmbeddedBroker, tmp_path: Path, sqlite_url: str
) -> None:
    await _dedup_across_restart_and_replicas(kafka, tmp_path, sqlite_url)


@pytest.mark.postgres
async def test_dedup_holds_across_restart_and_replicas_postgres(
    kafka: EmbeddedBroker, tmp_path: Path, postgres_url: str
) -> None:
    await _dedup_across_restart_and_replicas(kafka, tmp_path, postgres_url)


async def test_broker_outage_answers_503_and_loses_or_doubles_nothing(
    kafka: EmbeddedBroker, tmp_path: Path, sqlite_url: str
) -> None:
    s = settings(kafka, tmp_path, sqlite_url, ingest_publish_timeout_s=2.0)
    async with running(s) as c:
        before = [await post(c, f"Before the outage {n}.", f"before-{n}") for n in range(5)]
        assert {r.status_code for r in before} == {202}
        # the broker keeps nothing across its restart: read what it holds now
        first_life = await raw_reports(kafka.bootstrap)
        kafka.stop()
        await wait_until(
            lambda: _status(c, "/readyz", 503), 30, "readiness to fail without the broker"
        )
        during = [await post(c, f"During the outage {n}.", f"during-{n}") for n in range(3)]
        assert {r.status_code for r in during} == {503}
        assert all(int(r.headers["Retry-After"]) >= 1 for r in during)
        await kafka.start()
        await wait_until(lambda: _status(c, "/readyz", 200), 60, "readiness to return")

        async def retried() -> bool:
            answers = [await post(c, f"During the outage {n}.", f"during-{n}") for n in range(3)]
            return all(a.status_code == 202 for a in answers)

        await wait_until(retried, 60, "the retried reports to be accepted")
        again = [await post(c, f"Before the outage {n}.", f"before-{n}") for n in range(5)]
        assert {r.json()["status"] for r in again} == {"duplicate"}
        after = [await post(c, f"After the outage {n}.", f"after-{n}") for n in range(3)]
        assert {r.status_code for r in after} == {202}
    second_life = await raw_reports(kafka.bootstrap)
    ids = lambda rs: sorted(r.external_id or "" for _, r in rs)  # noqa: E731
    assert ids(first_life) == sorted(f"before-{n}" for n in range(5))
    assert ids(second_life) == sorted(
        [f"during-{n}" for n in range(3)] + [f"after-{n}" for n in range(3)]
    )


async def _status(c: httpx.AsyncClient, path: str, expected: int) -> bool:
    return (await c.get(path)).status_code == expected
