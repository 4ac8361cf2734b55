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
import math
import tempfile
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from mote_optuna.config import StudyConfig
from mote_optuna.spaces import SearchSpace

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

# Op colours: none is drawn dashed and grey; the others get distinct, colour-blind-safe hues.
_OP_STYLE: dict[str, tuple[str, str]] = {
    "none": ("#9e9e9e", "zero"),
    "skip_connect": ("#0072b2", "skip"),
    "nor_conv_1x1": ("#009e73", "conv 1x1"),
    "nor_conv_3x3": ("#d55e00", "conv 3x3"),
    "avg_pool_3x3": ("#cc79a7", "avg pool 3x3"),
}
# NB201 edge order (benchmark string order) and how far each edge bends off the node line.
_NB201_EDGES = ((0, 1, 0), (0, 2, -95), (1, 2, 0), (0, 3, 175), (1, 3, 95), (2, 3, 0))


def cell_svg(space: SearchSpace, arch: Any) -> str:
    """An SVG picture of ``arch``: the NB201 cell as a 4-node DAG, else a table of its params."""
    if space.name == "nb201":
        return _nb201_svg(tuple(arch), space.to_str(arch))
    return _table_svg(space.name, space.to_str(arch), space.to_params(arch))


def _nb201_svg(ops: tuple[str, ...], title: str) -> str:
    width, height, y = 720, 400, 170
    xs = [80, 273, 466, 660]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="14">',
        f"<title>{html.escape(title)}</title>",
        '<rect width="100%" height="100%" fill="white"/>',
        "<defs>",
    ]
    for op, (colour, _) in _OP_STYLE.items():
        parts.append(
            f'<marker id="arrow-{op}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{colour}"/></marker>'
        )
    parts.append("</defs>")
    radius = 24
    for (src, dst, bend), op in zip(_NB201_EDGES, ops, strict=True):
        colour, label = _OP_STYLE.get(op, ("#000000", op))
        x0, x1 = xs[src], xs[dst]
        cx, cy = (x0 + x1) / 2, y + 2 * bend  # control point; the curve peaks at y + bend
        # start and end on the node circles, pointing at the control point
        sx, sy = _towards(x0, y, cx, cy, radius)
        ex, ey = _towards(x1, y, cx, cy, radius)
        dash = ' stroke-dasharray="6 5"' if op == "none" else ""
        parts.append(
            f'<path d="M{sx:.1f},{sy:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}" fill="none" '
            f'stroke="{colour}" stroke-width="2.5"{dash} marker-end="url(#arrow-{op})"/>'
        )
        lx, ly = 0.25 * x0 + 0.5 * cx + 0.25 * x1, 0.5 * y + 0.5 * cy
        ly += 20 if bend > 0 else -2  # below a downward arc, above the others
        parts.append(
            f'<text x="{lx:.1f}" y="{ly - 6:.1f}" text-anchor="middle" fill="{colour}" '
            f'stroke="white" stroke-width="4" paint-order="stroke">{html.escape(label)}</text>'
        )
    for node, x in enumerate(xs):
        name = {0: "in", 3: "out"}.get(node, str(node))
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="{radius}" fill="#f5f5f5" stroke="#333" '
            f'stroke-width="2"/><text x="{x}" y="{y + 5}" text-anchor="middle" '
            f'font-weight="bold">{name}</text>'
        )
    parts.append(
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle" font-size="11" '
        f'fill="#333">{html.escape(title)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _towards(x: float, y: float, tx: float, ty: float, radius: float) -> tuple[float, float]:
    dx, dy = tx - x, ty - y
    norm = math.hypot(dx, dy) or 1.0
    return x + radius * dx / norm, y + radius * dy / norm


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
