"""Every trial and study attribute name mote_optuna stores, in one place.

Each name is part of what a study holds in its storage: renaming one breaks resuming the studies
written before. The values are the stored strings, unchanged since they were first written.
"""

from __future__ import annotations

__all__ = [
    "ARCH_ATTR",
    "ARCH_KEY_ATTR",
    "CACHED_FROM_ATTR",
    "CALIBRATION_ATTR",
    "CALIBRATION_WARMUP_ATTR",
    "EVALUATING_ATTR",
    "EVALUATION_ATTR",
    "FAILED_TRIAL_SYSTEM_ATTR",
    "FAIL_REASON_ATTR",
    "FLOPS_ATTR",
    "HEARTBEAT_ATTR",
    "LATENCY_ATTR",
    "LOCK_HEARTBEAT_ATTR",
    "LOCK_OWNER_ATTR",
    "META_KEY",
    "MOTE_SECONDS_ATTR",
    "PARAMS_ATTR",
    "RETRY_HISTORY_SYSTEM_ATTR",
    "RETRY_OF_ATTR",
    "SELECTION_ATTR",
    "SELECT_VALUES_ATTR",
    "TRIAL_OWN_ATTRS",
    "TRIAL_SECONDS_ATTR",
    "WORKER_ATTR",
]

# --------------------------------------------------------------------------------------------
# Trial user attrs written by the objective (objective.py, warmup.py)

ARCH_ATTR = "arch"
"""The architecture as the space's string (``space.to_str``)."""
ARCH_KEY_ATTR = "arch_key"
"""The canonical key (``space.key``): equivalent architectures share it; the evaluation cache."""
CACHED_FROM_ATTR = "cached_from"
"""Number of the COMPLETE trial whose values this trial reused (no training)."""
TRIAL_SECONDS_ATTR = "trial_seconds"
"""Seconds the objective spent on the trial."""
MOTE_SECONDS_ATTR = "mote_seconds"
"""Seconds MOTE spent training and measuring the reduced network (estimators/mote.py)."""
FLOPS_ATTR = "flops"
"""MMACs of the full network."""
PARAMS_ATTR = "params"
"""Millions of parameters of the full network."""
LATENCY_ATTR = "latency"
"""Milliseconds of the full network (studies with a ``latency:`` section)."""
CALIBRATION_WARMUP_ATTR = "calibration_warmup"
"""True on the warm-up candidates a calibration added to the study as COMPLETE trials."""
FAIL_REASON_ATTR = "fail_reason"
"""Why a trial ended PRUNED or FAIL, in words."""

# --------------------------------------------------------------------------------------------
# Trial user attrs written by the worker machinery (shared_study.py, storage/)

WORKER_ATTR = "worker"
"""``host:pid`` of the worker that ran the trial."""
EVALUATING_ATTR = "evaluating"
"""True while a trial holds the claim to train its architecture (``SharedStudy.wait_for_twin``)."""
HEARTBEAT_ATTR = "heartbeat"
"""ISO 8601 UTC time of the trial's last sign of life (storages without Optuna's heartbeat)."""
RETRY_OF_ATTR = "retry_of"
"""On a retry: the number of the trial it replaces."""

# --------------------------------------------------------------------------------------------
# Trial system attrs written by Optuna's RetryHeartbeatStaleTrialCallback

FAILED_TRIAL_SYSTEM_ATTR = "failed_trial"
"""Number of the first trial of a retry chain."""
RETRY_HISTORY_SYSTEM_ATTR = "retry_history"
"""All trial numbers of a retry chain, oldest first."""

TRIAL_OWN_ATTRS = frozenset(
    {
        ARCH_ATTR,
        ARCH_KEY_ATTR,
        CACHED_FROM_ATTR,
        TRIAL_SECONDS_ATTR,
        FLOPS_ATTR,
        PARAMS_ATTR,
        LATENCY_ATTR,
        CALIBRATION_WARMUP_ATTR,
        WORKER_ATTR,
        EVALUATING_ATTR,
        HEARTBEAT_ATTR,
        RETRY_OF_ATTR,
        FAIL_REASON_ATTR,
    }
)
"""User attrs that describe a trial itself; a trial that reuses another's values copies the
other user attrs (what the estimator stored) and never these."""

# --------------------------------------------------------------------------------------------
# Study user attrs

META_KEY = "mote_optuna"
"""The study metadata (objectives, space, estimator, latency) a resume must match."""
CALIBRATION_ATTR = "mote_optuna_calibration"
"""What the study's calibration fitted, with the settings that produced it."""
EVALUATION_ATTR = "evaluation"
"""The results of ``evaluate`` (short real training of the front)."""
SELECT_VALUES_ATTR = "mote_optuna_select_values"
"""Every value the top-k stage (``select``) measured: ``{fidelity key: {arch_key: {...}}}``; a
re-run reuses them (Optuna refuses user attrs on finished trials, so they live on the study)."""
SELECTION_ATTR = "mote_optuna_selection"
"""The last run of the top-k stage: fidelity, candidates, queries, weights and the pick."""

# --------------------------------------------------------------------------------------------
# Study user attrs of a calibration lock study (``<name>.calibration-lock``)

LOCK_OWNER_ATTR = "owner"
"""``host:pid`` of the worker holding the lock."""
LOCK_HEARTBEAT_ATTR = "heartbeat"
"""The lock holder's progress, changed after every warm-up candidate."""
