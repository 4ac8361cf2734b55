"""The progress line's ETA, on a clock the test controls: it comes from the study's recent rate,
so it follows a machine that slows down mid-study from the next trial on."""

from __future__ import annotations

import itertools

import pytest

from mote_optuna.callbacks import Eta


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_follows_a_slowdown_from_the_next_trial() -> None:
    clock = Clock()
    eta = Eta(0, clock=clock)
    assert eta(0, 40) is None  # nothing counted yet
    for done in range(1, 11):  # 1 s per trial
        clock.now += 1.0
        left = eta(done, 40)
    assert left == pytest.approx(30 * 1.0)
    estimates, truth = [], []
    for done in range(11, 16):  # the machine gets 10x slower
        clock.now += 10.0
        estimates.append(eta(done, 40))
        truth.append((40 - done) * 10.0)
    assert all(a < b for a, b in itertools.pairwise(estimates[:3]))  # it climbs
    assert estimates[0] >= 0.5 * truth[0]  # one slow trial: half of the truth at once
    assert estimates[1] >= 0.7 * truth[1]
    assert estimates[-1] == pytest.approx(truth[-1], rel=0.05)


def test_eta_of_the_issue_run_is_honest_for_its_last_trials() -> None:
    """Issue 23: make run printed ETA 0:37 for its last 5 trials, which took 57-110 s each."""
    clock = Clock()
    eta = Eta(0, clock=clock)
    times = [7.0] * 19 + [57.0, 80.0, 110.0, 95.0, 70.0]
    for done, seconds in enumerate(times, start=1):
        clock.now += seconds
        left = eta(done, len(times))
        truth = sum(times[done:])
        if 21 <= done < len(times):  # from the second slow trial on (a window of 5: 34 %)
            assert left is not None and left >= 0.6 * truth, (done, left, truth)


def test_eta_counts_other_workers_and_resumed_studies() -> None:
    clock = Clock()
    eta = Eta(12, clock=clock)  # a resumed study: 12 trials were stored before
    clock.now += 6.0
    assert eta(14, 20) == pytest.approx(6 * 3.0)  # two trials (another worker's) in 6 s
    clock.now += 1.0
    assert eta(14, 20) == pytest.approx(6 * 3.0)  # a trial that did not count changes nothing
    clock.now += 2.0
    assert eta(20, 20) == 0.0
