"""Open a study that a run has stored, for reports, exports, evaluation and the dashboard."""

from __future__ import annotations

import optuna

from mote_optuna.config import StudyConfig
from mote_optuna.errors import UserError
from mote_optuna.storage.factory import make_storage
from mote_optuna.storage.url import mask_url

__all__ = ["load_existing_study"]


def load_existing_study(config: StudyConfig) -> optuna.Study:
    """The stored study of ``config`` (for reports and exports); never creates one."""
    file = config.storage_file
    if file is not None and not file.exists():
        raise UserError(
            f"no study database at {file}; run 'python -m mote_optuna run {config.source}' first"
        )
    storage = make_storage(config.storage_url, workers=1)
    try:
        return optuna.load_study(study_name=config.name, storage=storage)
    except KeyError:
        raise UserError(
            f"no study named {config.name!r} in {mask_url(config.storage_url)}; run "
            f"'python -m mote_optuna run {config.source}' first"
        ) from None
