"""End to end: a real tiny study, its artifacts and note, optuna-dashboard over HTTP, a browser.

The browser test needs the Debian package ``chromium`` (``.ci/run`` installs it). It skips with a
reason when chromium is missing and ``$CI`` is unset; under CI a missing chromium fails it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from browser import headless_chromium
from helpers import REPO_ROOT, write_study
from optuna.artifacts import download_artifact, get_all_artifact_meta
from optuna.trial import TrialState
from optuna_dashboard import get_note

from mote_optuna.artifacts import artifact_dir, cell_svg, make_artifact_store
from mote_optuna.cli import main
from mote_optuna.config import config_from_dict, load_config
from mote_optuna.dashboard import FIGURE_IDS, study_note
from mote_optuna.spaces import get_space
from mote_optuna.study import run_study

NAME = "e2e-dash"
SERVER_START_S = 90.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 3-trial study (MOTE ``tiny`` budget, SQLite in a temp folder); its YAML path."""
    folder = tmp_path_factory.mktemp("dash")
    path = write_study(folder / "s.yaml", name=NAME, n_trials=3)
    run_study(load_config(path), out=lambda _line: None)
    return path


def _study(path: Path) -> optuna.Study:
    config = load_config(path)
    return optuna.load_study(study_name=config.name, storage=config.storage_url)


def test_artifacts_are_uploaded_for_every_trial(tiny: Path) -> None:
    config = load_config(tiny)
    study = _study(tiny)
    store = make_artifact_store(config)
    assert artifact_dir(config) == tiny.parent / f"{NAME}-artifacts"
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3
    for trial in complete:
        metas = {m.filename: m for m in get_all_artifact_meta(trial, storage=study._storage)}
        assert set(metas) == {"arch.json", "cell.svg"}
        assert metas["arch.json"].mimetype == "application/json"
        assert metas["cell.svg"].mimetype == "image/svg+xml"
        with tempfile.TemporaryDirectory() as tmp:
            arch_path = Path(tmp) / "arch.json"
            download_artifact(
                artifact_store=store,
                file_path=str(arch_path),
                artifact_id=metas["arch.json"].artifact_id,
            )
            record = json.loads(arch_path.read_text())
            svg_path = Path(tmp) / "cell.svg"
            download_artifact(
                artifact_store=store,
                file_path=str(svg_path),
                artifact_id=metas["cell.svg"].artifact_id,
            )
            svg = ET.parse(svg_path).getroot()
        assert record["arch"] == trial.user_attrs["arch"]
        assert record["params"] == trial.params
        assert record["space"] == "nb201"
        circles = svg.findall("{http://www.w3.org/2000/svg}circle")
        assert len(circles) == 4  # the NB201 cell: 4 nodes


def test_cell_svg_draws_every_edge_and_has_a_fallback() -> None:
    space = get_space("nb201")
    arch = ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none")
    root = ET.fromstring(cell_svg(space, arch))
    paths = [p for p in root.iter("{http://www.w3.org/2000/svg}path") if p.get("stroke")]
    assert len(paths) == 6
    assert sum(p.get("stroke-dasharray") is not None for p in paths) == 2  # the two none edges

    class OtherSpace:  # any space without a drawing gets the generic table
        name = "other"

        def to_str(self, arch: Any) -> str:
            return "a<b&c"

        def to_params(self, arch: Any) -> dict[str, Any]:
            return {"ks_0": 3, "e_0": 6}

    generic = ET.fromstring(cell_svg(OtherSpace(), None))  # type: ignore[arg-type]
    texts = [t.text for t in generic.iter("{http://www.w3.org/2000/svg}text")]
    assert "ks_0 = 3" in texts and "e_0 = 6" in texts and any("a<b&c" in t for t in texts)


def test_study_note_has_config_machine_budget(tiny: Path) -> None:
    note = get_note(_study(tiny))
    assert note.startswith(f"# {NAME}")
    for text in ("## Machine", "cpu cores", "## Estimator budget", '"epochs": 2', "budget: tiny"):
        assert text in note


