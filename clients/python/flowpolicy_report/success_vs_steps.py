"""Success rate with its 95% interval against training steps: the checkpoints one training run wrote along the way
(`run.step10000.safetensors`, ...) and its final one, evaluated at the same K."""

from __future__ import annotations

from .figures import Plot, new_figure, styled, to_svg
from .series import group, interval_errors, labels, with_several

KEY = "success-vs-steps"
TITLE = "Success against training steps"


def _steps(evaluation):
    return evaluation.training_steps


def _series_key(evaluation):
    return (evaluation.run_name, evaluation.task, evaluation.solver_steps, evaluation.hand_over,
            evaluation.conditions)


@styled
def plot_success_against_steps(evaluations):
    series = with_several(group(evaluations, _series_key, _steps), _steps)
    if not series:
        return Plot(KEY, TITLE, None, "No training run has evaluations at two or more steps: give the reports of its "
                                      "intermediate checkpoints (NAME.stepN.safetensors) and of its final one with "
                                      "its training report, to see this plot.")
    names = labels(series, ("", "", "K=", "hand-over ", ""))
    figure, axes = new_figure(3.6)
    ax = axes[0][0]
    for key, members in series.items():
        label = names[key] if "K=" in names[key] else f"{names[key]}, K={key[2]}"
        ax.errorbar([_steps(m) for m in members], [m.rate for m in members], yerr=interval_errors(members),
                    marker="o", capsize=4, linewidth=1.5, label=label)
    ax.set_xlabel("training steps")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=0)
    ax.ticklabel_format(axis="x", style="plain")
    ax.legend(loc="best")
    note = (f"{len(series)} training run(s); steps from the checkpoint's name (.stepN) or, for a final checkpoint, "
            "from its training report; bars: 95% Wilson intervals.")
    return Plot(KEY, TITLE, to_svg(figure, KEY), note)
