"""The training loss against steps, from the `lossCurve` [[step, loss], ...] of training reports that have one."""

from __future__ import annotations

from .figures import Plot, new_figure, styled, to_svg

KEY = "loss-curve"
TITLE = "Training loss"


def _without_curve(training):
    losses = []
    if training.first_loss is not None:
        losses.append(f"first loss {training.first_loss:.4g}")
    if training.final_loss is not None:
        losses.append(f"final loss {training.final_loss:.4g}")
    figures = f" ({', '.join(losses)} after {training.steps:,} steps)" if losses else ""
    return f"{training.source}: no loss curve in this report{figures}."


@styled
def plot_loss_curve(trainings):
    with_curve = [training for training in trainings if training.loss_curve]
    notes = [_without_curve(training) for training in trainings if not training.loss_curve]
    if not with_curve:
        return Plot(KEY, TITLE, None, " ".join(notes) if notes else "")
    figure, axes = new_figure(3.4)
    ax = axes[0][0]
    for training in with_curve:
        steps = [step for step, _ in training.loss_curve]
        losses = [loss for _, loss in training.loss_curve]
        name = training.checkpoint.rsplit("/", 1)[-1] if training.checkpoint else training.source
        ax.plot(steps, losses, linewidth=1.3, label=f"{name} ({training.trainer})")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("flow-matching loss")
    ax.ticklabel_format(axis="x", style="plain")
    ax.legend(loc="best")
    return Plot(KEY, TITLE, to_svg(figure, KEY), " ".join(notes))
