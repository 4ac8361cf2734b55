"""The private Optuna and torchvision APIs behind ``mote_optuna.compat`` still behave as relied on.

When an upgrade changes one of them, this file fails and names it; nothing else has to be read.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import optuna
from optuna.storages import RDBStorage
from torchvision.models import mobilenet_v3_large

from mote_optuna import compat, compat_torchvision


def test_study_storage_and_id_are_the_study_s_own(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    study = optuna.create_study(study_name="c", storage=url)
    storage = compat.study_storage(study)
    assert storage.get_study_id_from_name("c") == compat.study_id(study)
    assert storage.get_all_studies()[0].study_name == "c"


def test_non_domination_rank_and_front_on_a_hand_checked_set() -> None:
    losses = np.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0], [4.0, 4.0]])
    assert list(compat.fast_non_domination_rank(losses)) == [0, 0, 0, 1, 2]
    assert list(compat.is_pareto_front(losses)) == [True, True, True, False, False]


def test_hypervolume_of_two_boxes() -> None:
    # (1,2) and (2,1) under (3,3): 2x1 + 1x2 - 1x1 = 3
    assert compat.hypervolume(np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([3.0, 3.0])) == 3.0


def test_rdb_storage_still_lists_stale_trials_by_study_id() -> None:
    method = getattr(RDBStorage, compat.RDB_STALE_TRIAL_IDS)
    assert list(inspect.signature(method).parameters) == ["self", "study_id"]


def test_torchvision_mobilenet_v3_rounding_and_blocks() -> None:
    assert compat_torchvision.make_divisible(16 * 4.5, 8) == 72
    assert compat_torchvision.make_divisible(10, 8) == 16  # never below 90 % of the value
    blocks, last = compat_torchvision.mobilenet_v3_large_blocks()
    assert len(blocks) == 15 and last == 1280
    assert [b.kernel for b in blocks[:4]] == [3, 3, 3, 5]
    assert {b.use_se for b in blocks} == {True, False}
    net = mobilenet_v3_large()
    assert sum(p.numel() for p in net.parameters()) == 5_483_032  # torchvision's published count
