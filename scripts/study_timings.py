"""Where a finished study's time went: the warm-up, each sampled trial's parts, and the gaps.

Reads only the study's own records (trial times and the estimator's timing attributes).

    python scripts/study_timings.py \
        sqlite:///bench-out/cpu_search_quiet/cpu_search_ensemble_s1.db cpu_search_ensemble_s1
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import optuna

from mote_optuna.keys import CALIBRATION_WARMUP_ATTR
from mote_optuna.storage.factory import make_storage

PARTS = ("trial_seconds", "mote_seconds", "train_seconds", "ensemble_seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage")
    parser.add_argument("study")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study, storage=make_storage(args.storage))
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sampled = [t for t in done if not t.user_attrs.get(CALIBRATION_WARMUP_ATTR)]
    assert all(t.datetime_start and t.datetime_complete for t in sampled)
    print(f"{len(done) - len(sampled)} warm-up cells, {len(sampled)} sampled cells")
    span = (sampled[-1].datetime_complete - sampled[0].datetime_start).total_seconds()  # type: ignore[operator]
    gaps = sum(
        (b.datetime_start - a.datetime_complete).total_seconds()  # type: ignore[operator]
        for a, b in itertools.pairwise(sampled)
    )
    print(f"sampled trials: {span:.1f} s from the first start to the last end; gaps {gaps:.1f} s")
    for part in PARTS:
        values = [t.user_attrs[part] for t in sampled if part in t.user_attrs]
        print(f"  median {part}: {np.median(values):.2f} s over {len(values)} sampled cells")


if __name__ == "__main__":
    main()
