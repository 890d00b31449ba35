"""flowpolicy_report: the committed reports are read and told apart, anything else is refused naming the file, and
the page built from them renders in headless Chromium (Debian's `chromium`, installed by scripts/setup.sh with
ffmpeg): every plot's SVG has a non-empty box and every embedded video fires `loadeddata`.

The page marks what rendered on <body> (data-plots, data-plots-rendered, data-videos, data-videos-loaded); the test
reads it back from Chromium's DOM dump after the page's scripts ran, and takes a screenshot (kept in pytest's
temporary folder, REPORT_SCREENSHOT names it in the output)."""

import html
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

CLIENTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CLIENTS))

from flowpolicy_report import ReportError, build_page, read_reports  # noqa: E402
from flowpolicy_report.__main__ import main  # noqa: E402

PUSHT = CLIENTS.parents[1] / "tasks" / "pusht" / "reports"
KITCHEN = CLIENTS.parents[1] / "tasks" / "franka_kitchen" / "reports"
CAN = CLIENTS.parents[1] / "tasks" / "robomimic_can" / "reports"
SWIFT_RUN = ["swift-30k-step10000-k10.json", "swift-30k-step20000-k10.json", "swift-30k-k10.json"]


def _tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/setup.sh (it installs Debian's ffmpeg and chromium)")
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A one-second H.264 MP4 (96x96 test pattern) made by ffmpeg."""
    path = tmp_path_factory.mktemp("video") / "episode.mp4"
    subprocess.run([_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=96x96:rate=10", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
                   check=True, timeout=120)
    assert path.stat().st_size > 1000
    return path


def _report_with_videos(folder, video):
    """swift-30k-step10000-k10.json with `videos` as `eval --video` lists them: one success and two failures, the
    files relative to the report's folder."""
    report = json.loads((PUSHT / "swift-30k-step10000-k10.json").read_text())
    failures = [r["seed"] for r in report["results"] if not r["success"]][:2]
    success = next(r["seed"] for r in report["results"] if r["success"])
    (folder / "videos").mkdir()
    entries = []
    for seed, succeeded in [(success, True)] + [(seed, False) for seed in failures]:
        shutil.copy(video, folder / "videos" / f"seed-{seed}.mp4")
        entries.append({"seed": seed, "success": succeeded, "file": f"videos/seed-{seed}.mp4"})
    report["videos"] = entries
    path = folder / "swift-30k-step10000-k10-videos.json"
    path.write_text(json.dumps(report))
    return path, failures, success


def _training_with_curve(folder):
    """train-swift-30k.json with a loss curve, as new train reports carry it."""
    report = json.loads((PUSHT / "train-swift-30k.json").read_text())
    report["lossCurve"] = [[step, 1.3 * math.exp(-step / 3000) + 0.04] for step in range(0, 30001, 1000)]
    path = folder / "train-swift-30k-curve.json"
    path.write_text(json.dumps(report))
    return path


def _campaign(folder):
    """A merged campaign of one checkpoint at K = 2 and 10 (the rows' reports: the committed reruns)."""
    rows = [{"checkpoint": "tasks/pusht/policy.safetensors", "steps": k, "handOver": "receding",
             "report": json.loads((PUSHT / f"rerun-k{k}.json").read_text())} for k in (2, 10)]
    campaign = {"task": "pusht", "checkpoints": ["tasks/pusht/policy.safetensors"], "steps": [2, 10], "episodes": 200,
                "shards": 4}
    path = folder / "campaign.json"
    path.write_text(json.dumps({"campaign": campaign, "rows": rows}))
    return path


def _summary_table(page):
    """The page's first table (the evaluations' summary): its headers, and each row as {header: cell text}."""
    table = re.search(r"<table>(.*?)</table>", page, re.S).group(1)

    def text(cell):
        return html.unescape(re.sub(r"<[^>]+>", "", cell))

    headers = [text(header) for header in re.findall(r"<th>(.*?)</th>", table)]
    rows = []
    for row in re.findall(r"<tbody>.*", table, re.S)[0].split("<tr>")[1:]:
        cells = [text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        assert len(cells) == len(headers), (headers, cells)
        rows.append(dict(zip(headers, cells)))
    return headers, rows


def _summary_of(paths):
    page, _ = build_page(read_reports(paths), [str(path) for path in paths], "summary")
    return _summary_table(page)


def _edited(folder, name, edit):
    """A copy of the committed Push-T report `name` in `folder`, changed by `edit` (it changes the document)."""
    report = json.loads((PUSHT / name).read_text())
    edit(report)
    path = folder / f"edited-{name}"
    path.write_text(json.dumps(report))
    return path


def _episode_scores(report):
    """Each episode's Push-T score, min(max coverage / 0.95, 1), from the report's own episode list."""
    return [min(result["maxProgress"] / 0.95, 1.0) for result in report["results"]]


def test_dp_score_is_the_reports_own_else_computed_from_its_episodes(tmp_path):
    stored = json.loads((PUSHT / "noise2-k10.json").read_text())
    older = json.loads((PUSHT / "fm-k10.json").read_text())
    assert "diffusionPolicyScore" in stored and "diffusionPolicyScore" not in older
    # The stored score is what its episodes give.
    assert math.isclose(statistics.fmean(_episode_scores(stored)), stored["diffusionPolicyScore"]["mean"])
    # The older report's, worked out here: the mean with a normal 95% interval (sample standard deviation).
    scores = _episode_scores(older)
    mean, half = statistics.fmean(scores), 1.959963984540054 * statistics.stdev(scores) / math.sqrt(len(scores))
    assert 0.9 < mean < 1 and half > 0.005
    expected_older = f"{mean:.3f} [{mean - half:.3f}, {min(mean + half, 1):.3f}]"
    score = stored["diffusionPolicyScore"]
    expected_stored = f"{score['mean']:.3f} [{score['low']:.3f}, {score['high']:.3f}]"
    # A stored score wins over the episodes (here made to disagree); one episode without its max coverage: no score.
    overridden = _edited(tmp_path, "noise2-k10.json", lambda r: r["diffusionPolicyScore"].update(mean=0.5, low=0.25,
                                                                                                   high=0.75))
    unscored = _edited(tmp_path, "fm-k10.json", lambda r: r["results"][3].pop("maxProgress"))

    headers, rows = _summary_of([PUSHT / "noise2-k10.json", PUSHT / "fm-k10.json", overridden, unscored])
    assert headers.index("DP score [95% interval]") == headers.index("success [95% interval]") + 1
    assert [row["DP score [95% interval]"] for row in rows] == [expected_stored, expected_older,
                                                                 "0.500 [0.250, 0.750]", "–"]
    assert rows[0]["DP score [95% interval]"] != rows[0]["success [95% interval]"]


def test_conditions_column_names_noise_push_and_precision(tmp_path):
    def noisy_int8(report):
        report.update(observationNoise=2, observationNoiseSeed=7, precision="int8")

    both = _edited(tmp_path, "disturbance30-k10.json", noisy_int8)
    assert json.loads(both.read_text())["disturbance"]["step"] == 30
    names = ["disturbance30-k10.json", "noise2-k10.json", "precision-bf16-k10.json", "rerun-k10.json",
             "precision-fp32-k10.json"]
    headers, rows = _summary_of([both] + [PUSHT / name for name in names])
    assert headers.index("conditions") == headers.index("hand-over") + 1
    assert [row["conditions"] for row in rows] == ["noise σ 2 (seed 7), push at step 30, int8", "push at step 30",
                                                   "noise σ 2", "bf16", "", ""]
    # Plain evaluations only (no noise, no push, fp32 or unrecorded): no column.
    headers, rows = _summary_of([PUSHT / "rerun-k10.json", PUSHT / "precision-fp32-k10.json", PUSHT / "fm-k10.json"])
    assert "conditions" not in headers and len(rows) == 3


def test_no_dp_score_column_without_a_push_t_report():
    plain = ["task", "policy", "K", "hand-over", "success [95% interval]", "episodes", "mean max progress",
             "training steps", "report"]
    headers, rows = _summary_of([KITCHEN / "full_k10.json", CAN / "eval_k10.json"])
    assert headers == plain and [row["task"] for row in rows] == ["franka_kitchen", "robomimic_can"]
    # Beside a Push-T report the column is there, a dash for the other task.
    headers, rows = _summary_of([KITCHEN / "full_k10.json", PUSHT / "rerun-k10.json"])
    assert [row["DP score [95% interval]"] for row in rows][0] == "–"
    assert re.fullmatch(r"0\.9\d\d \[0\.9\d\d, (0\.9\d\d|1\.000)\]", rows[1]["DP score [95% interval]"])


def test_committed_reports_are_told_apart():
    paths = [PUSHT / name for name in ["rerun-k10.json", "rerun-k2.json", *SWIFT_RUN, "train-swift-30k.json",
                                       "train-torch-30k.json", "bench-env.json", "bench-serve.json",
                                       "bench-loop-servo-1000hz.json", "fm-k10.json"]]
    reports = read_reports(paths + [KITCHEN / "bench_infer_k10.json"])
    assert len(reports.evaluations) == 6 and len(reports.trainings) == 2 and len(reports.benchmarks) == 4
    assert sorted(b.kind for b in reports.benchmarks) == ["env", "infer", "loop", "serve"]
    by_name = {Path(e.source).name: e for e in reports.evaluations}
    # Steps from an intermediate checkpoint's name, and for the final one from the training report that wrote it.
    assert [by_name[name].training_steps for name in SWIFT_RUN] == [10000, 20000, 30000]
    assert by_name["rerun-k2.json"].training_steps is None
    rerun = by_name["rerun-k10.json"]
    assert (rerun.solver_steps, rerun.successes, rerun.trials) == (10, 176, 200)
    assert rerun.low < rerun.rate < rerun.high
    assert len(rerun.results) == 200
    # The chunk latency histogram counts every chunk of the run; older reports have only the summary.
    assert sum(count for _, count in rerun.chunk_latency_ns) > 200
    assert by_name["fm-k10.json"].chunk_latency_ns == [] and by_name["fm-k10.json"].latency_summary_ms["p50"] > 0
    torch = next(t for t in reports.trainings if "torch" in t.source)
    assert torch.trainer.startswith("pytorch") and torch.steps == 30000 and torch.loss_curve == []


@pytest.mark.parametrize("name, content, expected", [
    ("storm.json", None, r"storm\.json: not a flowpolicy report of a known kind .* expected an evaluation"),
    ("broken.json", '{"results": [', r"broken\.json: not JSON \(line 1, column 14"),
    ("list.json", "[1, 2]", r"list\.json: a JSON list, not an object"),
    ("missing.json", "", r"missing\.json: no such file"),
    ("bad-success.json", '{"results": [], "success": 0.9}', r"bad-success\.json: success must be an object"),
    ("bad-histogram.json", '{"results": [], "success": {"successes": 1, "trials": 2}, "chunkLatency": {"unit": "ms"}}',
     r"bad-histogram\.json: chunkLatency must be"),
    ("bad-push.json", '{"results": [], "success": {"successes": 1, "trials": 2}, "disturbance": "soon"}',
     r"bad-push\.json: disturbance must be an object with the push's step"),
])
def test_anything_else_is_refused_naming_the_file(tmp_path, capsys, name, content, expected):
    if content is None:
        path = PUSHT / name  # a real report of another kind (the storm trial)
    else:
        path = tmp_path / name
        if content:
            path.write_text(content)
    with pytest.raises(ReportError, match=expected):
        read_reports([path])
    out = tmp_path / "page.html"
    assert main([str(PUSHT / "rerun-k10.json"), str(path), "--out", str(out)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and re.search(expected, error[0])
    assert not out.exists()


def test_loss_curve_is_plotted_when_the_report_has_one(tmp_path):
    with_curve = read_reports([_training_with_curve(tmp_path)])
    page, _ = build_page(with_curve, ["train-swift-30k-curve.json"], "loss")
    assert 'data-plot="loss-curve"' in page
    without = read_reports([PUSHT / "train-swift-30k.json"])
    page, _ = build_page(without, ["train-swift-30k.json"], "loss")
    assert 'data-plot="loss-curve"' not in page and "no loss curve in this report" in page


def test_campaign_rows_give_success_against_k(tmp_path):
    reports = read_reports([_campaign(tmp_path)])
    assert [(e.solver_steps, e.successes) for e in reports.evaluations] == [(2, 71), (10, 176)]
    page, _ = build_page(reports, ["campaign.json"], "campaign")
    assert 'data-plot="success-vs-k"' in page and "campaign.json (row 2)" in page


def test_success_against_k_draws_each_condition_as_its_own_series(tmp_path):
    from flowpolicy_report.series import group, labels
    from flowpolicy_report.success_vs_k import _k, _series_key
    int8_k2 = _edited(tmp_path, "shipped-k2.json", lambda r: r.update(precision="int8"))
    pushed_k2 = _edited(tmp_path, "shipped-k2-policy-seed1.json", lambda r: r.update(disturbance={"step": 30}))
    paths = [PUSHT / "shipped-k2.json", PUSHT / "precision-fp32-k10.json", int8_k2, PUSHT / "precision-int8-k10.json",
             pushed_k2, PUSHT / "disturbance30-k10.json"]
    series = group(read_reports(paths).evaluations, _series_key, _k)
    assert sorted((len(members), key[3]) for key, members in series.items()) == [
        (2, ""), (2, "int8"), (2, "push at step 30")]
    assert sorted(labels(series, ("", "", "hand-over ", "", "")).values()) == [
        "policy", "policy, int8", "policy, push at step 30"]


def test_page_renders_in_headless_chromium(tmp_path, video):
    chromium = _tool("chromium")
    with_videos, failures, success = _report_with_videos(tmp_path, video)
    reports = [PUSHT / name for name in ["rerun-k10.json", "rerun-k2.json", *SWIFT_RUN, "bench-serve.json"]]
    reports += [with_videos, _training_with_curve(tmp_path)]
    page_path = tmp_path / "report.html"
    assert main([str(path) for path in reports] + ["--out", str(page_path), "--title", "Push-T test"]) == 0
    page = page_path.read_text()

    # Self-contained: nothing is fetched from elsewhere (SVG namespaces are names, not fetches).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?https?:|<link\b|<script\b[^>]*\bsrc""",
                         page, re.I)
    plots = re.findall(r'<svg class="plot" data-plot="([^"]+)"', page)
    assert plots == ["success-vs-k", "success-vs-steps", "outcome-strip", "latency-histograms", "loss-curve",
                     "bench-latency"]
    # Failures first.
    order = [int(seed) for seed in re.findall(r"seed (\d+), (?:failure|success)", page)]
    assert order == failures + [success]
    assert page.count('<video controls muted preload="auto" src="data:video/mp4;base64,') == 3

    options = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'chromium'}"]
    url = page_path.as_uri()
    screenshot = tmp_path / "report.png"
    shot = subprocess.run([chromium, *options, f"--screenshot={screenshot}", "--window-size=1200,2400", url],
                          capture_output=True, text=True, timeout=180)
    assert screenshot.exists(), f"chromium wrote no screenshot (status {shot.returncode}): {shot.stderr[-2000:]}"
    print(f"REPORT_SCREENSHOT {screenshot}")
    dump = subprocess.run([chromium, *options, "--virtual-time-budget=10000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=180)
    body = re.search(r"<body([^>]*)>", dump.stdout)
    assert body, f"chromium dumped no DOM (status {dump.returncode}): {dump.stderr[-2000:]}"
    marks = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert marks.get("plots") == str(len(plots)), marks
    assert marks.get("plots-rendered") == str(len(plots)), f"some plots did not render: {marks}"
    assert marks.get("videos") == "3" and marks.get("videos-failed") == "0", marks
    assert marks.get("videos-loaded") == "3", f"the videos did not load: {marks}"

    # The screenshot is the window's size and not blank: it holds the white page and the plots' colours.
    from matplotlib.image import imread
    pixels = imread(screenshot)
    assert pixels.shape[:2] == (2400, 1200)
    assert pixels[..., :3].std() > 0.05
    distinct = {tuple(pixel) for pixel in (pixels[::7, ::7, :3] * 255).round().astype(int).reshape(-1, 3)}
    assert len(distinct) > 200
