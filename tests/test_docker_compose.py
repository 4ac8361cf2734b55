"""The structure of docker/compose.yaml (no Docker engine needed: the file is parsed as YAML)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"
INTERPOLATED = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the list form: ["KEY=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_postgres_15_with_healthcheck_and_named_volume(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    assert db["image"] == "postgres:15"
    check = db["healthcheck"]
    assert check["test"][0] == "CMD-SHELL" and "pg_isready" in check["test"][1]
    assert {"interval", "timeout", "retries"} <= set(check)
    volume, target = db["volumes"][0].split(":")[:2]
    assert target == "/var/lib/postgresql/data"
    assert volume in compose["volumes"]  # a named volume, not a host folder


def test_workers_wait_for_healthy_db_and_scale_with_workers(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert worker["command"] == ["worker", "/study/study.yaml"]
    assert worker["deploy"]["replicas"] == "${WORKERS:-2}"
    assert worker["depends_on"]["db"]["condition"] == "service_healthy"
    assert worker["build"]["dockerfile"] == "docker/Dockerfile"
    env = _env(worker)
    assert env["MOTE_OPTUNA_STORAGE"].startswith("postgresql+psycopg://")
    assert "MOTE_OPTUNA_DB_PASSWORD" in env
    assert any(v.endswith(":/study/study.yaml:ro") for v in worker["volumes"])


def test_dashboard_is_bound_to_localhost_only(compose: dict[str, Any]) -> None:
    dashboard = compose["services"]["dashboard"]
    assert dashboard["ports"] == ["127.0.0.1:8080:8080"]
    assert dashboard["entrypoint"] == ["optuna-dashboard"]
    assert dashboard["command"][-1].startswith("postgresql+psycopg://")
    assert dashboard["depends_on"]["db"]["condition"] == "service_healthy"
    for service in compose["services"].values():
        for port in map(str, service.get("ports", [])):  # every published port: localhost
            assert port.startswith(("127.0.0.1:", "${DB_BIND:-127.0.0.1}:")), port


def test_no_plaintext_password(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in _env(service).items():
            if "PASSWORD" in key:
                assert INTERPOLATED.match(value), f"{name}: {key} must come from the environment"
    text = (DOCKER / "compose.yaml").read_text()
    # No URL with a password (scheme://user:secret@host) anywhere, once ${VAR:-default} is
    # replaced by its default as Compose would.
    resolved = re.sub(r"\$\{[A-Z_][A-Z0-9_]*(?::?-([^}]*))?[^}]*\}", lambda m: m[1] or "v", text)
    assert "postgresql+psycopg://mote@db:5432/mote" in resolved
    assert not re.search(r"://[^\s/:@]+:[^\s@]+@", resolved)
    assert ":?" in compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"]  # required


def test_dockerfile_is_cpu_by_default_with_a_cuda_build_argument() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^ARG TORCH_INDEX=https://download\.pytorch\.org/whl/cpu$", text, re.M)
    assert re.search(r"^ARG BASE_IMAGE=", text, re.M)
    assert 'ENTRYPOINT ["python", "-m", "mote_optuna"]' in text
    assert re.search(r"^USER mote$", text, re.M)  # not root
