"""Reading flowpolicy's JSON reports and telling their kinds apart.

Four kinds are understood, each recognised by the keys it always has:

- an evaluation (`flowpolicy eval|merge --json`): `results` (one outcome per seed) and `success` (successes, trials,
  rate and its 95% Wilson interval low/high); K is `solverSteps`, the latency per chunk an HDR histogram
  `chunkLatency` {"unit": "ns", "counts": [[value, count], ...]} (older reports: only the summary
  `inferenceLatencyMilliseconds`); optional `videos` [{"seed", "success", "file"}], files relative to the report;
  Push-T's `diffusionPolicyScore` {"mean", "low", "high", "count"} (older reports: computed from the episodes' max
  coverage); the conditions `observationNoise` (σ, 0: none) and `observationNoiseSeed`, `disturbance` {"step", ...}
  (absent or null: no push) and `precision` (fp32, bf16, int8; absent: fp32);
- a merged campaign (`flowpolicy campaign merge`, DIR/campaign.json): `campaign` and `rows` [{checkpoint, steps (K),
  handOver, report (an evaluation)}];
- a training run (`flowpolicy train|finetune --json`, flowpolicy_torch): `steps`, `dataset` and `finalLoss` or
  `lossCurve` [[step, loss], ...];
- a benchmark (`flowpolicy bench infer|env|loop|serve --json`): latency summaries and throughputs.

Anything else is refused with a ReportError naming the file and what was expected.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path


class ReportError(Exception):
    """A report that cannot be read or is of no known kind; the message names the file."""


EXPECTED_KINDS = ("an evaluation (keys results and success), a merged campaign (campaign and rows), a training run "
                  "(steps, dataset and finalLoss or lossCurve) or a benchmark (flowpolicy bench ... --json)")

# `swift-30k.step10000.safetensors`, `fm-dp-80k.step40000.safetensors`: the intermediate checkpoints `train` writes.
STEP_IN_NAME = re.compile(r"[._-]step(\d+)(?=\.|$)")

# Tasks scored by Diffusion Policy's Push-T score, with the coverage at which their reward reaches 1 (task.yaml's
# `environment.success_coverage`, which is how flowpolicy itself tells them: `diffusionPolicyScoreCoverage`).
SUCCESS_COVERAGE = {"pusht": 0.95, "pusht_image": 0.95}


@dataclass
class Video:
    seed: int
    success: bool
    path: Path


@dataclass
class Estimate:
    """A mean with its 95% interval (flowpolicy's MeanEstimate)."""
    mean: float
    low: float
    high: float


@dataclass
class Evaluation:
    """One evaluation: a report file, or one row of a merged campaign."""
    source: str  # the file, and for a campaign row which row
    task: str
    policy: str
    checkpoint: str | None
    solver_steps: int | None  # K
    hand_over: str | None
    successes: int
    trials: int
    rate: float
    low: float
    high: float
    results: list  # per seed: seed, success, maxProgress, steps, ...
    progress_name: str
    chunk_latency_ns: list  # [(value, count)], empty when the report has no histogram
    latency_summary_ms: dict | None
    training_steps: int | None
    videos: list = field(default_factory=list)
    observation_noise: float = 0.0
    observation_noise_seed: int | None = None  # None: the policy seed
    disturbance_step: int | None = None  # the control step of the push, None: no push
    precision: str | None = None  # a checkpoint's inference precision; None: not recorded (fp32)
    diffusion_policy_score: Estimate | None = None  # Push-T only
    diffusion_policy_score_missing: str | None = None  # why a Push-T report has no score

    @property
    def conditions(self):
        """What the evaluation ran under besides the plain setting, e.g. `noise σ 2, push at step 30, int8`; empty
        for none (no observation noise, no push, fp32)."""
        parts = []
        if self.observation_noise > 0:
            seed = self.observation_noise_seed
            parts.append(f"noise σ {self.observation_noise:g}" + (f" (seed {seed})" if seed is not None else ""))
        if self.disturbance_step is not None:
            parts.append(f"push at step {self.disturbance_step}")
        if self.precision not in (None, "fp32"):
            parts.append(self.precision)
        return ", ".join(parts)

    @property
    def push_t(self):
        """Whether the task is scored by Diffusion Policy's Push-T score."""
        return self.task in SUCCESS_COVERAGE or self.diffusion_policy_score is not None

    @property
    def checkpoint_name(self):
        """`policy.safetensors` -> `policy`; the scripted expert and served policies keep their policy name."""
        if not self.checkpoint:
            return self.policy
        name = Path(self.checkpoint).name
        return name[:-len(".safetensors")] if name.endswith(".safetensors") else name

    @property
    def run_name(self):
        """The training run a checkpoint belongs to: the name without its `.stepN` part."""
        return STEP_IN_NAME.sub("", self.checkpoint_name)

    @property
    def label(self):
        k = f", K={self.solver_steps}" if self.solver_steps is not None else ""
        return f"{self.checkpoint_name}{k}"


@dataclass
class Training:
    source: str
    task: str | None
    method: str | None
    trainer: str
    checkpoint: str | None  # the checkpoint written
    steps: int
    first_loss: float | None
    final_loss: float | None
    loss_curve: list  # [(step, loss)], empty when the report has none
    seconds: float | None
    samples_per_second: float | None


@dataclass
class Benchmark:
    source: str
    kind: str  # infer, env, loop or serve
    title: str
    figures: list  # [(name, value text)]
    latencies: list  # [(name, {"p50": ms, "p99": ms, "p999": ms, "max": ms, "mean": ms})]


@dataclass
class Reports:
    evaluations: list = field(default_factory=list)
    trainings: list = field(default_factory=list)
    benchmarks: list = field(default_factory=list)
    campaigns: list = field(default_factory=list)  # (file, campaign settings)


def file_name(source):
    """A report's file name for tables and notes; a campaign row's keeps its `(row N)`."""
    path, row, number = source.partition(" (row ")
    return Path(path).name + row + number


def read_reports(paths):
    """Reads and classifies every file; the first one that is not a report raises ReportError."""
    reports = Reports()
    for path in paths:
        document = _read_json(Path(path))
        source = str(path)
        if _has(document, "campaign", "rows"):
            reports.campaigns.append((source, document["campaign"]))
            rows = document["rows"]
            if not isinstance(rows, list):
                raise ReportError(f"{source}: rows must be a list of campaign rows, got {type(rows).__name__}")
            for index, row in enumerate(rows):
                reports.evaluations.append(_campaign_row(row, index, source, Path(path).parent))
        elif _has(document, "results", "success"):
            reports.evaluations.append(_evaluation(document, source, Path(path).parent))
        elif _has(document, "steps", "dataset") and ("finalLoss" in document or "lossCurve" in document):
            reports.trainings.append(_training(document, source))
        elif (benchmark := _benchmark(document, source)) is not None:
            reports.benchmarks.append(benchmark)
        else:
            keys = ", ".join(sorted(document)[:12]) + (", ..." if len(document) > 12 else "")
            raise ReportError(f"{source}: not a flowpolicy report of a known kind (it has {keys or 'no keys'}); "
                              f"expected {EXPECTED_KINDS}")
    _steps_from_trainings(reports)
    return reports


def _read_json(path):
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a folder; give the report files (e.g. {path}/*.json)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot be read ({error})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not JSON (line {error.lineno}, column {error.colno}: {error.msg}); expected "
                          f"{EXPECTED_KINDS}") from None
    if not isinstance(document, dict):
        raise ReportError(f"{path}: a JSON {type(document).__name__}, not an object; expected {EXPECTED_KINDS}")
    return document


def _has(document, *keys):
    return all(key in document for key in keys)


def _number(document, key, source, kind=float, required=True):
    value = document.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReportError(f"{source}: {key} must be a number, got {json.dumps(value)}")
    return kind(value)


def _evaluation(document, source, folder, solver_steps=None, hand_over=None, checkpoint=None):
    success = document["success"]
    if not isinstance(success, dict) or not _has(success, "successes", "trials"):
        raise ReportError(f"{source}: success must be an object with successes, trials, rate, low and high, got "
                          f"{json.dumps(success)[:80]}")
    successes = _number(success, "successes", f"{source}: success", int)
    trials = _number(success, "trials", f"{source}: success", int)
    rate = successes / trials if trials else math.nan
    if _has(success, "low", "high"):
        low, high = _number(success, "low", f"{source}: success"), _number(success, "high", f"{source}: success")
    else:
        low, high = wilson(successes, trials)
    results = document["results"]
    if not isinstance(results, list) or not all(isinstance(r, dict) and "seed" in r and "success" in r
                                                for r in results):
        raise ReportError(f"{source}: results must be a list of per-seed outcomes with seed and success")
    checkpoint = checkpoint or document.get("checkpoint")
    task = str(document.get("task", "?"))
    score, missing = _diffusion_policy_score(document, task, results, source)
    return Evaluation(
        source=source, task=task, policy=str(document.get("policy", "?")),
        checkpoint=checkpoint,
        solver_steps=solver_steps if solver_steps is not None else _number(document, "solverSteps", source, int,
                                                                           required=False),
        hand_over=hand_over or document.get("handOver"),
        successes=successes, trials=trials, rate=rate, low=float(low), high=float(high), results=results,
        progress_name=str(document.get("progressName", "progress")),
        chunk_latency_ns=_histogram(document.get("chunkLatency"), source),
        latency_summary_ms=document.get("inferenceLatencyMilliseconds"),
        training_steps=_training_steps(document, checkpoint, source),
        videos=_videos(document.get("videos"), source, folder),
        observation_noise=_number(document, "observationNoise", source, required=False) or 0.0,
        observation_noise_seed=_number(document, "observationNoiseSeed", source, int, required=False),
        disturbance_step=_disturbance_step(document.get("disturbance"), source),
        precision=_precision(document.get("precision"), source),
        diffusion_policy_score=score, diffusion_policy_score_missing=missing)


def _diffusion_policy_score(document, task, results, source):
    """Diffusion Policy's Push-T score and, when there is none for a Push-T report, why: the report's own
    `diffusionPolicyScore` when it has one, else (as `flowpolicy report scores`) the mean of min(max coverage / 0.95,
    1) over the episodes it lists, provided it lists every episode with its max coverage. (None, None) for other
    tasks."""
    stored = document.get("diffusionPolicyScore")
    if stored is not None:
        where = f"{source}: diffusionPolicyScore"
        if not isinstance(stored, dict):
            raise ReportError(f"{where} must be an object with mean, low and high, got {json.dumps(stored)[:80]}")
        return Estimate(_number(stored, "mean", where), _number(stored, "low", where),
                        _number(stored, "high", where)), None
    coverage = SUCCESS_COVERAGE.get(task)
    if coverage is None:
        return None, None
    episodes = document.get("episodes", len(results))
    if not results or len(results) != episodes:
        return None, "the report lists no episodes, so no per-episode max coverage"
    coverages = [r.get("maxProgress") for r in results]
    if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coverages):
        return None, "the report does not record each episode's max coverage"
    return _mean_estimate([min(max(c / coverage, 0.0), 1.0) for c in coverages], bounds=(0.0, 1.0)), None


def _mean_estimate(values, bounds=(-math.inf, math.inf), z=1.959963984540054):
    """The mean of `values` with its 95% interval as flowpolicy computes it (normal approximation, sample standard
    deviation), clipped to `bounds`."""
    n = len(values)
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    half = z * math.sqrt(variance / n)
    return Estimate(mean, max(mean - half, bounds[0]), min(mean + half, bounds[1]))


def _disturbance_step(value, source):
    """The control step of an eval's push: `disturbance` is {"step", "push", "disturbedEpisodes"}; None when there
    was none."""
    if value is None:
        return None
    step = value.get("step") if isinstance(value, dict) else None
    if isinstance(step, bool) or not isinstance(step, int):
        raise ReportError(f"{source}: disturbance must be an object with the push's step, got "
                          f"{json.dumps(value)[:80]}")
    return step


def _precision(value, source):
    if value is not None and not isinstance(value, str):
        raise ReportError(f"{source}: precision must be fp32, bf16 or int8, got {json.dumps(value)[:80]}")
    return value


def _campaign_row(row, index, source, folder):
    where = f"{source} (row {index + 1})"
    if not (isinstance(row, dict) and _has(row, "checkpoint", "steps", "report") and isinstance(row["report"], dict)):
        raise ReportError(f"{where}: a campaign row needs checkpoint, steps (K) and report (a merged evaluation)")
    if not _has(row["report"], "results", "success"):
        raise ReportError(f"{where}: its report is not an evaluation (it needs results and success)")
    return _evaluation(row["report"], where, folder, solver_steps=_number(row, "steps", where, int),
                       hand_over=row.get("handOver"), checkpoint=row["checkpoint"])


def wilson(successes, trials, z=1.959963984540054):
    """The 95% Wilson score interval, as flowpolicy computes it (for reports that lack low and high)."""
    if trials <= 0:
        return math.nan, math.nan
    n, p = float(trials), successes / trials
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def _histogram(value, source):
    if value is None:
        return []
    if not isinstance(value, dict) or value.get("unit") != "ns" or not isinstance(value.get("counts"), list):
        raise ReportError(f"{source}: chunkLatency must be {{\"unit\": \"ns\", \"counts\": [[value, count], ...]}}")
    pairs = []
    for pair in value["counts"]:
        if (not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(x, int) and x >= 0 for x in pair)):
            raise ReportError(f"{source}: chunkLatency counts must be pairs of whole numbers, got {json.dumps(pair)}")
        pairs.append((pair[0], pair[1]))
    return pairs


def _training_steps(document, checkpoint, source):
    """The training steps of the evaluated checkpoint: recorded in the report (its provenance), else read from an
    intermediate checkpoint's name (`run.step10000.safetensors`); None when neither says."""
    for key in ("checkpointSteps", "trainingSteps"):
        if document.get(key) is not None:
            return _number(document, key, source, int)
    for key in ("checkpointProvenance", "provenance"):
        provenance = document.get(key)
        if isinstance(provenance, dict) and provenance.get("steps") is not None:
            try:
                return int(provenance["steps"])
            except (TypeError, ValueError):
                raise ReportError(f"{source}: {key}.steps must be a whole number, got "
                                  f"{json.dumps(provenance['steps'])}") from None
    match = STEP_IN_NAME.search(Path(checkpoint).name) if checkpoint else None
    return int(match.group(1)) if match else None


def _steps_from_trainings(reports):
    """A final checkpoint's steps come from the training report that wrote it, when that report is given too."""
    written = {}
    for training in reports.trainings:
        if training.checkpoint:
            written[Path(training.checkpoint).name] = training.steps
    for evaluation in reports.evaluations:
        if evaluation.training_steps is None and evaluation.checkpoint:
            evaluation.training_steps = written.get(Path(evaluation.checkpoint).name)


def _videos(value, source, folder):
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError(f"{source}: videos must be a list of {{seed, success, file}}")
    videos = []
    for entry in value:
        if not isinstance(entry, dict) or not _has(entry, "seed", "success", "file"):
            raise ReportError(f"{source}: each video needs seed, success and file, got {json.dumps(entry)[:80]}")
        path = Path(entry["file"])
        videos.append(Video(seed=int(entry["seed"]), success=bool(entry["success"]),
                            path=path if path.is_absolute() else folder / path))
    return videos


def _training(document, source):
    curve = document.get("lossCurve") or []
    if not isinstance(curve, list) or not all(
            isinstance(point, list) and len(point) == 2 and all(isinstance(x, (int, float)) for x in point)
            for point in curve):
        raise ReportError(f"{source}: lossCurve must be a list of [step, loss] pairs")
    trainer = document.get("trainer") or ("flowpolicy finetune" if "mode" in document else "flowpolicy train")
    return Training(
        source=source, task=document.get("task"), method=document.get("method") or document.get("mode"),
        trainer=str(trainer), checkpoint=document.get("output") or document.get("checkpoint"),
        steps=_number(document, "steps", source, int),
        first_loss=_number(document, "firstLoss", source, required=False),
        final_loss=_number(document, "finalLoss", source, required=False),
        loss_curve=[(float(step), float(loss)) for step, loss in curve],
        seconds=_number(document, "seconds", source, required=False),
        samples_per_second=_number(document, "samplesPerSecond", source, required=False))


# Benchmarks: the figures worth a line, and the latency summaries worth a plot.
INFER_FIGURES = (("chunks/s, one thread", "chunksPerSecondOneThread", ""),
                 ("chunks/s, all threads", "chunksPerSecondAllThreads", ""),
                 ("GFLOP/s, one thread", "gflopsOneThread", ""),
                 ("p50 over the memory floor", "p50OverFloor", "x"),
                 ("allocations per call", "allocationsPerCall", ""),
                 ("training samples/s", "trainingSamplesPerSecond", ""))
ENV_FIGURES = (("steps/s per core", "stepsPerSecondPerCore", ""),
               ("physics steps/s per core", "physicsStepsPerSecondPerCore", ""),
               ("allocations per step", "allocationsPerStep", ""),
               ("reference", "reference", ""),
               ("reference steps/s", "referenceStepsPerSecond", ""))
LOOP_FIGURES = (("missed loop deadlines", "missedLoopDeadlines", ""),
                ("missed inference deadlines", "missedInferenceDeadlines", ""),
                ("chunks", "chunks", ""),
                ("ticks", "ticks", ""))
LOOP_LATENCIES = (("inference", "inferenceLatency"),
                  ("observation to action", "observationToAction"),
                  ("wake jitter", "wakeJitter"))


def _benchmark(document, source):
    """A Benchmark for the reports of `flowpolicy bench infer|env|loop|serve --json`, None for anything else."""
    if _has(document, "latencyMilliseconds", "chunksPerSecondOneThread"):
        title = f"bench infer: {document.get('network', '?')}, {document.get('solver', '?')} K={document.get('steps')}"
        latencies = [("chunk (one call)", _summary(document["latencyMilliseconds"]))]
        return Benchmark(source, "infer", title, _figures(document, INFER_FIGURES), _present(latencies))
    if _has(document, "stepsPerSecondPerCore", "controlSteps"):
        return Benchmark(source, "env", f"bench env: {document.get('task', '?')}", _figures(document, ENV_FIGURES),
                         [])
    if _has(document, "loop", "rateHz") and isinstance(document["loop"], dict):
        loop = document["loop"]
        title = (f"bench loop: {document.get('task', '?')} at {_format(document['rateHz'], ' Hz')}, policy at "
                 f"{_format(document.get('policyRateHz'), ' Hz')}, {document.get('solver', '?')} "
                 f"K={document.get('steps')}")
        latencies = [(name, _summary(loop.get(key), scale=1e-3, suffix="Microseconds"))
                     for name, key in LOOP_LATENCIES]
        figures = _figures(loop, LOOP_FIGURES) + _figures(document, (("allocations per period",
                                                                      "allocationsPerPeriod", ""),))
        return Benchmark(source, "loop", title, figures, _present(latencies))
    if _has(document, "results", "inferenceMilliseconds") and isinstance(document["results"], list):
        title = f"bench serve: {document.get('solver', '?')} K={document.get('steps')}"
        latencies = [("server inference", _summary(document["inferenceMilliseconds"]))]
        figures = []
        for row in document["results"]:
            clients = row.get("clients", "?") if isinstance(row, dict) else "?"
            latencies.append((f"round trip, {clients} client(s)", _summary(row.get("roundTripMilliseconds"))))
            figures += _figures(row, ((f"requests/s, {clients} client(s)", "requestsPerSecond", ""),))
        return Benchmark(source, "serve", title, figures, _present(latencies))
    return None


def _summary(value, scale=1.0, suffix=""):
    """{p50, p99, p999, max, mean} in milliseconds from a latency summary, or None when it is not one."""
    if not isinstance(value, dict):
        return None
    picked = {name: value.get(name + suffix) for name in ("p50", "p99", "p999", "max", "mean")}
    if any(isinstance(number, bool) or not isinstance(number, (int, float)) for number in picked.values()):
        return None
    return {name: number * scale for name, number in picked.items()}


def _present(latencies):
    return [(name, summary) for name, summary in latencies if summary]


def _figures(document, wanted):
    return [(name, _format(document[key], unit)) for name, key, unit in wanted if key in document]


def _format(value, unit):
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}{unit}"
    if isinstance(value, float):
        return f"{value:,.0f}{unit}" if abs(value) >= 100 else f"{value:.3g}{unit}"
    return f"{value}{unit}"
