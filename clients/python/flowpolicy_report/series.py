"""Grouping evaluations into the series a plot draws: the same checkpoint at several K, or the same training run at
several steps, each series labelled by what tells it apart from the others."""

from __future__ import annotations

from collections import defaultdict


def group(evaluations, key, x):
    """{series key: [evaluations sorted by x]} over the evaluations where x is known."""
    series = defaultdict(list)
    for evaluation in evaluations:
        if x(evaluation) is not None:
            series[key(evaluation)].append(evaluation)
    return {name: sorted(members, key=x) for name, members in series.items()}


def with_several(series, x):
    """The series with two or more distinct x values (a single point is no curve)."""
    return {name: members for name, members in series.items() if len({x(member) for member in members}) >= 2}


def labels(keys, names):
    """One label per series key (a tuple): the parts that differ between the series, named by `names` (a part is
    shown as is when its name is empty); the first part always shows."""
    keys = list(keys)
    varying = [index for index in range(len(names))
               if index == 0 or len({key[index] for key in keys}) > 1]
    result = {}
    for key in keys:
        parts = []
        for index in varying:
            value = key[index]
            if value is None or value == "":
                continue
            parts.append(f"{names[index]}{value}" if names[index] else str(value))
        result[key] = ", ".join(parts)
    return result


def interval_errors(members):
    """The errorbar extents (below, above) of each evaluation's 95% interval around its rate."""
    below = [max(0.0, member.rate - member.low) for member in members]
    above = [max(0.0, member.high - member.rate) for member in members]
    return [below, above]
