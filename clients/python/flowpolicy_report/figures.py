"""What every plot shares: matplotlib without a display, one look, and a figure turned into SVG for the page.

Text is drawn as paths (`svg.fonttype = path`), so the page looks the same on a machine without the fonts; ids are
salted with the plot's name, so that the SVGs sit side by side in one page without clashing and a page built twice
from the same reports is byte-identical.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "svg.fonttype": "path",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "figure.dpi": 100,
}
SUCCESS_COLOR = "#1a9850"
FAILURE_COLOR = "#d73027"
WIDTH = 10.0  # inches: a figure 1000 px wide at the page's scale


@dataclass
class Plot:
    """One section's plot: its SVG, or None when the reports hold nothing to plot, a line saying what it shows (or
    why it is empty), and figures that belong beside it as a table."""
    key: str
    title: str
    svg: str | None
    note: str = ""
    table: tuple | None = None  # (headers, rows of text) shown below the plot


def styled(plot_function):
    """Runs a plot function under the report's style (matplotlib reads rcParams as it draws, not only at the end)."""
    @functools.wraps(plot_function)
    def wrapper(*arguments, **options):
        with plt.rc_context(STYLE):
            return plot_function(*arguments, **options)
    return wrapper


def new_figure(height, columns=1, rows=1, **options):
    """A figure of the page's width with a grid of axes (always 2-D: axes[row][column])."""
    return plt.subplots(rows, columns, figsize=(WIDTH, height), squeeze=False, **options)


def to_svg(figure, key):
    """The figure as an `<svg>` element to inline in HTML (no XML prologue, no metadata); closes the figure."""
    buffer = io.StringIO()
    with plt.rc_context({"svg.hashsalt": f"flowpolicy-report-{key}"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    return text.replace("<svg ", f'<svg class="plot" data-plot="{key}" ', 1)
