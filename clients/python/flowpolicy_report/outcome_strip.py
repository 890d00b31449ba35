"""Per-seed outcomes: one row per evaluation, one cell per seed, green for a success and red for a failure, the shade
the episode's largest progress (Push-T: max coverage; the kitchen: subtasks completed). Rows share the seed axis,
so the same seed lines up across checkpoints and K."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.patches import Patch

from .figures import FAILURE_COLOR, SUCCESS_COLOR, Plot, new_figure, styled, to_svg

KEY = "outcome-strip"
TITLE = "Outcome per seed"
MISSING = (0.93, 0.93, 0.93, 1.0)


def _progress_scale(evaluation):
    """Progress is a share (coverage) up to 1, or a count (subtasks); shades run from 0 to the larger of 1 and the
    report's highest value."""
    values = [r.get("maxProgress") for r in evaluation.results if isinstance(r.get("maxProgress"), (int, float))]
    return max([1.0] + values)


def _seed_ticks(seeds, wanted=9):
    """Columns to label: the seeds that are multiples of a round step (every 25th of 200 seeds), else evenly spaced
    columns."""
    span = seeds[-1] - seeds[0]
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000):
        if span / step <= wanted:
            ticks = [index for index, seed in enumerate(seeds) if seed % step == 0]
            if len(ticks) >= 2:
                return ticks
            break
    return sorted(set(np.linspace(0, len(seeds) - 1, min(len(seeds), wanted)).round().astype(int).tolist()))


@styled
def plot_outcome_strip(evaluations):
    evaluations = [evaluation for evaluation in evaluations if evaluation.results]
    if not evaluations:
        return Plot(KEY, TITLE, None, "No evaluation with per-seed results.")
    seeds = sorted({int(result["seed"]) for evaluation in evaluations for result in evaluation.results})
    column = {seed: index for index, seed in enumerate(seeds)}
    greens, reds = colormaps["Greens"], colormaps["Reds"]
    colors = np.tile(np.array(MISSING), (len(evaluations), len(seeds), 1))  # [rows, seeds, RGBA]
    for row, evaluation in enumerate(evaluations):
        scale = _progress_scale(evaluation)
        for result in evaluation.results:
            progress = result.get("maxProgress")
            share = min(1.0, max(0.0, progress / scale)) if isinstance(progress, (int, float)) else 1.0
            colormap = greens if result["success"] else reds
            colors[row, column[int(result["seed"])]] = colormap(0.25 + 0.75 * share)
    figure, axes = new_figure(0.9 + 0.32 * len(evaluations))
    ax = axes[0][0]
    ax.pcolormesh(np.arange(len(seeds) + 1) - 0.5, np.arange(len(evaluations) + 1) - 0.5, colors,
                  edgecolors="white", linewidth=0.2 if len(seeds) <= 400 else 0.0)
    ax.set_yticks(range(len(evaluations)),
                  [f"{e.label}  {e.successes}/{e.trials}" for e in evaluations])
    ax.invert_yaxis()
    ticks = _seed_ticks(seeds)
    ax.set_xticks(ticks, [str(seeds[tick]) for tick in ticks])
    ax.set_xlabel("seed")
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(length=0)
    progress_names = sorted({evaluation.progress_name for evaluation in evaluations})
    legend = [Patch(color=SUCCESS_COLOR, label="success"), Patch(color=FAILURE_COLOR, label="failure")]
    if any(len(evaluation.results) < len(seeds) for evaluation in evaluations):
        legend.append(Patch(color=MISSING, label="not run"))
    ax.legend(handles=legend, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3, borderaxespad=0.3)
    note = (f"{len(seeds)} seeds; the darker the cell, the higher the episode's {' / '.join(progress_names)}.")
    return Plot(KEY, TITLE, to_svg(figure, KEY), note)
