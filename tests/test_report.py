"""``report``: a real tiny study -> CSV, Parquet and one self-contained HTML page (+ truth)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import optuna
import pandas as pd
import pytest
from browser import headless_chromium
from helpers import REPO_ROOT, write_study
from optuna_dashboard._custom_plot_data import list_graph_object_ids

from mote_optuna.cli import main
from mote_optuna.config import load_config
from mote_optuna.report import add_truth, trials_frame
from mote_optuna.spaces.nb201 import NB201Space
from mote_optuna.study import run_study
from mote_optuna.truth import accuracy_by_arch

TRUTH = REPO_ROOT / "tests" / "data" / "nb201_test_acc.csv.gz"  # every NB201 cell: tests/data/


class Tags(HTMLParser):
    """Every start tag of a page with its attributes (script bodies are not parsed as tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real 3-trial study and its report written with ground truth: (study file, folder)."""
    folder = tmp_path_factory.mktemp("report")
    path = write_study(folder / "s.yaml", name="rep", n_trials=3)
    run_study(load_config(path), out=lambda _line: None)
    out = folder / "out"
    assert main(["report", str(path), "--out", str(out), "--truth", str(TRUTH)]) == 0
    return path, out


def test_exports_hold_every_trial(reported: tuple[Path, Path]) -> None:
    path, out = reported
    config = load_config(path)
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    parquet = pd.read_parquet(out / "trials.parquet")
    csv = pd.read_csv(out / "trials.csv")
    assert list(parquet["number"]) == [t.number for t in study.trials]
    assert list(csv.columns) == list(parquet.columns)
    for name in ("mote", "flops", "params", "arch", "landscape_term", "speed_term", "feasible"):
        assert name in parquet.columns
    pd.testing.assert_series_equal(csv["mote"], parquet["mote"], check_exact=False)
    assert {f"param_edge_{i}" for i in range(6)} <= set(parquet.columns)
    front = pd.read_csv(out / "pareto.csv")
    assert set(front["number"]) == {t.number for t in study.best_trials}


def test_truth_is_added_by_arch_string(reported: tuple[Path, Path]) -> None:
    _, out = reported
    parquet = pd.read_parquet(out / "trials.parquet")
    table = pd.read_csv(TRUTH, usecols=["arch_str", "cifar10_test_acc_200ep"])
    expected = parquet["arch"].map(table.set_index("arch_str")["cifar10_test_acc_200ep"])
    assert parquet["true_acc"].notna().all()  # NB201 knows every cell
    assert list(parquet["true_acc"]) == pytest.approx(list(expected))
    assert "true_acc" in pd.read_csv(out / "pareto.csv").columns


def test_truth_unknown_arch_and_bad_column(tmp_path: Path) -> None:
    table = tmp_path / "truth.csv"
    table.write_text("arch_str,acc_a,acc_b\n|x|,1.5,2\n")
    truth, column = accuracy_by_arch(NB201Space(), table, "acc_b")
    assert column == "acc_b"
    frame = add_truth(pd.DataFrame({"arch": ["|x|", "|y|"]}), truth)
    assert frame["true_acc"].iloc[0] == 2 and pd.isna(frame["true_acc"].iloc[1])
    with pytest.raises(Exception, match="accuracy columns: acc_a, acc_b"):
        accuracy_by_arch(NB201Space(), table, "nope")
    with pytest.raises(Exception, match="--truth-column"):
        accuracy_by_arch(NB201Space(), table, None)


def test_html_is_self_contained_and_embeds_the_data(reported: tuple[Path, Path]) -> None:
    path, out = reported
    page = (out / "pareto.html").read_text()
    tags = Tags()
    tags.feed(page)
    scripts = [attrs for tag, attrs in tags.seen if tag == "script"]
    assert scripts and all("src" not in attrs for attrs in scripts)  # every script inline
    for tag, attrs in tags.seen:  # no tag loads anything from elsewhere
        for name in ("src", "href"):
            assert not re.match(r"\s*(https?:)?//", attrs.get(name) or ""), (tag, attrs)
    assert not any(tag == "link" for tag, _ in tags.seen)
    assert re.search(r"plotly\.js v\d", page)  # plotly.js itself is inlined
    for title in (
        "Pareto front: mote vs flops",
        "Pareto front: flops vs params",
        "Pareto front in 3D",
        "Parallel coordinates over the architecture parameters",
        "MOTE terms against FLOPs",
    ):
        assert title in page
    data = re.search(r'<script type="application/json" id="trials-data">(.*?)</script>', page)
    assert data is not None
    records = json.loads(data.group(1))
    config = load_config(path)
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    frame = trials_frame(study, config.objectives)
    assert [r["number"] for r in records] == list(frame["number"])
    assert [r["arch"] for r in records] == list(frame["arch"])
    assert [r["mote"] for r in records] == pytest.approx(list(frame["mote"]))
    assert "True accuracy against MOTE" in page and "true_acc" in records[0]


def test_report_refreshes_the_dashboard_figures(reported: tuple[Path, Path]) -> None:
    path, _ = reported
    config = load_config(path)
    study = optuna.load_study(study_name=config.name, storage=config.storage_url)
    (frozen,) = [s for s in study._storage.get_all_studies() if s.study_name == config.name]
    ids = list_graph_object_ids(frozen.system_attrs)
    assert {"hypervolume-history", "pareto-front", "feasibility"} <= set(ids)


@pytest.mark.browser
def test_html_renders_in_a_browser_without_network(
    reported: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = reported
    # every host name fails to resolve: the page must draw with what it carries
    dom = headless_chromium(
        (out / "pareto.html").resolve().as_uri(),
        screenshot=tmp_path / "report.png",
        budget_ms=10000,
        extra=["--host-resolver-rules=MAP * ~NOTFOUND"],
    )
    assert dom.count('class="main-svg"') >= 5  # plotly drew the figures
    assert "Pareto front in 3D" in dom
