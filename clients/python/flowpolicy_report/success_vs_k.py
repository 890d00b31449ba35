"""Success rate with its 95% interval against K (Euler steps per chunk): the evaluations of one checkpoint at
several K, from separate reports or the rows of a merged campaign."""

from __future__ import annotations

from .figures import Plot, new_figure, styled, to_svg
from .series import group, interval_errors, labels, with_several

KEY = "success-vs-k"
TITLE = "Success against K"


def _k(evaluation):
    return evaluation.solver_steps


def _series_key(evaluation):
    return (evaluation.checkpoint_name, evaluation.task, evaluation.hand_over, evaluation.conditions,
            evaluation.checkpoint)


@styled
def plot_success_against_k(evaluations):
    series = with_several(group(evaluations, _series_key, _k), _k)
    if not series:
        return Plot(KEY, TITLE, None, "No checkpoint was evaluated at two or more K: give reports of one checkpoint "
                                      "at several --steps (or a merged campaign) to see this plot.")
    names = labels(series, ("", "", "hand-over ", "", ""))
    figure, axes = new_figure(3.6)
    ax = axes[0][0]
    ks = sorted({_k(member) for members in series.values() for member in members})
    for key, members in series.items():
        ax.errorbar([_k(m) for m in members], [m.rate for m in members], yerr=interval_errors(members),
                    marker="o", capsize=4, linewidth=1.5, label=names[key])
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("K (solver steps per chunk)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="best")
    note = (f"{len(series)} checkpoint(s) at K = {', '.join(str(k) for k in ks)}; bars: 95% Wilson intervals over "
            "the episodes.")
    return Plot(KEY, TITLE, to_svg(figure, KEY), note)
