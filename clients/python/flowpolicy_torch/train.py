"""Train a conditional flow-matching policy on a flowpolicy dataset with PyTorch and write its flowpolicy checkpoint.

The PyTorch counterpart of `flowpolicy train` (method fm): the same ResMLP-FiLM network, normalizers, loss, AdamW
settings, warm-up + cosine schedule, gradient clipping and EMA, and the same checkpoint (EMA weights, tensor layout,
metadata, provenance and the deployment contract of the dataset's task), which `flowpolicy eval`, `serve` and `run`
load unchanged. Options take `flowpolicy train`'s names and defaults.

Runs as one process, or data-parallel under torchrun (DistributedDataParallel over gloo on the CPU, NCCL on GPUs):

    torchrun --standalone --nproc_per_node 2 -m flowpolicy_torch.train --dataset D --out C --steps N

--batch-size is the global batch, as in `flowpolicy train`: each step the ranks split it between them, so a step sees
the same number of samples whatever the number of processes. --threads is PyTorch's threads per process. Only rank 0
writes files. The horizons come from the dataset's task (its task.yaml; 1/1/1 for toy-mixture), Diffusion Policy's
2/8/16 for data of no simulated task.
"""

import argparse
import json
import os
import shlex
import sys
import time

import numpy as np
import torch
import torch.distributed as dist

from flowpolicy_data.dataset import DataError, atomic_file, check_output_file, read_dataset

from .checkpoint import swift_float, write_checkpoint
from .contract import ContractError, deployment_contract, task_horizons
from .data import MinMaxNormalizer, TrainingPairs, content_hash
from .network import NetworkSizes
from .optimizer import TrainingConfiguration
from .trainer import FlowMatchingTrainer, NonFiniteLoss


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m flowpolicy_torch.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = TrainingConfiguration()
    parser.add_argument("--dataset", required=True,
                        help="Dataset file (from `flowpolicy collect`, or any file in the same layout).")
    parser.add_argument("--out", required=True, help="Checkpoint file to write.")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="Optimization steps. (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help="Global batch size, split across the processes. (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=defaults.learning_rate,
                        help="Peak learning rate (AdamW, cosine schedule). (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=defaults.warmup_steps,
                        help="Warm-up steps of the learning-rate schedule. (default: %(default)s)")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                        help="AdamW weight decay. (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=256,
                        help="Hidden width H of the ResMLP-FiLM network. (default: %(default)s)")
    parser.add_argument("--depth", type=int, default=4, help="Residual blocks per network. (default: %(default)s)")
    parser.add_argument("--time-embedding", type=int, default=64,
                        help="Size of the sinusoidal time embedding. (default: %(default)s)")
    parser.add_argument("--obs-steps", type=int, help="To: observations in the window (default: the task's).")
    parser.add_argument("--action-steps", type=int, help="Ta: actions executed per chunk (default: the task's).")
    parser.add_argument("--prediction-steps", type=int,
                        help="Tp: actions predicted per chunk (default: the task's).")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="Random seed (weights as `flowpolicy train` draws them; each process's batches and "
                             "noise from its own stream of it). (default: %(default)s)")
    parser.add_argument("--threads", type=int,
                        help="PyTorch threads per process (default: the cores divided among the processes on this "
                             "machine).")
    parser.add_argument("--save-every", type=int,
                        help="Also save the EMA weights every N steps (out.stepN.safetensors).")
    parser.add_argument("--json", help="Also write the report as JSON to this path.")
    arguments = parser.parse_args(argv)
    checks = [("--steps", arguments.steps, 1, 100_000_000), ("--batch-size", arguments.batch_size, 1, 16_384),
              ("--warmup", arguments.warmup, 0, 100_000_000), ("--hidden", arguments.hidden, 1, 2048),
              ("--depth", arguments.depth, 1, 64), ("--obs-steps", arguments.obs_steps, 1, 1000),
              ("--action-steps", arguments.action_steps, 1, 1000),
              ("--prediction-steps", arguments.prediction_steps, 1, 1000),
              ("--seed", arguments.seed, 0, 2 ** 64 - 1), ("--threads", arguments.threads, 1, 256),
              ("--save-every", arguments.save_every, 1, 100_000_000)]
    for name, value, low, high in checks:
        if value is not None and not low <= value <= high:
            parser.error(f"{name} must be in {low}...{high}, got {value}")
    if not 0 < arguments.lr < 1:
        parser.error(f"--lr must be above 0 and below 1, got {arguments.lr}")
    if not 0 <= arguments.weight_decay <= 1:
        parser.error(f"--weight-decay must be in 0...1, got {arguments.weight_decay}")
    if not (2 <= arguments.time_embedding <= 1024 and arguments.time_embedding % 2 == 0):
        parser.error(f"--time-embedding must be an even number in 2...1024, got {arguments.time_embedding}")
    return arguments


