"""The progress line's ETA, on a clock the test controls: it comes from the study's recent rate,
so it follows a machine that slows down mid-study within a few trials."""

from __future__ import annotations

import itertools

import pytest

from mote_optuna.callbacks import Eta


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_follows_a_slowdown_within_its_window() -> None:
    clock = Clock()
    eta = Eta(0, window=5, clock=clock)
    assert eta(0, 40) is None  # nothing counted yet
    for done in range(1, 11):  # 1 s per trial
        clock.now += 1.0
        left = eta(done, 40)
    assert left == pytest.approx(30 * 1.0)
    estimates = []
    for done in range(11, 16):  # the machine gets 10x slower
        clock.now += 10.0
        estimates.append(eta(done, 40))
    assert all(a < b for a, b in itertools.pairwise(estimates))  # it climbs
    assert estimates[-1] == pytest.approx(25 * 10.0)  # the window holds only slow trials
    assert estimates[0] < 29 * 10.0  # one slow trial among fast ones: not yet all of it


def test_eta_counts_other_workers_and_resumed_studies() -> None:
    clock = Clock()
    eta = Eta(12, window=5, clock=clock)  # a resumed study: 12 trials were stored before
    clock.now += 6.0
    assert eta(14, 20) == pytest.approx(6 * 3.0)  # two trials (another worker's) in 6 s
    clock.now += 1.0
    assert eta(14, 20) == pytest.approx(6 * 3.0)  # a trial that did not count changes nothing
    clock.now += 2.0
    assert eta(20, 20) == 0.0
