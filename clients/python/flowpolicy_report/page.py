"""The report page: one self-contained HTML file (plots inlined as SVG, videos as data URLs, no script or style
from elsewhere) with a summary table at the top, then success against K and against training steps, the per-seed
outcome strip, chunk latency, the training loss, benchmarks and the failure videos.

A short inline script marks on <body> what rendered, for a headless browser to check: `data-plots` and
`data-plots-rendered` (SVGs with a non-empty box and drawn content), `data-videos`, `data-videos-loaded` (each
<video> that fired `loadeddata`) and `data-videos-failed`.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from .latency import plot_bench_latency, plot_latency_histograms
from .loss_curve import plot_loss_curve
from .outcome_strip import plot_outcome_strip
from .reports import file_name
from .success_vs_k import plot_success_against_k
from .success_vs_steps import plot_success_against_steps
from .videos import collect_videos

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 24px auto;
       max-width: 1160px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.sources { color: #666; font-size: 12px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { padding: 3px 9px; border-bottom: 1px solid #eee; text-align: left; white-space: nowrap; }
th { background: #f4f4f4; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 8px 0; }
figcaption, .note { color: #555; font-size: 12.5px; }
svg.plot { max-width: 100%; height: auto; }
.videos { display: flex; flex-wrap: wrap; gap: 14px; }
.videos figure { width: 240px; margin: 0; }
.videos video { width: 240px; background: #000; }
.failure { color: #b2182b; } .success { color: #1a7837; }
"""

CHECK_SCRIPT = """
(function () {
  var body = document.body;
  var plots = Array.prototype.slice.call(document.querySelectorAll("svg.plot"));
  var rendered = plots.filter(function (svg) {
    var box = svg.getBoundingClientRect(), content = svg.getBBox();
    return box.width > 0 && box.height > 0 && content.width > 0 && content.height > 0 &&
      svg.querySelector("path, use, image") !== null;
  });
  body.setAttribute("data-plots", plots.length);
  body.setAttribute("data-plots-rendered", rendered.length);
  var videos = Array.prototype.slice.call(document.querySelectorAll("video"));
  var loaded = 0, failed = 0;
  function update() {
    body.setAttribute("data-videos", videos.length);
    body.setAttribute("data-videos-loaded", loaded);
    body.setAttribute("data-videos-failed", failed);
  }
  videos.forEach(function (video) {
    var counted = false;
    function done(ok) {
      if (counted) { return; }
      counted = true;
      if (ok) { loaded += 1; video.setAttribute("data-loaded", "true"); } else { failed += 1; }
      update();
    }
    video.addEventListener("loadeddata", function () { done(true); });
    video.addEventListener("error", function () { done(false); });
    if (video.readyState >= 2) { done(true); }
  });
  update();
})();
"""


def _e(text):
    return html.escape(str(text), quote=True)


def _rate(evaluation):
    if math.isnan(evaluation.rate):
        return "no trials"
    return f"{evaluation.rate:.3f} [{evaluation.low:.3f}, {evaluation.high:.3f}]"


def _mean_progress(evaluation):
    values = [r["maxProgress"] for r in evaluation.results if isinstance(r.get("maxProgress"), (int, float))]
    return f"{sum(values) / len(values):.3f}" if values else "–"


def _dp_score(evaluation):
    """Diffusion Policy's Push-T score with its interval; a dash (the reason on hover) when there is none."""
    score = evaluation.diffusion_policy_score
    if score is None:
        reason = evaluation.diffusion_policy_score_missing
        return f'<span title="{_e(reason)}">–</span>' if reason else "–"
    return _e(f"{score.mean:.3f} [{score.low:.3f}, {score.high:.3f}]")


