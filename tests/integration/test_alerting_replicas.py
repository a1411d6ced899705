"""Two classify replicas in one consumer group on the real broker: no duplicate alert, and
killing one mid-window loses no count (the survivor takes its countries over from the DB)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from schemas.classification import ReportClassified
from services.classify.handlers import ALERTING_GROUP
from tests.alerting_support import classified
from tests.integration.test_alerting import alerting_drained, published_alerts, send
from tests.support import EmbeddedBroker, free_port, wait_until, write_config

pytestmark = pytest.mark.broker

CANDIDATES = ["KG", "LY", "SD", "SY", "MM", "CD", "ET", "ML", "NG", "SS", "UA", "YE", "AF", "IQ"]
CANDIDATES += [a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def two_countries_per_partition(partitions: int = 4) -> list[str]:
    """Countries spread over every partition, so both replicas own some."""
    chosen: dict[int, list[str]] = {}
    for country in CANDIDATES:
        p = DefaultPartitioner()(country.encode(), list(range(partitions)), list(range(partitions)))
        if len(chosen.setdefault(p, [])) < 2:
            chosen[p].append(country)
    assert sorted(len(c) for c in chosen.values()) == [2] * partitions
    return [c for cs in chosen.values() for c in cs]


def replica(kafka: EmbeddedBroker, config: Path, url: str) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "TOCSIN_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "TOCSIN_CONFIG_DIR": str(config),
        "TOCSIN_DATABASE_URL": url,
        "TOCSIN_CLASSIFY_PORT": str(free_port()),
    }
    tocsin = Path(sys.executable).parent / "tocsin"
    return subprocess.Popen(
        [str(tocsin), "serve", "classify"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def members(bootstrap: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([ALERTING_GROUP])
        [group] = response.groups
        return len(group[5]) if group[2] == "Stable" else 0
    finally:
        await admin.close()


async def test_two_replicas_no_duplicates_and_a_killed_one_loses_no_count(
    kafka: EmbeddedBroker, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path / "config")
    countries = two_countries_per_partition()
    now = datetime.now(UTC)

    def spike(country: str, i: int) -> ReportClassified:
        return classified(
            f"{country}-{i}", country=country, severity=1, at=now + timedelta(seconds=i)
        )

    replicas: list[subprocess.Popen[bytes]] = []
    try:
        for n in (1, 2):  # one at a time: each join settles before the next
            replicas.append(replica(kafka, config, database_url))
            await wait_until(
                lambda n=n: _is(members(kafka.bootstrap), n), 300, f"{n} replica(s) in the group"
            )
        critical = [
            classified(f"{c}-crit", country=c, indicator="aerial_attack", severity=3, at=now)
            for c in countries[:3]
        ]
        await send(kafka.bootstrap, [spike(c, i) for i in range(4) for c in countries] + critical)
        await wait_until(
            lambda: alerting_drained(kafka.bootstrap), 60, "the first four per country"
        )
        before = await published_alerts(kafka.bootstrap)
        assert sorted(a.fingerprint for a in before) == sorted(
            f"{c}:aerial_attack" for c in countries[:3]
        ), "four stories in an hour are not yet a spike"

        replicas[0].send_signal(signal.SIGKILL)
        replicas[0].wait(10)
        await send(kafka.bootstrap, [spike(c, 4) for c in countries])
        await wait_until(
            lambda: alerting_drained(kafka.bootstrap), 120, "the survivor to take over and count"
        )
    finally:
        for p in replicas:
            if p.poll() is None:
                p.terminate()
                p.wait(20)

    alerts = await published_alerts(kafka.bootstrap)
    versions = Counter((a.fingerprint, a.version) for a in alerts)
    assert [k for k, n in versions.items() if n > 1] == [], "no alert version published twice"
    spikes = {a.country: a for a in alerts if a.rule == "spike"}
    assert sorted(spikes) == sorted(countries), "every country's fifth story fired its spike"
    assert {(a.version, a.report_count) for a in spikes.values()} == {(1, 5)}
    assert len(alerts) == len(countries) + 3


async def _is(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]
