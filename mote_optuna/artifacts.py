"""Per-trial artifacts for optuna-dashboard: the architecture as JSON and a picture of its cell.

The objective calls :func:`upload_arch_artifacts` as soon as the architecture is known, while
the trial is RUNNING (Optuna refuses uploads to finished trials, OPTUNA_NOTES §1.7). Files go
through Optuna's own :func:`optuna.artifacts.upload_artifact` into a
:class:`~optuna.artifacts.FileSystemArtifactStore` at :func:`artifact_dir`:

- ``artifacts:`` of the study file when set (relative paths are relative to the working
  directory, like a ``sqlite:///`` path);
- ``off`` in the study file: no artifacts at all;
- else beside the SQLite/journal file: ``<dir>/<name>-artifacts``;
- else (PostgreSQL) ``artifacts/<name>``. Workers on several hosts then each keep their own
  folder; point ``artifacts:`` at a shared folder to see every trial's files in one dashboard.

A failed upload (full disk, read-only folder) is logged and never fails the trial.
"""

from __future__ import annotations

import html
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from mote_optuna.config import StudyConfig
from mote_optuna.spaces import SearchSpace
from mote_optuna.spaces.base import HasPicture

__all__ = [
    "ARCH_JSON",
    "CELL_SVG",
    "arch_record",
    "artifact_dir",
    "cell_svg",
    "make_artifact_store",
    "upload_arch_artifacts",
]

_logger = logging.getLogger(__name__)

ARCH_JSON = "arch.json"
CELL_SVG = "cell.svg"

_STORES: dict[Path, FileSystemArtifactStore] = {}


def artifact_dir(config: StudyConfig) -> Path:
    """Where the study's artifacts live (see the module docstring for the rule)."""
    if config.artifacts:
        return Path(config.artifacts).expanduser()
    return config.beside_storage("artifacts", "artifacts")


def make_artifact_store(config: StudyConfig) -> FileSystemArtifactStore:
    """The study's artifact store; creates its folder. One store object per folder and process."""
    folder = artifact_dir(config).resolve()
    if folder not in _STORES:
        folder.mkdir(parents=True, exist_ok=True)
        _STORES[folder] = FileSystemArtifactStore(str(folder))
    return _STORES[folder]


def arch_record(space: SearchSpace, arch: Any) -> dict[str, Any]:
    """What ``arch.json`` holds: space, benchmark string, canonical key and Optuna params."""
    return {
        "space": space.name,
        "arch": space.to_str(arch),
        "arch_key": space.key(arch),
        "params": space.to_params(arch),
        "num_classes": space.full_net.num_classes,
        "resolution": space.full_net.resolution,
    }


def upload_arch_artifacts(
    trial: optuna.Trial, space: SearchSpace, arch: Any, config: StudyConfig
) -> list[str]:
    """Attach ``arch.json`` and ``cell.svg`` to the RUNNING ``trial``; returns the artifact ids.

    Never raises for I/O problems: a trial is worth more than its pictures. Nothing is uploaded
    when the study file says ``artifacts: off``.
    """
    if config.artifacts == "off":
        return []
    try:
        store = make_artifact_store(config)
        with tempfile.TemporaryDirectory(prefix="mote-artifacts-") as tmp:
            json_path = Path(tmp) / ARCH_JSON
            json_path.write_text(json.dumps(arch_record(space, arch), indent=2) + "\n")
            svg_path = Path(tmp) / CELL_SVG
            svg_path.write_text(cell_svg(space, arch))
            return [
                upload_artifact(
                    artifact_store=store,
                    file_path=str(path),
                    study_or_trial=trial,
                    mimetype=mimetype,
                    encoding="utf-8",
                )
                for path, mimetype in (
                    (json_path, "application/json"),
                    (svg_path, "image/svg+xml"),
                )
            ]
    except OSError as exc:
        _logger.warning("trial %d: artifacts not uploaded: %s", trial.number, exc)
        return []


# --------------------------------------------------------------------------------------------
# Pictures


def cell_svg(space: SearchSpace, arch: Any) -> str:
    """An SVG picture of ``arch``: the space's own drawing (``HasPicture``), else a table of its
    parameters."""
    if isinstance(space, HasPicture):
        return space.picture(arch)
    return _table_svg(space.name, space.to_str(arch), space.to_params(arch))


def _table_svg(space_name: str, title: str, params: dict[str, Any]) -> str:
    """Generic fallback for spaces without a drawing: one ``name = value`` line per param."""
    line = 20
    rows = list(params.items())
    height = 50 + line * len(rows)
    width = max(320, 12 + 8 * max([len(title)] + [len(f"{k} = {v}") for k, v in rows]))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="13">',
        f"<title>{html.escape(title)}</title>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="22" font-weight="bold">{html.escape(space_name)}: '
        f"{html.escape(title)}</text>",
    ]
    for i, (name, value) in enumerate(rows):
        parts.append(f'<text x="10" y="{46 + i * line}">{html.escape(f"{name} = {value}")}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
