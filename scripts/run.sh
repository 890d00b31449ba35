#!/usr/bin/env bash
# The main job: installs what is missing, builds flowpolicy, then trains a conditional flow-matching policy on the
# toy mixture and samples it, printing how its samples fall on the true modes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
printf '==> building flowpolicy (release)\n' >&2
swift build -c release --product flowpolicy
flowpolicy=.build/release/flowpolicy
work="${FLOWPOLICY_CACHE:-$HOME/.cache/flowpolicy}/runs/toy-mixture"
mkdir -p "$work"
printf '==> collecting, training and sampling the toy mixture in %s\n' "$work" >&2
"$flowpolicy" collect --task toy-mixture --episodes 4000 --seed 1 --out "$work/dataset.safetensors"
"$flowpolicy" train --dataset "$work/dataset.safetensors" --out "$work/policy.safetensors" --steps 3000 --lr 1e-3 \
    --warmup 100 --hidden 128 --depth 3 --time-embedding 32 --seed 3 --json "$work/train.json"
for condition in 0 1; do
    "$flowpolicy" sample --checkpoint "$work/policy.safetensors" --observation "$condition" --count 2000 \
        --solver rk4 --steps 10 --seed 5 --json "$work/sample-$condition.json"
done