class ProgressBar:
    """`flowpolicy train`'s progress line on standard error: redrawn in place on a terminal, one line per tenth of
    the run otherwise (logs)."""

    def __init__(self, title, total, unit):
        self.title, self.total, self.unit = title, max(total, 1), unit
        self.interactive = sys.stderr.isatty()
        self.start = time.monotonic()
        self.last_draw = -1.0
        self.last_decile = -1

    def update(self, completed, status):
        now = time.monotonic()
        if self.interactive:
            if now - self.last_draw >= 0.1 or completed >= self.total:
                self.last_draw = now
                sys.stderr.write("\r\033[K" + self.line(completed, status))
                sys.stderr.flush()
        elif completed * 10 // self.total > self.last_decile:
            self.last_decile = completed * 10 // self.total
            sys.stderr.write(self.line(completed, status) + "\n")
            sys.stderr.flush()

    def finish(self):
        if self.interactive:
            sys.stderr.write("\n")

    def line(self, completed, status):
        elapsed = time.monotonic() - self.start
        filled = int(24 * min(completed, self.total) / self.total)
        rate = completed / elapsed if elapsed > 0 else 0
        remaining = (self.total - completed) / rate if rate > 0 else 0
        rate_text = f"{rate:.0f}" if rate >= 10 else f"{rate:.2f}"
        return (f"{self.title} {'█' * filled}{'·' * (24 - filled)} {completed}/{self.total} "
                f"[{format_duration(elapsed)}<{format_duration(remaining)}, {rate_text} {self.unit}/s] {status}")


def format_duration(seconds):
    """`1h02m`, `3m05s`, `12.3s`, as flowpolicy prints durations."""
    if seconds >= 3600:
        return f"{int(seconds) // 3600}h{int(seconds) % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"
    return f"{seconds:.1f}s"


def intermediate_path(path, step):
    """`policy.safetensors` -> `policy.step5000.safetensors`."""
    folder, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    return os.path.join(folder, f"{stem}.step{step}{extension or '.safetensors'}")


