"""A lock shared by the workers of a study: a study of its own in the same storage.

Creating a study is atomic in every Optuna storage (a duplicate name raises), so the worker that
creates the lock study holds the lock; deleting it releases the lock. The lock study's user attrs
name its holder (``owner``) and its progress (``heartbeat``), which the holder changes as it goes
so that waiting workers can tell a live holder from a dead one. The calibration uses it
(:mod:`mote_optuna.warmup`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.study import StudyDirection

from mote_optuna.keys import LOCK_HEARTBEAT_ATTR, LOCK_OWNER_ATTR
from mote_optuna.shared_study import worker_name

__all__ = ["beat", "holds", "lock_state", "try_lock", "unlock"]


def try_lock(storage: BaseStorage, name: str) -> int | None:
    """Create the lock study ``name``: its id when this worker now holds the lock, else None."""
    try:
        lock_id = storage.create_new_study([StudyDirection.MINIMIZE], study_name=name)
    except optuna.exceptions.DuplicatedStudyError:
        return None
    storage.set_study_user_attr(lock_id, LOCK_OWNER_ATTR, worker_name())
    storage.set_study_user_attr(lock_id, LOCK_HEARTBEAT_ATTR, 0)
    return lock_id


def lock_state(storage: BaseStorage, name: str) -> tuple[int, Any, str] | None:
    """(lock id, heartbeat, owner) of the lock study ``name``, or None when nobody holds it."""
    try:
        lock_id = storage.get_study_id_from_name(name)
        attrs = storage.get_study_user_attrs(lock_id)
    except KeyError:
        return None
    return (
        lock_id,
        attrs.get(LOCK_HEARTBEAT_ATTR),
        str(attrs.get(LOCK_OWNER_ATTR, "another worker")),
    )


def holds(storage: BaseStorage, name: str, lock_id: int) -> bool:
    """Whether the lock study ``name`` is still the one with ``lock_id`` (not broken meanwhile)."""
    try:
        return storage.get_study_id_from_name(name) == lock_id
    except KeyError:
        return False


def beat(storage: BaseStorage, lock_id: int, progress: str) -> None:
    """Record the holder's progress, so that waiting workers see it is alive."""
    with contextlib.suppress(KeyError):  # broken by another worker: holds() refuses the store
        storage.set_study_user_attr(lock_id, LOCK_HEARTBEAT_ATTR, progress)


def unlock(storage: BaseStorage, lock_id: int) -> None:
    """Delete the lock study (release, or break a stale lock by its id)."""
    with contextlib.suppress(KeyError):
        storage.delete_study(lock_id)
