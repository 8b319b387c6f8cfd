"""The full-sync chart as hand-written SVG (no plotting library needed for one line)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

W, H = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 50, 60


def _nice_max(value: float) -> float:
    """The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10ⁿ) at least ``value``."""
    for power in range(-1, 9):
        for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8):
            top = step * 10**power
            if top >= value:
                return top
    return value


def write_full_sync_chart(
    path: Path, series: Sequence[tuple[int, float]], *, raw_verify: float
) -> None:
    """Full-sync seconds against entries held; dashed: the time raw single-core
    verification alone would take (entries / raw verify/s)."""
    if not series:
        return
    points = sorted(series)
    max_x = _nice_max(max(n for n, _ in points))
    max_y = _nice_max(max(max(s for _, s in points), max_x / raw_verify) * 1.05)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(n: float) -> float:
        return LEFT + n / max_x * plot_w

    def y(s: float) -> float:
        return TOP + plot_h - s / max_y * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
        "Full sync by a fresh node: time against federation size</text>",
        f'<text x="{W / 2}" y="38" text-anchor="middle" fill="#555">'
        f"290 origins, SQLite hub and node, mTLS on loopback, 2 shared cores "
        f"({dt.date.today().isoformat()})</text>",
    ]
    for i in range(6):
        v = max_y * i / 5
        parts.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>'
        )
        n = max_x * i / 5
        parts.append(
            f'<text x="{x(n):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{n / 1000:g}k</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{W - RIGHT}" y2="{TOP + plot_h}" '
        'stroke="#000"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#000"/>'
        f'<text x="{W / 2}" y="{H - 18}" text-anchor="middle">entries held by the hub</text>'
        f'<text x="18" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {TOP + plot_h / 2})">seconds</text>'
    )
    # The verification limit: entries / raw verify rate on one core.
    parts.append(
        f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(max_x):.1f}" '
        f'y2="{y(max_x / raw_verify):.1f}" stroke="#888" stroke-dasharray="6 4"/>'
    )
    path_d = " ".join(
        f"{'M' if i == 0 else 'L'}{x(n):.1f},{y(s):.1f}" for i, (n, s) in enumerate(points)
    )
    parts.append(f'<path d="{path_d}" fill="none" stroke="#0b5cad" stroke-width="2.5"/>')
    for n, s in points:
        parts.append(f'<circle cx="{x(n):.1f}" cy="{y(s):.1f}" r="4" fill="#0b5cad"/>')
    # The values as a small table (labels beside close points would overlap).
    for i, (n, s) in enumerate(points):
        row = escape(f"{n / 1000:g}k entries: {s:.1f} s ({n / s:,.0f} entries/s)")
        parts.append(f'<text x="{LEFT + 12}" y="{TOP + 58 + 16 * i}">{row}</text>')
    lx, ly = LEFT + 12, TOP + 10
    parts.append(
        f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="#0b5cad" stroke-width="2.5"/>'
        f'<text x="{lx + 30}" y="{ly + 4}">Samverka full sync (verify + store)</text>'
        f'<line x1="{lx}" y1="{ly + 18}" x2="{lx + 24}" y2="{ly + 18}" stroke="#888" '
        f'stroke-dasharray="6 4"/>'
        f'<text x="{lx + 30}" y="{ly + 22}">raw Ed25519 verify alone, one core '
        f"({raw_verify:,.0f}/s)</text>"
    )
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