def start_processes():
    """(rank, world size, device, backend) of this process; joins the torchrun group when there is one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    backend = None
    if world_size > 1:
        backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend=backend)
    return rank, world_size, device, backend


def run(arguments, rank, world_size, device, backend):
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = arguments.threads or max(1, len(os.sched_getaffinity(0)) // local_processes)
    torch.set_num_threads(threads)
    started = time.monotonic()

    dataset = read_dataset(arguments.dataset)
    if dataset.images:
        raise DataError(f"{arguments.dataset} holds camera frames ({', '.join(dataset.images)}); this trainer takes "
                        "low-dimensional datasets only: train image policies with `flowpolicy train`")
    check_output_file(arguments.out)
    if arguments.json:
        check_output_file(arguments.json)
    task = dataset.metadata.get("task", "unknown")
    To, Ta, Tp = task_horizons(task)
    spec = {"task": task, "To": arguments.obs_steps or To, "Ta": arguments.action_steps or Ta,
            "Tp": arguments.prediction_steps or Tp, "obs_dim": dataset.obs.shape[1],
            "action_dim": dataset.action.shape[1]}
    observation_mode = dataset.metadata.get("observation_mode")
    contract = deployment_contract(task, observation_mode, spec["obs_dim"], spec["action_dim"])
    observation_normalizer = MinMaxNormalizer.fitting(dataset.obs)
    action_normalizer = MinMaxNormalizer.fitting(dataset.action)
    pairs = TrainingPairs(dataset, observation_normalizer, action_normalizer, spec["To"], spec["Ta"], spec["Tp"],
                          device)
    sizes = NetworkSizes(chunk_dimensions=spec["Tp"] * spec["action_dim"],
                         observation_dimensions=spec["To"] * spec["obs_dim"], hidden=arguments.hidden,
                         blocks=arguments.depth, time_embedding=arguments.time_embedding)
    configuration = TrainingConfiguration(
        steps=arguments.steps, batch_size=arguments.batch_size, learning_rate=arguments.lr,
        weight_decay=arguments.weight_decay, warmup_steps=arguments.warmup, seed=arguments.seed)
    trainer = FlowMatchingTrainer(sizes, pairs, configuration, rank, world_size, device)
    stream_seeds = [0] * world_size
    if backend is not None:
        dist.all_gather_object(stream_seeds, trainer.stream_seed)
    else:
        stream_seeds = [trainer.stream_seed]

    launcher = (f"torchrun --nproc_per_node {world_size} -m flowpolicy_torch.train" if backend
                else "python -m flowpolicy_torch.train")
    provenance = {"dataset": arguments.dataset, "command": f"{launcher} {shlex.join(sys.argv[1:])}",
                  "threads": str(threads * world_size), "trainer": f"pytorch {torch.__version__}",
                  "processes": f"{world_size} ({backend or 'single process'}, {device.type})",
                  "stream_seeds": ",".join(str(s) for s in stream_seeds)}
    for key, name in (("dataset_seeds", "seeds"), ("observation_mode", "observation_mode")):
        if name in dataset.metadata:
            provenance[key] = dataset.metadata[name]
    if rank == 0:
        provenance["dataset_hash"] = content_hash(dataset)
    provenance.update({"steps": str(configuration.steps), "seed": str(configuration.seed),
                       "batch_size": str(configuration.batch_size),
                       "learning_rate": swift_float(configuration.learning_rate)})

    def checkpoint(path, step, seconds):
        provenance["train_seconds"] = f"{seconds:.1f}"
        provenance["steps"] = str(step)
        write_checkpoint(path, sizes, trainer.average.average, observation_normalizer, action_normalizer, spec,
                         provenance, contract)

    if backend is not None:
        dist.barrier()  # rank 0 hashed the dataset; time the training from here on every rank
    start = time.monotonic()
    startup_seconds = start - started
    progress = ProgressBar("train fm", configuration.steps, "step") if rank == 0 else None
    first_loss, smoothed, recent = None, None, []
    window = max(1, configuration.steps // 100)
    # [step, mean loss since the previous point], about 200 points, as `flowpolicy train` reports it.
    loss_curve, curve_interval, curve_sum = [], max(1, configuration.steps // 200), 0.0
    for step in range(1, configuration.steps + 1):
        loss = trainer.train_step()
        if rank != 0:
            continue
        first_loss = loss if first_loss is None else first_loss
        smoothed = loss if smoothed is None else 0.98 * smoothed + 0.02 * loss
        if step > configuration.steps - window:
            recent.append(loss)
        curve_sum += loss
        if step % curve_interval == 0 or step == configuration.steps:
            loss_curve.append([step, curve_sum / (step % curve_interval or curve_interval)])
            curve_sum = 0.0
        progress.update(step, f"loss {smoothed:.4f}")
        if arguments.save_every and step % arguments.save_every == 0 and step < configuration.steps:
            checkpoint(intermediate_path(arguments.out, step), step, time.monotonic() - start)
    seconds = time.monotonic() - start
    if rank != 0:
        return None
    progress.finish()
    checkpoint(arguments.out, configuration.steps, seconds)
    parameters = sum(p.numel() for p in trainer.model.parameters())
    summary = {
        "dataset": arguments.dataset, "datasetHash": provenance["dataset_hash"],
        "datasetSeeds": dataset.metadata.get("seeds"), "episodes": dataset.episode_count,
        "trainingPairs": len(pairs), "checkpoint": arguments.out, "task": task, "method": "fm",
        "observationSteps": spec["To"], "actionSteps": spec["Ta"], "predictionSteps": spec["Tp"],
        "parameters": parameters, "steps": configuration.steps, "batchSize": configuration.batch_size,
        "seed": configuration.seed, "streamSeeds": stream_seeds, "threads": threads * world_size,
        "threadsPerProcess": threads, "processes": world_size, "backend": backend or "none",
        "device": device.type, "trainer": f"pytorch {torch.__version__}", "firstLoss": first_loss,
        "finalLoss": float(np.mean(recent)), "seconds": seconds, "startupSeconds": startup_seconds,
        "samplesPerSecond": configuration.steps * configuration.batch_size / seconds, "lossCurve": loss_curve,
    }
    print(f"trained {task} fm policy with PyTorch: {parameters} parameters, To={spec['To']} Ta={spec['Ta']} "
          f"Tp={spec['Tp']}\n"
          f"  data      {dataset.episode_count} episodes, {len(pairs)} training pairs ({summary['datasetHash']})\n"
          f"  steps     {configuration.steps} x batch {configuration.batch_size}, seed {configuration.seed}, "
          f"{world_size} processes ({backend or 'single'}, {device.type}) x {threads} threads\n"
          f"  loss      {first_loss:.4f} -> {summary['finalLoss']:.4f}\n"
          f"  time      {format_duration(seconds)} ({summary['samplesPerSecond']:.0f} samples/s; start-up "
          f"{format_duration(startup_seconds)})\n"
          f"wrote {arguments.out}", flush=True)
    if arguments.json:
        with atomic_file(arguments.json) as temporary:
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(summary, handle, indent=2, sort_keys=True)
                handle.write("\n")
    return summary


def main(argv=None):
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    rank, world_size, device, backend = start_processes()
    status = 0
    try:
        run(arguments, rank, world_size, device, backend)
        if backend is not None:
            # Leave together: a rank tearing its process group down while rank 0 still writes can abort in gloo.
            dist.barrier()
    except (DataError, ContractError, NonFiniteLoss, ValueError) as error:
        # Every rank meets the same error (they read the same files and reduce the same loss): one report is enough.
        if rank == 0:
            print(f"error: {error}", file=sys.stderr)
        status = 1
    finally:
        if backend is not None and dist.is_initialized():
            dist.destroy_process_group()
    if backend is not None:
        # Everything is written and synced. Leave without running C++ static destructors: in about 1 of 40 runs on
        # 2 loaded cores, torch 2.15's exit-time teardown aborted a rank ("terminate called without an active
        # exception", no Python frame) after the process group was destroyed, failing a finished training.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
