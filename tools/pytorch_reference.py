#!/usr/bin/env python3
"""Cross-check flowpolicy checkpoints against PyTorch, and time the same network in PyTorch.

  check:   python tools/pytorch_reference.py check POLICY.safetensors SAMPLE.json [--tolerance 1e-4]
           Rebuilds the ResMLP-FiLM network as a PyTorch module from the checkpoint (the layout the README documents),
           regenerates the same seeded noise as flowpolicy (xoshiro256** seeded by SplitMix64, Box-Muller), integrates
           with the same fixed-step solver and compares with the chunks `flowpolicy sample --json` wrote. Fails when
           they differ by more than the tolerance in normalized action units (the network's own output, [-1, 1] over
           the data's range), the unit in which float32 rounding is the same for every task. A policy with cameras
           loads strictly with its image encoders, and takes the frames `flowpolicy sample --frames-from` named.
  layout:  python tools/pytorch_reference.py layout REFERENCE.safetensors OTHER.safetensors [--weights-tolerance T]
           Fails unless OTHER has REFERENCE's file layout: tensor names, order, dtypes and shapes, the same normalizers
           (bit for bit), metadata and deployment contract, and the same values for every provenance key both carry
           that names the data and the settings. With --weights-tolerance, the network tensors must agree too.
  bench:   python tools/pytorch_reference.py bench [--steps 10] [--threads 1]
           Latency of one chunk at batch 1 and throughput at batch 64 for the reference network, PyTorch on the CPU.

The network, noise, sampling and checkpoint reader are the PyTorch trainer's (clients/python/flowpolicy_torch). Needs
torch, safetensors, numpy and PyYAML (scripts/test_torch.sh makes a virtual environment with them). Not needed by
flowpolicy itself.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from safetensors import safe_open

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "clients", "python"))

from flowpolicy_torch.checkpoint import CheckpointError, load_policy  # noqa: E402 (importable through the path above)
from flowpolicy_torch.data import MinMaxNormalizer  # noqa: E402
from flowpolicy_torch.network import NetworkSizes, ResMLPFiLM  # noqa: E402
from flowpolicy_torch.sampling import integrate, sample_chunks  # noqa: E402

# Provenance keys that name the data and the settings: equal whichever trainer wrote the checkpoint.
SHARED_PROVENANCE = ("dataset", "dataset_hash", "dataset_seeds", "observation_mode", "steps", "seed", "batch_size",
                     "learning_rate")


def normalizers(tensors):
    return tuple(MinMaxNormalizer(tensors[f"normalizer.{name}.min"].numpy(), tensors[f"normalizer.{name}.max"].numpy())
                 for name in ("observation", "action"))


def check(args):
    model, meta, normalizer_tensors = load_policy(args.checkpoint)
    observation_normalizer, action_normalizer = normalizers(normalizer_tensors)
    with open(args.samples, encoding="utf-8") as handle:
        summary = json.load(handle)
    method, steps = summary["solver"].split(" K=")
    steps = int(steps)
    chunks = np.array(summary["chunks"], dtype=np.float32)
    To, Do = int(meta["To"]), int(meta["obs_dim"])
    window = np.array(summary["observationWindow"], dtype=np.float32).reshape(To, Do)
    frames = None
    if "cameras" in meta:  # the frames of one dataset row, repeated over the window, as `flowpolicy sample` took them
        path, row = summary["framesFrom"].rsplit(":", 1)
        with safe_open(path, framework="numpy") as dataset:
            frames = {camera["name"]: np.repeat(dataset.get_slice(f"images.{camera['name']}")[int(row):int(row) + 1],
                                                To, axis=0) for camera in json.loads(meta["cameras"])}
    actions, normalized = sample_chunks(model, observation_normalizer, action_normalizer, window, len(chunks),
                                        summary["seed"], method, steps, frames)
    Da = len(action_normalizer.scale)
    flowpolicy_normalized = action_normalizer.normalize(chunks.reshape(len(chunks), -1, Da)).reshape(chunks.shape)
    difference = np.abs(normalized - flowpolicy_normalized)
    world = np.abs(actions - chunks)
    verdict = "match" if difference.max() <= args.tolerance else "MISMATCH"
    print(f"{len(chunks)} chunks, {method} K={steps}: largest |flowpolicy - pytorch| = {difference.max():.3g} "
          f"normalized (mean {difference.mean():.3g}; tolerance {args.tolerance:g}), {world.max():.3g} in action "
          f"units (action scale {np.abs(chunks).max():.3g}): {verdict}")
    return 0 if verdict == "match" else 1


def read_file(path):
    """(metadata, [(name, dtype, shape)] in file order, {name: tensor})."""
    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    with open(path, "rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    header.pop("__metadata__", None)
    entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
    return metadata, [(name, entry["dtype"], entry["shape"]) for name, entry in entries], tensors


def layout(args):
    reference_metadata, reference_entries, reference_tensors = read_file(args.reference)
    metadata, entries, tensors = read_file(args.other)
    problems = []
    if entries != reference_entries:
        problems.append(f"tensors differ: {args.reference} has {reference_entries}, {args.other} has {entries}")
    if sorted(metadata) != sorted(reference_metadata):
        problems.append(f"metadata keys differ: {sorted(reference_metadata)} against {sorted(metadata)}")
    for key in sorted(set(metadata) & set(reference_metadata) - {"provenance"}):
        if metadata[key] != reference_metadata[key]:
            problems.append(f"metadata {key} differs: {reference_metadata[key]!r} against {metadata[key]!r}")
    reference_provenance = json.loads(reference_metadata.get("provenance", "{}"))
    provenance = json.loads(metadata.get("provenance", "{}"))
    for key in SHARED_PROVENANCE:
        if provenance.get(key) != reference_provenance.get(key):
            problems.append(f"provenance {key} differs: {reference_provenance.get(key)!r} against "
                            f"{provenance.get(key)!r}")
    compared = 0
    for name, _, _ in reference_entries:
        if name not in tensors or name not in reference_tensors:
            continue
        if name.startswith("normalizer."):
            if not torch.equal(tensors[name], reference_tensors[name]):
                problems.append(f"{name} differs")
        elif args.weights_tolerance is not None:
            largest = (tensors[name] - reference_tensors[name]).abs().max().item()
            compared += 1
            if largest > args.weights_tolerance:
                problems.append(f"{name} differs by up to {largest:.3g} (tolerance {args.weights_tolerance:g})")
    weights = f", {compared} network tensors within {args.weights_tolerance:g}" if compared else ""
    for problem in problems:
        print(f"layout: {problem}")
    print(f"{args.other} against {args.reference}: {len(entries)} tensors, {len(metadata)} metadata keys{weights}: "
          f"{'same layout' if not problems else f'{len(problems)} differences'}")
    return 0 if not problems else 1


def bench(args):
    torch.set_num_threads(args.threads)
    model = ResMLPFiLM(NetworkSizes(chunk_dimensions=32, observation_dimensions=10, hidden=512, blocks=4)).eval()
    o1, x1 = torch.zeros(1, 10), torch.randn(1, 32)
    with torch.inference_mode():
        for _ in range(20):
            integrate(model, x1, o1, "euler", args.steps)
        latencies = []
        for _ in range(args.iterations):
            start = time.perf_counter()
            integrate(model, x1, o1, "euler", args.steps)
            latencies.append((time.perf_counter() - start) * 1000)
        latencies.sort()
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        o64, x64 = torch.zeros(64, 10), torch.randn(64, 32)
        integrate(model, x64, o64, "euler", args.steps)
        repeats = 10
        start = time.perf_counter()
        for _ in range(repeats):
            integrate(model, x64, o64, "euler", args.steps)
        rate = repeats * 64 / (time.perf_counter() - start)
    print(f"pytorch {torch.__version__} cpu, {args.threads} thread(s), reference network, euler K={args.steps}: "
          f"batch 1 p50 {p50:.3f} ms p99 {p99:.3f} ms; batch 64 {rate:.0f} chunks/s")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("check")
    c.add_argument("checkpoint")
    c.add_argument("samples")
    c.add_argument("--tolerance", type=float, default=1e-4,
                   help="Largest difference allowed, in normalized action units. (default: %(default)s)")
    c.set_defaults(run=check)
    lay = commands.add_parser("layout")
    lay.add_argument("reference")
    lay.add_argument("other")
    lay.add_argument("--weights-tolerance", type=float,
                     help="Also compare the network tensors, to this largest difference.")
    lay.set_defaults(run=layout)
    b = commands.add_parser("bench")
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--iterations", type=int, default=200)
    b.set_defaults(run=bench)
    args = parser.parse_args()
    try:
        sys.exit(args.run(args))
    except (CheckpointError, OSError, ValueError) as error:
        sys.exit(f"error: {error}")
    except KeyError as error:
        sys.exit(f"error: {error} is missing: give a flowpolicy checkpoint and a `flowpolicy sample --json` report")


if __name__ == "__main__":
    main()
