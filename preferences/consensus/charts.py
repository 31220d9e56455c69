"""Geometry for the small SVG bar charts on the consensus page.

Pure functions returning numbers for the template to place as SVG attributes: no inline styles
or scripts (the pages run under a Content-Security-Policy without 'unsafe-inline')."""

from __future__ import annotations

from dataclasses import dataclass

BAR_HEIGHT = 22
GAP = 6
LABEL_WIDTH = 150
PLOT_WIDTH = 300


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # what the bar stands for, shown as text too
    text: str
    y: int
    width: float
    css: str = ""


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    height: int
    label_width: int = LABEL_WIDTH
    plot_width: int = PLOT_WIDTH

    @property
    def width(self) -> int:
        return self.label_width + self.plot_width + 90


def horizontal_bars(
    rows: list[tuple[str, float | None, str]], *, maximum: float, flag_below: float | None = None
) -> Chart:
    """rows: (label, value or None, text). Bars scale to `maximum`; values under `flag_below`
    get the "flagged" class."""
    bars = []
    for i, (label, value, text) in enumerate(rows):
        share = 0.0 if value is None or maximum <= 0 else max(0.0, min(1.0, value / maximum))
        flagged = flag_below is not None and value is not None and value < flag_below
        bars.append(
            Bar(
                label=label,
                value=value,
                text=text,
                y=GAP + i * (BAR_HEIGHT + GAP),
                width=round(share * PLOT_WIDTH, 1),
                css="bar flagged" if flagged else "bar",
            )
        )
    return Chart(bars=bars, height=GAP + len(rows) * (BAR_HEIGHT + GAP) + GAP)
