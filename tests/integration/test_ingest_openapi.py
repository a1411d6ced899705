"""schemathesis against ingest's ``/openapi.json``: generated requests, valid and invalid,
to a real running ingest (uvicorn, real broker); no 5xx and every answer matches the
documented schema, status codes and headers.

The "schema-valid request accepted" check is left out: some refusals are not expressible in
JSON Schema (text that is only markup, or only whitespace, is refused with 422). For the
batch, "schema-violating request rejected" is left out too: by design a batch with some
invalid items is accepted (202) with those items refused one by one."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from services.common.settings import Settings
from services.ingest.main import create_app
from tests.support import DATA, EmbeddedBroker, free_port, wait_until

pytestmark = pytest.mark.broker
AUTH = {"Authorization": "Bearer test-token-a"}
EXAMPLES = 60


class Served:
    """An ASGI app on a free loopback port, served by uvicorn in a thread."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")  # type: ignore[arg-type]
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "config"
    directory.mkdir()
    shutil.copy(DATA / "feeds" / "feeds.yaml", directory / "feeds.yaml")
    return directory


def fuzz(base_url: str) -> list[str]:
    """Run every operation, positive and negative; returns the failures (empty: a pass)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                _run(operation, mode, base_url)
            except Exception as exc:  # collect per operation, report all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


def _run(operation: Any, mode: schemathesis.GenerationMode, base_url: str) -> None:
    excluded = [positive_data_acceptance]
    if operation.path == "/v1/reports/batch":
        excluded.append(negative_data_rejection)  # bad items are refused one by one

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, headers=AUTH, excluded_checks=excluded)

    run()


async def test_openapi_contract_holds_under_generated_requests(
    kafka: EmbeddedBroker, config_dir: Path, sqlite_url: str
) -> None:
    app = create_app(
        Settings(
            kafka_bootstrap=kafka.bootstrap,
            config_dir=config_dir,
            database_url=sqlite_url,
            ingest_polling=False,
        )
    )
    with Served(app) as served:
        await wait_until(lambda: served.server.started, 30, "ingest to serve")
        failures = await asyncio.to_thread(fuzz, served.url)
    assert not failures, "\n\n".join(failures)