def test_study_note_masks_the_storage_password() -> None:
    config = config_from_dict(
        {"name": "pg", "storage": "postgresql://mote:s3cr3t-pw@db.example:5432/nas"}
    )
    note = study_note(config, {"epochs": 2})
    assert "s3cr3t-pw" not in note
    assert "postgresql://mote:***@db.example:5432/nas" in note


# --------------------------------------------------------------------------------------------
# The server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


@pytest.fixture(scope="module")
def server(tiny: Path) -> Iterator[dict[str, Any]]:
    """``python -m mote_optuna dashboard`` as a subprocess; stopped (Ctrl-C) at the end."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mote_optuna", "dashboard", str(tiny), "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    info: dict[str, Any] = {"base": base, "proc": proc}
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # the URL is printed before the server starts
            lines.append(line)
            if line.startswith("open "):
                info["url"] = line.split()[1]
                break
        assert "url" in info, "".join(lines)
        # keep reading, so that a full pipe never blocks the server's access log
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                info["studies"] = json.loads(_get(f"{base}/api/studies"))
                break
            except OSError:
                assert proc.poll() is None, "dashboard exited early"
                assert time.monotonic() < deadline, "dashboard did not answer"
                time.sleep(0.5)
        yield info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                info["returncode"] = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_dashboard_serves_study_trials_artifacts_and_figures(server: dict[str, Any]) -> None:
    summaries = {s["study_name"]: s for s in server["studies"]["study_summaries"]}
    assert NAME in summaries
    study_id = summaries[NAME]["study_id"]
    assert server["url"] == f"{server['base']}/dashboard/studies/{study_id}"
    assert server["url"].startswith("http://127.0.0.1:")  # bound to loopback by default

    detail = json.loads(_get(f"{server['base']}/api/studies/{study_id}?after=0"))
    assert detail["name"] == NAME
    assert detail["objective_names"] == ["mote", "flops", "params"]
    trials = detail["trials"]
    assert len(trials) == 3 and {t["state"] for t in trials} == {"Complete"}
    for trial in trials:
        artifacts = {a["filename"]: a for a in trial["artifacts"]}
        assert set(artifacts) == {"arch.json", "cell.svg"}
        url = f"{server['base']}/artifacts/{study_id}/{trial['trial_id']}/"
        record = json.loads(_get(url + artifacts["arch.json"]["artifact_id"]))
        arch = {a["key"]: a["value"] for a in trial["user_attrs"]}["arch"]
        assert record["arch"] == arch
        assert _get(url + artifacts["cell.svg"]["artifact_id"]).startswith(b"<svg")
    assert set(FIGURE_IDS) <= {g["id"] for g in detail["plotly_graph_objects"]}
    assert detail["note"]["body"].startswith(f"# {NAME}")


@pytest.mark.browser
def test_browser_renders_the_study_page(server: dict[str, Any], tmp_path: Path) -> None:
    shot = tmp_path / "dashboard.png"
    dom = headless_chromium(server["url"], screenshot=shot)
    study_id = server["url"].rsplit("/", 1)[1]
    assert f"{NAME} (id={study_id})" in dom  # the header the React app renders from the API
    assert "Feasibility of e2e-dash" in dom  # a pushed plotly figure was drawn
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    keep = os.environ.get("MOTE_OPTUNA_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)


def test_dashboard_stops_cleanly_on_ctrl_c(server: dict[str, Any]) -> None:
    proc: subprocess.Popen[str] = server["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def test_dashboard_without_a_study_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path / "s.yaml", name="absent")
    assert main(["dashboard", str(path), "--port", "8080"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no study database") and len(err.splitlines()) == 1
    assert main(["dashboard", str(path), "--port", "70000"]) == 2
    assert "--port 70000" in capsys.readouterr().err
