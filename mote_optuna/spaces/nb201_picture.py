"""The picture of a NAS-Bench-201 cell (``NB201Space.picture``): an SVG of its 4-node DAG."""

from __future__ import annotations

import html
import math

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


def cell_svg(ops: tuple[str, ...], title: str) -> str:
    """The NB201 cell as a 4-node DAG, one coloured arrow per edge op."""
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
