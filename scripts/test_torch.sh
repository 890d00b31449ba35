#!/usr/bin/env bash
# Tests the PyTorch trainer (clients/python/flowpolicy_torch) against flowpolicy: two processes under torchrun
# (DistributedDataParallel over gloo, on the CPU) train a small Push-T policy; flowpolicy must read the checkpoint
# (inspect), find the same file layout, metadata, normalizers and deployment contract as its own trainer writes for
# the same data and settings, and sample the same chunks as PyTorch from the same seeded noise (to 1e-4 in normalized
# action units); both trainers must start from the same weights for the same seed; `eval` must run the checkpoint in
# process and through `serve` with the same outcomes; the image encoders (small CNN, ResNet-18) must give PyTorch's
# features (torchvision's ResNet-18) to 1e-4 (ImageEncoderTorchParityTests). Exits non-zero on any difference. About a
# minute on 2 cores.
#
# torch lives in its own virtual environment, $FLOWPOLICY_CACHE/torch-venv (default ~/.cache/flowpolicy), made and
# filled here on first use: PyPI's Linux torch wheel depends on NVIDIA's CUDA libraries, and no CPU-only torch is on
# PyPI, so the environment takes about 5.4 GB (3 GB of them CUDA libraries, 1 GB triton) and 3 minutes to install.
# Needs the release build (.build/release/flowpolicy).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
say() { printf '==> %s\n' "$*" >&2; }
flowpolicy=.build/release/flowpolicy
if [ ! -x "$flowpolicy" ]; then
    say "$flowpolicy is missing: run swift build -c release first"
    exit 1
fi

venv="${FLOWPOLICY_CACHE:-$HOME/.cache/flowpolicy}/torch-venv"
# The versions this trainer was written and measured with (torch 2.15 as in the README's PyTorch figures; numpy,
# safetensors and PyYAML as in the main environment scripts/setup.sh makes). torchvision 0.29.2 is the newest on PyPI;
# it requires torch >= 2.14, and its models (the image encoders' ResNet-18) run on torch 2.15.
requirements=(torch==2.15.0 torchvision==0.29.2 numpy==2.4.6 safetensors==0.8.0 pyyaml==6.0.4)
python="$venv/bin/python"
if [ ! -x "$python" ]; then
    say "creating the PyTorch environment $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi
if "$python" -c 'import numpy, safetensors, torch, torchvision, yaml
assert torch.__version__.split("+")[0] == "2.15.0" and torchvision.__version__.split("+")[0] == "0.29.2"' \
    2>/dev/null; then
    say "PyTorch environment present: $venv"
else
    say "installing ${requirements[*]} into $venv (about 5.4 GB with torch's CUDA libraries)"
    "$python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
fi

source scripts/background.sh  # $work, removed at exit with everything started in the background
export PYTHONPATH="$root/clients/python${PYTHONPATH:+:$PYTHONPATH}"
# One thread per process: two processes share the two cores (torchrun would set this too, with a warning).
export OMP_NUM_THREADS=1
reference=("$python" tools/pytorch_reference.py)
run() {  # run LOG COMMAND...: the command's output goes to LOG, shown only if it fails
    local log="$1"
    shift
    "$@" >"$log" 2>&1 || { cat "$log" >&2; say "failed: $*"; exit 1; }
}

say "image encoders against PyTorch: the small CNN and torchvision's ResNet-18, the same features to 1e-4"
# The test binary scripts/test.sh built (this build is then a no-op; it builds the tests when run on its own).
run "$work/vision.log" swift build -c release --build-tests
run "$work/vision.log" env FLOWPOLICY_TORCH_PYTHON="$python" \
    swift test -c release --skip-build --filter ImageEncoderTorchParityTests
[ "$(grep -c 'max |Δ|' "$work/vision.log")" -eq 2 ] \
    || { cat "$work/vision.log" >&2; say "the image encoder parity tests did not run"; exit 1; }
grep -o 'PyTorch parity, .*' "$work/vision.log" >&2

say "demonstrations: 5 Push-T episodes from the scripted expert"
run "$work/collect.log" "$flowpolicy" collect --task pusht --episodes 5 --out "$work/data.safetensors"

small=(--steps 300 --hidden 64 --depth 2 --batch-size 64 --lr 1e-3 --warmup 50)
say "PyTorch: torchrun, 2 processes (gloo), ${small[*]}"
run "$work/torch.log" "$venv/bin/torchrun" --standalone --nproc_per_node 2 -m flowpolicy_torch.train \
    --dataset "$work/data.safetensors" --out "$work/torch.safetensors" --json "$work/torch.json" "${small[@]}"
