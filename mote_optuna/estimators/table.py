"""Scores from a CSV table keyed by the space's architecture string (``estimator.kind: table``).

Uses: the MOTE authors' released NB201 scores, a previous study's ``trials.csv`` export, or ground
truth. A study then runs through the same runner, storage and report as a real one, in seconds.

Columns are found by role (``estimator.table_columns``):

- ``key``: the space's string (``to_str``); default ``arch_str``, else ``arch``;
- ``mote``: the score stored as the ``mote`` objective; default ``mote``;
- ``flops`` / ``params`` (optional): full-network cost in the runner's units (MMACs, millions).
  Without them the cost is the space's analytic one (``spaces.base.HasAnalyticCost``, e.g.
  NB201's exact op-count formula), else the objective measures the network.

A key absent from the table (or with an empty score) stops the study with a one-line error
(``table_missing: error``) or ends the trial PRUNED with ``fail_reason`` (``table_missing: skip``).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from mote_optuna.config import StudyConfig
from mote_optuna.cost import Cost
from mote_optuna.errors import ConfigError, UserError
from mote_optuna.estimators.contract import Evaluation
from mote_optuna.spaces import InvalidArchitecture, SearchSpace

ROLES = ("key", "mote", "flops", "params")
# Extra columns copied into trial user attrs when the table has them (table name -> attr name).
ATTR_COLUMNS = {
    "landscape_term": "landscape_term",
    "speed_term": "speed_term",
    "proxy_train_time_s": "mote_seconds",
    "mote_seconds": "mote_seconds",
}


class TableEstimator:
    """Looks each architecture up in a score table (see module docstring)."""

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        space: SearchSpace,
        columns: dict[str, str] | None = None,
        missing: str = "error",
        name: str = "<table>",
        digest: str = "",
    ) -> None:
        self.name = name
        self.digest = digest
        self.missing = missing
        self.columns = resolve_columns(frame, columns or {}, name)
        key_col, mote_col = self.columns["key"], self.columns["mote"]
        keys = [_canonical(space, str(k)) for k in frame[key_col]]
        scores = pd.to_numeric(frame[mote_col], errors="coerce")
        self.scores: dict[str, float] = {
            k: float(v) for k, v in zip(keys, scores, strict=True) if not math.isnan(v)
        }
        attr_cols = {
            col: attr
            for col, attr in ATTR_COLUMNS.items()
            if col in frame.columns and col not in self.columns.values()
        }
        self.attrs: dict[str, dict[str, float]] = {}
        for col, attr in attr_cols.items():
            values = pd.to_numeric(frame[col], errors="coerce")
            for k, v in zip(keys, values, strict=True):
                if not math.isnan(v):
                    self.attrs.setdefault(k, {})[attr] = float(v)
        self.costs: dict[str, Cost] = {}
        if "flops" in self.columns and "params" in self.columns:
            flops = pd.to_numeric(frame[self.columns["flops"]], errors="coerce")
            params = pd.to_numeric(frame[self.columns["params"]], errors="coerce")
            for k, f, p in zip(keys, flops, params, strict=True):
                if not (math.isnan(f) or math.isnan(p)):
                    self.costs[k] = Cost(flops=float(f), params=float(p))

    @classmethod
    def from_config(cls, config: StudyConfig, space: SearchSpace) -> TableEstimator:
        est = config.estimator
        path = Path(str(est.table)).expanduser()
        if not path.is_file():
            raise UserError(
                f"estimator.table: file {path} not found; give a CSV with the space's string "
                "(column arch_str) and a mote column, e.g. --set estimator.table=PATH.csv"
            )
        try:
            keys = {est.table_columns.get("key"), "arch_str", "arch"} - {None}
            frame = pd.read_csv(path, dtype=dict.fromkeys(keys, str))  # codes keep leading zeros
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"estimator.table: {path} is not a readable CSV: {exc}") from None
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return cls(
            frame,
            space=space,
            columns=est.table_columns,
            missing=est.table_missing,
            name=path.name,
            digest=digest,
        )

    def describe(self) -> dict[str, Any]:
        # the file's content, not its path, decides whether a resume is compatible
        return {
            "kind": "table",
            "table": self.name,
            "sha256": self.digest,
            "columns": dict(sorted(self.columns.items())),
            "missing": self.missing,
        }

    def evaluate(self, space: SearchSpace, arch: Any) -> Evaluation:
        text = space.to_str(arch)
        score = self.scores.get(text)
        if score is None:
            where = f"{self.name} (column {self.columns['key']})"
            if self.missing == "skip":
                raise optuna.TrialPruned(f"not in score table {where}: {text}")
            raise UserError(
                f"estimator.table: no score for {text} in {where}; set "
                "estimator.table_missing: skip to prune such trials instead"
            )
        return Evaluation({"mote": score}, dict(self.attrs.get(text, {})))

    def known_cost(self, space: SearchSpace, arch: Any) -> Cost | None:
        """FLOPs and params from the table's columns; None: the objective finds them."""
        return self.costs.get(space.to_str(arch))


def resolve_columns(frame: pd.DataFrame, wanted: dict[str, str], name: str) -> dict[str, str]:
    """Map each role to a column of ``frame``; one-line errors name what exists."""
    for role in wanted:
        if role not in ROLES:
            raise ConfigError(
                f"estimator.table_columns.{role}: unknown role; allowed: {', '.join(ROLES)}"
            )
    have = list(frame.columns)
    columns: dict[str, str] = {}
    defaults = {"key": ("arch_str", "arch"), "mote": ("mote",), "flops": ("flops",),
                "params": ("params",)}  # fmt: skip
    for role in ROLES:
        if role in wanted:
            if wanted[role] not in have:
                raise UserError(
                    f"estimator.table_columns.{role}: column {wanted[role]!r} is not in {name}; "
                    f"it has {', '.join(map(str, have[:12]))}"
                )
            columns[role] = wanted[role]
            continue
        found = next((c for c in defaults[role] if c in have), None)
        if found is not None:
            columns[role] = found
        elif role in ("key", "mote"):
            raise UserError(
                f"estimator.table: {name} has no {role} column ({' or '.join(defaults[role])}); "
                f"set estimator.table_columns.{role} to one of {', '.join(map(str, have[:12]))}"
            )
    return columns


def _canonical(space: SearchSpace, text: str) -> str:
    """The space's own spelling of a table key (unparseable keys are kept as they are)."""
    try:
        return space.to_str(space.from_str(text))
    except InvalidArchitecture:
        return text