def _table(headers, rows, numeric=()):
    head = "".join(f"<th>{_e(header)}</th>" for header in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="number">{cell}</td>' if index in numeric else f"<td>{cell}</td>"
                        for index, cell in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _or_dash(value, form="{}"):
    return _e(form.format(value)) if value is not None else "–"


def _report_name(source):
    return _e(file_name(source))


def _evaluation_table(evaluations):
    """One row per evaluation; the conditions column only when some row has one, the DP score only when some row is
    Push-T."""
    columns = [  # (header, numeric, cell)
        ("task", False, lambda e: _e(e.task)),
        ("policy", False, lambda e: _e(e.checkpoint_name)),
        ("K", True, lambda e: _or_dash(e.solver_steps)),
        ("hand-over", False, lambda e: _or_dash(e.hand_over)),
        ("conditions", False, lambda e: _e(e.conditions)),
        ("success [95% interval]", True, lambda e: _e(_rate(e))),
        ("DP score [95% interval]", True, _dp_score),
        ("episodes", True, lambda e: f"{e.successes}/{e.trials}"),
        ("mean max progress", True, lambda e: _e(_mean_progress(e))),
        ("training steps", True, lambda e: _or_dash(e.training_steps, "{:,}")),
        ("report", False, lambda e: _report_name(e.source)),
    ]
    shown = {"conditions": any(e.conditions for e in evaluations),
             "DP score [95% interval]": any(e.push_t for e in evaluations)}
    columns = [column for column in columns if shown.get(column[0], True)]
    rows = [[cell(e) for _, _, cell in columns] for e in evaluations]
    return _table([header for header, _, _ in columns], rows,
                  numeric={index for index, (_, numeric, _) in enumerate(columns) if numeric})


def _summary(reports):
    parts = []
    if reports.evaluations:
        parts.append(_evaluation_table(reports.evaluations))
    if reports.trainings:
        headers = ["task", "trainer", "method", "checkpoint", "steps", "final loss", "samples/s", "time", "report"]
        rows = [[_or_dash(t.task), _e(t.trainer), _or_dash(t.method),
                 _or_dash(Path(t.checkpoint).name if t.checkpoint else None), _e(f"{t.steps:,}"),
                 _or_dash(t.final_loss, "{:.4g}"), _or_dash(t.samples_per_second, "{:,.0f}"),
                 _or_dash(t.seconds / 60 if t.seconds is not None else None, "{:.1f} min"), _report_name(t.source)]
                for t in reports.trainings]
        parts.append(_table(headers, rows, numeric={4, 5, 6, 7}))
    return "\n".join(parts)


def _plot_section(plot):
    if plot.svg is None and not plot.note:
        return ""
    caption = f"<figcaption>{_e(plot.note)}</figcaption>" if plot.note else ""
    table = _table(plot.table[0], [[_e(cell) for cell in row] for row in plot.table[1]]) if plot.table else ""
    if plot.svg is None:
        return f'<h2>{_e(plot.title)}</h2>\n<p class="note">{_e(plot.note)}</p>{table}'
    return f"<h2>{_e(plot.title)}</h2>\n<figure>{plot.svg}{caption}</figure>{table}"


def _bench_section(benchmarks):
    if not benchmarks:
        return ""
    parts = ["<h2>Benchmarks</h2>"]
    for benchmark in benchmarks:
        rows = [[_e(name), _e(value)] for name, value in benchmark.figures]
        parts.append(f"<p><b>{_e(benchmark.title)}</b> <span class=\"sources\">({_e(Path(benchmark.source).name)})"
                     "</span></p>")
        if rows:
            parts.append(_table(["figure", "value"], rows, numeric={1}))
    return "\n".join(parts)


def _video_section(videos, notes, listed):
    if not listed:
        return ""
    parts = ["<h2>Episode videos</h2>"]
    if videos:
        figures = []
        for video in videos:
            outcome = "success" if video.success else "failure"
            figures.append(f'<figure><video controls muted preload="auto" src="{video.data_url}"></video>'
                           f'<figcaption class="{outcome}">{_e(video.caption)}</figcaption></figure>')
        parts.append(f'<div class="videos">{"".join(figures)}</div>')
    parts += [f'<p class="note">{_e(note)}</p>' for note in notes]
    return "\n".join(parts)


def build_page(reports, sources, title, max_videos=12):
    """The page's HTML, and the notes worth printing (videos left out)."""
    plots = [plot_success_against_k(reports.evaluations), plot_success_against_steps(reports.evaluations),
             plot_outcome_strip(reports.evaluations), plot_latency_histograms(reports.evaluations),
             plot_loss_curve(reports.trainings)]
    bench_plot = plot_bench_latency(reports.benchmarks) if reports.benchmarks else None
    videos, notes = collect_videos(reports.evaluations, max_videos)
    listed = any(evaluation.videos for evaluation in reports.evaluations)
    campaigns = "".join(f"; campaign {_e(Path(source).name)} ({_e(settings.get('task', '?'))}, "
                        f"{_e(settings.get('episodes', '?'))} episodes per row)"
                        for source, settings in reports.campaigns if isinstance(settings, dict))
    names = ", ".join(_e(Path(source).name) for source in sources)
    body = "\n".join([
        f"<h1>{_e(title)}</h1>",
        f'<p class="sources">From {len(sources)} report(s): {names}{campaigns}</p>',
        _summary(reports),
        *[_plot_section(plot) for plot in plots],
        _bench_section(reports.benchmarks),
        _plot_section(bench_plot) if bench_plot else "",
        _video_section(videos, notes, listed),
    ])
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)}</title>\n'
            f'<meta name="generator" content="flowpolicy report">\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n'
            f"<script>{CHECK_SCRIPT}</script>\n</body>\n</html>\n")
    return page, notes