grep -E '^  (steps|loss|time)' "$work/torch.log" >&2

say "flowpolicy inspect reads the checkpoint and its deployment contract"
run "$work/inspect.log" "$flowpolicy" inspect "$work/torch.safetensors"
grep -q '^  deployment  10 Hz, hand-over receding, position actions' "$work/inspect.log" \
    || { cat "$work/inspect.log" >&2; say "inspect shows no Push-T deployment contract"; exit 1; }

say "the same file layout, metadata, normalizers and contract as flowpolicy train's for the same data and settings"
run "$work/swift.log" "$flowpolicy" train --dataset "$work/data.safetensors" --out "$work/swift.safetensors" \
    --threads 1 "${small[@]}"
"${reference[@]}" layout "$work/swift.safetensors" "$work/torch.safetensors"

say "the same initial weights for the same seed (one step at lr 1e-9 moves each weight by about 1e-9)"
first=(--dataset "$work/data.safetensors" --steps 1 --lr 1e-9 --warmup 0 --hidden 64 --depth 2 --batch-size 64)
run "$work/swift-1.log" "$flowpolicy" train --out "$work/swift-1.safetensors" --threads 1 "${first[@]}"
run "$work/torch-1.log" "$python" -m flowpolicy_torch.train --out "$work/torch-1.safetensors" "${first[@]}"
"${reference[@]}" layout "$work/swift-1.safetensors" "$work/torch-1.safetensors" --weights-tolerance 1e-8

say "flowpolicy sample against PyTorch, same seeded noise"
observation="$("$python" -c 'import sys; from safetensors.numpy import load_file
print(",".join(repr(float(v)) for v in load_file(sys.argv[1])["obs"][40]))' "$work/data.safetensors")"
for solver in "euler 10" "midpoint 4" "rk4 2"; do
    set -- $solver
    run "$work/sample.log" "$flowpolicy" sample --checkpoint "$work/torch.safetensors" --observation "$observation" \
        --count 300 --solver "$1" --steps "$2" --seed 11 --json "$work/sample-$1.json"
    "${reference[@]}" check "$work/torch.safetensors" "$work/sample-$1.json" --tolerance 1e-4
done

say "an image policy (Push-T image, small CNN): PyTorch loads it strictly and samples the same chunks"
run "$work/collect-image.log" "$flowpolicy" collect --task pusht_image --episodes 2 --out "$work/image.safetensors"
run "$work/train-image.log" "$flowpolicy" train --dataset "$work/image.safetensors" --out "$work/image-policy.safetensors" \
    --steps 20 --hidden 64 --depth 2 --batch-size 16 --lr 1e-3 --warmup 5
observation="$("$python" -c 'import sys; from safetensors.numpy import load_file
print(",".join(repr(float(v)) for v in load_file(sys.argv[1])["obs"][40]))' "$work/image.safetensors")"
run "$work/sample-image.log" "$flowpolicy" sample --checkpoint "$work/image-policy.safetensors" \
    --observation "$observation" --frames-from "$work/image.safetensors:40" --count 20 --seed 11 \
    --json "$work/sample-image.json"
"${reference[@]}" check "$work/image-policy.safetensors" "$work/sample-image.json" --tolerance 1e-4

say "flowpolicy eval runs the checkpoint, in process and through flowpolicy serve, with the same outcomes"
run "$work/eval.log" "$flowpolicy" eval --task pusht --checkpoint "$work/torch.safetensors" --episodes 2 --steps 4 \
    --json "$work/eval.json"
start "$work/serve.log" ' on tcp://' \
    "$flowpolicy" serve --checkpoint "$work/torch.safetensors" --steps 4 --bind 'tcp://127.0.0.1:*'
server="$(grep -oE 'on tcp://[0-9.]+:[0-9]+' "$work/serve.log" | head -1 | cut -c4-)"
run "$work/eval-remote.log" "$flowpolicy" eval --task pusht --remote "$server" --episodes 2 --steps 4 \
    --json "$work/eval-remote.json"
"$python" - "$work/eval.json" "$work/eval-remote.json" <<'PYTHON'
import json, sys
local, remote = (json.load(open(path)) for path in sys.argv[1:])
outcomes = [[(r["seed"], r["steps"], r["success"], r["maxProgress"]) for r in report["results"]]
            for report in (local, remote)]
if outcomes[0] != outcomes[1]:
    sys.exit(f"eval in process and through serve differ: {outcomes[0]} against {outcomes[1]}")
print(f"{len(outcomes[0])} episodes, the same in process and through serve: {outcomes[0]}")
PYTHON
say "PyTorch trainer: all checks passed"
