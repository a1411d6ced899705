"""docker-compose.yml: valid against the Compose specification, and consistent with the code.

There is no Docker engine on the test machines, so this is what can be checked without one:
the schema, every service the issue names, the commands the CLI accepts, the ports the
services listen on, the TOCSIN_* variables Settings reads, and the files the stack mounts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from schemas import topics
from services import cli
from services.common.settings import Settings

ROOT = Path(__file__).parents[2]
SCHEMA = ROOT / "tests" / "data" / "compose" / "compose-spec.json"
TOCSIN = {"ingest": "ingest_port", "classify": "classify_port", "notify": "notify_port"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


def test_compose_file_validates_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors


def test_the_schema_rejects_what_compose_would_reject(compose: dict[str, Any]) -> None:
    """The validation has teeth: a misspelt key fails it."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["notify"]["replica"] = 2
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    assert any("replica" in e.message for e in validator.iter_errors(broken))


def test_the_stack_has_every_part(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "postgres", "mailpit", "prometheus", "grafana", *TOCSIN} <= set(services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["classify"]["deploy"]["replicas"] == 2
    assert services["notify"]["deploy"]["replicas"] == 2
    for name, service in services.items():
        if name != "topics":
            assert "healthcheck" in service, f"{name} has no health check"


@pytest.mark.parametrize("name", sorted(TOCSIN))
def test_service_commands_are_ones_the_cli_runs(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = compose["services"][name]
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    served: list[str] = []
    monkeypatch.setattr(cli, "_serve", served.append)
    assert cli.main(service["command"]) == 0
    assert served == [name]


def test_dockerfile_runs_the_tocsin_command() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["tocsin"]' in dockerfile
    for path in re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE):
        assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"


@pytest.mark.parametrize("name", sorted(TOCSIN))
def test_ports_match_the_port_each_service_listens_on(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    env = {k: _interpolate(str(v)) for k, v in service["environment"].items()}
    settings = Settings(**{k.removeprefix("TOCSIN_").lower(): v for k, v in env.items()})
    port = getattr(settings, TOCSIN[name])
    assert settings.host == "0.0.0.0", "a container must listen beyond loopback"
    container_ports = {str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])}
    container_ports |= {str(p) for p in service.get("expose", [])}
    assert container_ports == {str(port)}
    assert f"127.0.0.1:{port}/" in " ".join(service["healthcheck"]["test"])


def _interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set: the values a bare ``up`` uses."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_every_tocsin_variable_is_a_setting(compose: dict[str, Any]) -> None:
    fields = {f"TOCSIN_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose["services"].items():
        for var in service.get("environment") or {}:
            if var.startswith("TOCSIN_"):
                assert var in fields, f"{name}: {var} is not read by Settings"


def test_services_reach_their_peers_by_compose_name(compose: dict[str, Any]) -> None:
    env = compose["services"]["notify"]["environment"]
    services = compose["services"]
    assert env["TOCSIN_KAFKA_BOOTSTRAP"].split(":")[0] in services
    assert env["TOCSIN_SMTP_HOST"] in services
    assert "@postgres:" in env["TOCSIN_DATABASE_URL"]
    assert env["TOCSIN_DATABASE_URL"].startswith("postgresql+asyncpg://")


def test_topics_are_created_from_the_code_not_a_copied_list(compose: dict[str, Any]) -> None:
    topics_job = compose["services"]["topics"]
    script = " ".join(topics_job["command"])
    assert "ensure_topics('kafka:9092'" in script
    assert all(t not in script for t in topics.ALL)


def test_prometheus_scrapes_every_service_on_its_port(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {}
    for job in config["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for t in sc["targets"]:
                targets[job["job_name"]] = t
        for sd in job.get("dns_sd_configs", []):
            targets[job["job_name"]] = f"{sd['names'][0]}:{sd['port']}"
    defaults = Settings()
    for name, field in TOCSIN.items():
        assert targets[f"tocsin-{name}"] == f"{name}:{getattr(defaults, field)}"


def test_bind_mounts_exist_in_the_repository(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_grafana_provisioning_points_at_the_mounted_dashboards(compose: dict[str, Any]) -> None:
    grafana = ROOT / "deploy" / "grafana"
    providers = yaml.safe_load((grafana / "provisioning" / "dashboards" / "tocsin.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == path
    datasource = yaml.safe_load(
        (grafana / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    for dashboard in (grafana / "dashboards").glob("*.json"):
        for panel in json.loads(dashboard.read_text())["panels"]:
            if "datasource" in panel:
                assert panel["datasource"]["uid"] == datasource["uid"]
