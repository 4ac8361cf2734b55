"""Many workers on PostgreSQL (issue 6): a SIGKILLed worker, and a password that never shows."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import optuna
import pytest
from helpers import REPO_ROOT
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from test_worker import sigkill_run, slow_env_in, study_file, write_scores

from mote_optuna.cli import main
from mote_optuna.storage import PASSWORD_ENV, STORAGE_ENV, make_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scores(tmp_path_factory.mktemp("tables"))


@pytest.mark.postgres
@pytest.mark.timeout(88)
def test_sigkilled_worker_on_postgres_is_retried_and_study_ends_exact(
    tmp_path: Path, scores: Path, pg_url: str
) -> None:
    sigkill_run(tmp_path, scores, slow_env_in(tmp_path), pg_url, 5)


def _everything_stored(study: optuna.Study) -> str:
    """The study's user and system attrs (dashboard note included) and every trial's attrs."""
    parts = [json.dumps(study.user_attrs, default=str)]
    system = study._storage.get_study_system_attrs(study._study_id)  # no public API in 5.0
    parts.append(json.dumps(system, default=str))
    for t in study.trials:
        parts += [json.dumps(t.user_attrs, default=str), json.dumps(t.system_attrs, default=str)]
        parts.append(json.dumps(t.params, default=str))
    return "\n".join(parts)


def _files_under(folder: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()
    )


@pytest.mark.postgres
@pytest.mark.timeout(88)
def test_storage_password_appears_nowhere(
    tmp_path: Path,
    scores: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = str(make_url(pg_url).password)
    assert password and password != "None"
    bare = pg_url.replace(f":{password}@", "@")
    assert bare != pg_url
    name = f"sec-{uuid.uuid4().hex[:8]}"
    path = study_file(tmp_path, scores, name, 3)
    env_free = {k: v for k, v in os.environ.items() if k not in (PASSWORD_ENV, STORAGE_ENV)}
    seen: list[str] = []

    # 1. the password inside the study file's URL; two real worker processes
    no_storage = "\n".join(
        line for line in path.read_text().splitlines() if not line.startswith("storage:")
    )
    path.write_text(no_storage + f"\nstorage: {pg_url}\n")
    done = subprocess.run(
        [sys.executable, "-m", "mote_optuna", "run", str(path), "--workers", "2"],
        cwd=REPO_ROOT, env=env_free, capture_output=True, text=True, timeout=80,
    )  # fmt: skip
    seen += [done.stdout, done.stderr]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "postgresql+psycopg://mote:***@" in done.stdout or "mote:***@" in done.stdout

    # 2. a password-free URL from $MOTE_OPTUNA_STORAGE, the password from $MOTE_OPTUNA_DB_PASSWORD
    path.write_text(no_storage + "\n")
    monkeypatch.setenv(STORAGE_ENV, bare)
    monkeypatch.setenv(PASSWORD_ENV, password)
    caplog.set_level(logging.DEBUG)
    assert main(["worker", str(path), "--set", "n_trials=4"]) == 0
    assert main(["report", str(path), "--out", str(tmp_path / "report")]) == 0
    logging.getLogger("mote_optuna").warning("connecting to %s with %s", pg_url, password)
    logging.getLogger("sqlalchemy").error("failed: %s", pg_url)

    # 3. errors: an unreachable server (password in the URL), then a wrong password (env)
    monkeypatch.setenv(STORAGE_ENV, pg_url.rsplit("@", 1)[0] + "@127.0.0.1:9/nodb")
    assert main(["worker", str(path)]) == 2
    monkeypatch.setenv(STORAGE_ENV, bare)
    monkeypatch.setenv(PASSWORD_ENV, password + "-wrong")
    assert main(["run", str(path), "--workers", "2"]) == 2
    captured = capsys.readouterr()
    seen += [captured.out, captured.err, caplog.text]
    seen += [_files_under(tmp_path / "report"), _files_under(tmp_path / "artifacts")]

    monkeypatch.setenv(PASSWORD_ENV, password)
    storage = make_storage(bare)
    study = optuna.load_study(study_name=name, storage=storage)
    try:
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
        seen.append(_everything_stored(study))
        text = "\n".join(seen)
        assert "***" in text and "password authentication failed" in text
        for secret in {password, quote(password, safe=""), password + "-wrong"}:
            assert secret not in text
        assert (tmp_path / "report" / "pareto.html").is_file()
    finally:
        optuna.delete_study(study_name=name, storage=storage)
