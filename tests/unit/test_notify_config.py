"""focal_points.yaml validation, routing by country, region, indicator and severity."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.common.config import ConfigError
from services.common.settings import Settings
from services.notify.main import create_app
from services.notify.routing import load_focal_points, route
from tests.factories import alert
from tests.support import write_config

GOOD = """
regions: {central_asia: [KG, UZ]}
desk: desk
focal_points:
  - {id: desk, name: Desk, email: [d@example.org], countries: ["*"], min_severity: 3}
  - id: ca
    name: Central Asia
    email: [ca@example.org]
    regions: [central_asia]
    indicators: [aerial_attack, killing_of_civilians]
    min_severity: 2
    fallback: desk
    timing: {repeat_interval: 1h}
"""


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    (tmp_path / "focal_points.yaml").write_text(text)
    return load_focal_points(tmp_path)


def test_routes_by_region_indicator_and_severity(tmp_path: Path) -> None:
    config = load(tmp_path, GOOD)
    ids = lambda a: [fp.id for fp in route(a, config)]  # noqa: E731
    assert ids(alert(country="UZ", indicator="aerial_attack", severity=2)) == ["ca"]
    assert ids(alert(country="UZ", indicator="mass_displacement", severity=2)) == []
    assert ids(alert(country="LY", indicator="aerial_attack", severity=3)) == ["desk"]
    ca = config.get("ca")
    assert ca is not None
    assert config.fallback_of(ca) is config.get("desk")
    assert config.timing_of(ca).repeat_interval.total_seconds() == 3600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("fallback: desk", "fallback: nobody"), "focal_points.1.fallback"),
        (GOOD.replace("desk: desk", "desk: ghost"), "desk: no focal point"),
        (GOOD.replace("regions: [central_asia]", "regions: [europe]"), "focal_points.1.regions"),
        (GOOD.replace('countries: ["*"]', "countries: [Kyrgyzstan]"), "focal_points.0.countries"),
        (GOOD.replace("repeat_interval: 1h", "repeat_interval: soon"), "repeat_interval"),
        (GOOD.replace("email: [ca@example.org]", ""), "needs at least one of email"),
        (GOOD.replace("min_severity: 2", "min_severity: 5"), "focal_points.1.min_severity"),
        (
            GOOD + "  - {id: ca, name: Again, email: [x@example.org], countries: [KG]}\n",
            "duplicate",
        ),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


def test_operator_token_placeholder_is_refused_outside_dev() -> None:
    with pytest.raises(ValueError, match="TOCSIN_OPERATOR_TOKEN"):
        Settings(environment="production", secret_key="a-real-secret")
    Settings(environment="production", secret_key="a-real-secret", operator_token="a-real-token")


async def test_operations_api_needs_the_token_and_links_their_signature(tmp_path: Path) -> None:
    settings = Settings(
        config_dir=write_config(tmp_path / "config"),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db'}",
        operator_token="right",
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        assert (await client.get("/v1/alerts")).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert (await client.get("/v1/alerts", headers=wrong)).status_code == 401
        forged = await client.get("/v1/ack", params={"f": "KG:x", "p": "d", "e": 9e9, "s": "00"})
        assert forged.status_code in (403, 422)
        forged = await client.get(
            "/v1/ack", params={"f": "KG:x", "p": "d", "e": 9_999_999_999, "s": "00"}
        )
        assert forged.status_code == 403
        assert "signature" in forged.text
