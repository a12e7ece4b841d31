"""Checks shared by the figure tests: draw a figure off screen, find texts that overlap."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def render(figure: Figure):
    """Draw ``figure`` on an Agg canvas and return its renderer (text extents need one)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def overlapping_texts(figure: Figure) -> list[tuple[str, str]]:
    """Pairs of texts of one axes (its texts, and its x or y tick labels among
    themselves) whose drawn extents overlap."""
    renderer = render(figure)
    clashes = []
    for ax in figure.axes:
        for texts in (ax.texts, ax.get_xticklabels(), ax.get_yticklabels()):
            shown = [t for t in texts if t.get_visible() and t.get_text().strip()]
            boxes = [t.get_window_extent(renderer).shrunk(0.98, 0.98) for t in shown]
            for a in range(len(shown)):
                for b in range(a):
                    if boxes[a].overlaps(boxes[b]):
                        clashes.append((shown[a].get_text(), shown[b].get_text()))
    return clashes
