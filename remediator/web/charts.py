"""Charts for the Quality page as inline SVG, drawn on the server: no script, no library.

Every text in a chart is escaped; the numbers are the report's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH, HEIGHT = 900, 220
LEFT, BOTTOM, TOP = 48, 24, 10


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label under the axis and its stacked parts (css class, value)."""

    label: str
    parts: Sequence[tuple[str, float]]
    title: str = ""


def bar_chart(bars: Sequence[Bar], *, caption: str, unit: str = "") -> Markup:
    """A stacked bar chart; `unit` follows the axis' top value (e.g. "s", "%")."""
    top = max((sum(v for _, v in bar.parts) for bar in bars), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(bars), 1)
    width = f"{max(step * 0.75, 1.0):.1f}"
    axis = TOP + plot_h
    shapes: list[Markup] = [
        Markup('<text class="axis" x="0" y="{}">{}{}</text>').format(TOP + 8, _number(top), unit),
        Markup('<text class="axis" x="0" y="{}">0</text>').format(axis),
        Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>').format(
            LEFT, axis, WIDTH, axis
        ),
    ]
    every = max(1, len(bars) // 12)  # at most ~12 labels under the axis
    for index, bar in enumerate(bars):
        x = f"{LEFT + index * step:.1f}"
        base = float(axis)
        for css, value in bar.parts:
            height = plot_h * value / top
            base -= height
            shapes.append(
                Markup(
                    '<rect class="{}" x="{}" y="{:.1f}" width="{}" height="{:.1f}">'
                    "<title>{}</title></rect>"
                ).format(css, x, base, width, height, bar.title or bar.label)
            )
        if index % every == 0:
            shapes.append(
                Markup('<text class="axis" x="{}" y="{}">{}</text>').format(
                    x, HEIGHT - 6, bar.label
                )
            )
    return (
        Markup('<svg viewBox="0 0 {} {}" role="img" aria-label="{}"><title>{}</title>').format(
            WIDTH, HEIGHT, caption, caption
        )
        + Markup("").join(shapes)
        + Markup("</svg>")
    )


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"
