"""Latency: the histogram of each evaluation's chunk latency (the time of the policy call that sampled each chunk,
from the report's HDR histogram `chunkLatency`), and the percentiles of the benchmarks' latency summaries."""

from __future__ import annotations

import math

import numpy as np

from .figures import Plot, new_figure, styled, to_svg
from .reports import file_name

HISTOGRAM_KEY = "latency-histograms"
HISTOGRAM_TITLE = "Chunk latency"
BENCH_KEY = "bench-latency"
BENCH_TITLE = "Benchmark latency percentiles"
COLUMNS = 3


def weighted_percentile(values, counts, share):
    """The value below which `share` of the counts lie (the HDR histogram's bucket tops, as recorded)."""
    order = np.argsort(values)
    cumulative = np.cumsum(np.asarray(counts)[order])
    index = int(np.searchsorted(cumulative, share * cumulative[-1]))
    return float(np.asarray(values)[order][min(index, len(values) - 1)])


def _ms(value):
    return f"{value:.0f} ms" if value >= 100 else f"{value:.3g} ms"


@styled
def plot_latency_histograms(evaluations):
    measured = [evaluation for evaluation in evaluations if evaluation.chunk_latency_ns]
    summarised = [evaluation for evaluation in evaluations
                  if not evaluation.chunk_latency_ns and evaluation.latency_summary_ms]
    table = None
    if summarised:
        rows = [[e.label, _ms(e.latency_summary_ms.get("p50", math.nan)),
                 _ms(e.latency_summary_ms.get("p99", math.nan)), str(e.latency_summary_ms.get("count", "?")),
                 file_name(e.source)] for e in summarised]
        table = (["policy (no histogram in the report)", "p50 per call", "p99 per call", "calls", "report"], rows)
    if not measured:
        note = "No evaluation has a chunk latency histogram (chunkLatency, in reports written since it was added)."
        return Plot(HISTOGRAM_KEY, HISTOGRAM_TITLE, None, note + (" The older reports' summaries:" if table else ""),
                    table)
    rows = math.ceil(len(measured) / COLUMNS)
    columns = COLUMNS
    figure, axes = new_figure(2.3 * rows, columns=columns, rows=rows, sharex=True)
    everything = [value / 1e6 for e in measured for value, _ in e.chunk_latency_ns]
    bins = np.geomspace(max(min(everything) * 0.9, 1e-4), max(everything) * 1.1, 40)
    for index, evaluation in enumerate(measured):
        ax = axes[index // columns][index % columns]
        values = np.array([value / 1e6 for value, _ in evaluation.chunk_latency_ns])  # ms
        counts = np.array([count for _, count in evaluation.chunk_latency_ns])
        ax.hist(values, bins=bins, weights=counts, color="#4575b4", alpha=0.85)
        for share, style in ((0.5, "-"), (0.99, "--")):
            ax.axvline(weighted_percentile(values, counts, share), color="#333333", linestyle=style, linewidth=1)
        p50, p99 = weighted_percentile(values, counts, 0.5), weighted_percentile(values, counts, 0.99)
        ax.set_title(f"{evaluation.label}\np50 {_ms(p50)}, p99 {_ms(p99)}, {int(counts.sum()):,} chunks",
                     fontsize=8)
        ax.set_xscale("log")
        if index % columns == 0:
            ax.set_ylabel("chunks")
        if index // columns == rows - 1:
            ax.set_xlabel("latency of the sampling call (ms)")
    for index in range(len(measured), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.tight_layout()
    note = "Solid line: p50, dashed: p99. A chunk's latency is that of the batched call that sampled it."
    if table:
        note += " Older reports hold only a summary per policy call (below)."
    return Plot(HISTOGRAM_KEY, HISTOGRAM_TITLE, to_svg(figure, HISTOGRAM_KEY), note, table)


@styled
def plot_bench_latency(benchmarks):
    rows = [(f"{benchmark.kind}: {name}", summary) for benchmark in benchmarks for name, summary in benchmark.latencies]
    if not rows:
        return Plot(BENCH_KEY, BENCH_TITLE, None, "No benchmark with latency figures." if benchmarks else "")
    figure, axes = new_figure(0.8 + 0.35 * len(rows))
    ax = axes[0][0]
    markers = (("p50", "o", "#4575b4"), ("p99", "s", "#fdae61"), ("p999", "^", "#d73027"), ("max", "x", "#333333"))
    for name, marker, color in markers:
        ax.scatter([summary[name] for _, summary in rows], range(len(rows)), marker=marker, color=color, label=name,
                   zorder=3)
    for row, (_, summary) in enumerate(rows):
        ax.plot([summary["p50"], summary["max"]], [row, row], color="#999999", linewidth=1, zorder=2)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=4, borderaxespad=0.3)
    return Plot(BENCH_KEY, BENCH_TITLE, to_svg(figure, BENCH_KEY), "Percentiles of each benchmark's latency summary.")
