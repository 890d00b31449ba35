"""tools/bench_onnx_reference.py builds flowpolicy's velocity network as an ONNX graph: ONNX Runtime's fp32 chunks must
be flowpolicy's (`flowpolicy sample --json` on the shipped Push-T policy, same seeded noise) to 1e-4 in normalized
action units, a network that differs by one weight must fail that check, a policy with cameras is refused in one line,
and `bench` reports every precision. The flowpolicy binary comes from FLOWPOLICY_BIN (default .build/release)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

REPOSITORY = Path(__file__).resolve().parents[3]
FLOWPOLICY = str(REPOSITORY / os.environ.get("FLOWPOLICY_BIN", ".build/release") / "flowpolicy")
TOOL = str(REPOSITORY / "tools" / "bench_onnx_reference.py")
POLICY = REPOSITORY / "tasks" / "pusht" / "policy.safetensors"
IMAGE_POLICY = REPOSITORY / "tasks" / "pusht_image" / "policy.safetensors"


def tool(*arguments):
    return subprocess.run([sys.executable, TOOL, *map(str, arguments)], capture_output=True, text=True, timeout=300)


def sample(checkpoint, out, solver, steps):
    """`flowpolicy sample --json` for one window inside the policy's observation range."""
    if not os.access(FLOWPOLICY, os.X_OK):
        pytest.fail(f"{FLOWPOLICY} is missing: run swift build -c release first (or set FLOWPOLICY_BIN)")
    with safe_open(str(checkpoint), framework="numpy") as handle:
        low, high = handle.get_tensor("normalizer.observation.min"), handle.get_tensor("normalizer.observation.max")
    observation = ",".join(repr(float(v)) for v in low + np.float32(0.37) * (high - low))
    result = subprocess.run([FLOWPOLICY, "sample", "--checkpoint", str(checkpoint), "--observation", observation,
                             "--count", "64", "--solver", solver, "--steps", str(steps), "--seed", "7", "--json",
                             str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def largest_difference(stdout):
    line = stdout.splitlines()[0]
    return float(line.split("onnxruntime fp32| = ")[1].split()[0])


@pytest.mark.parametrize("solver, steps", [("euler", 10), ("rk4", 2)])
def test_onnx_runtime_samples_the_chunks_flowpolicy_samples(tmp_path, solver, steps):
    sample(POLICY, tmp_path / "sample.json", solver, steps)
    result = tool("check", POLICY, tmp_path / "sample.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert largest_difference(result.stdout) <= 1e-4
    assert "onnxruntime int8 against onnxruntime fp32" in result.stdout


def test_a_network_one_weight_away_fails_the_check(tmp_path):
    sample(POLICY, tmp_path / "sample.json", "euler", 10)
    with safe_open(str(POLICY), framework="numpy") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    tensors["blocks.2.l1.bias"] = tensors["blocks.2.l1.bias"].copy()
    tensors["blocks.2.l1.bias"][5] += np.float32(0.01)
    save_file(tensors, str(tmp_path / "altered.safetensors"), metadata=metadata)
    result = tool("check", tmp_path / "altered.safetensors", tmp_path / "sample.json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MISMATCH" in result.stdout
    assert largest_difference(result.stdout) > 1e-4


def test_a_policy_with_cameras_is_refused_in_one_line():
    result = tool("bench", "--checkpoint", IMAGE_POLICY, "--iterations", "1")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "cameras" in lines[0], result.stderr


def test_bench_reports_every_precision_in_one_json_object():
    result = tool("bench", "--checkpoint", POLICY, "--iterations", "5", "--batch", "4")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["onnxruntime"] in report["name"] and report["onnx"] in report["name"]
    precisions = report["precisions"]
    assert list(precisions) == ["fp32", "bf16", "int8"]
    for name, entry in precisions.items():
        assert entry["batch"] == 4
        if entry["supported"]:
            assert entry["p50_ms"] > 0 and entry["p99_ms"] >= entry["p50_ms"] and entry["chunks_per_second"] > 0
        else:
            assert entry["reason"] and entry["p50_ms"] is None, entry
    assert precisions["fp32"]["supported"] and precisions["fp32"]["max_abs_error_vs_fp32"] == 0
    assert precisions["int8"]["supported"] and 0 < precisions["int8"]["max_abs_error_vs_fp32"] < 0.2
