#!/usr/bin/env bash
# The main job: installs what is missing, builds flowpolicy, then evaluates the shipped Push-T policy
# (tasks/pusht/policy.safetensors) on 200 seeded episodes at Euler K = 10 and prints the success rate with its 95%
# interval. Extra arguments go to `flowpolicy eval` (for example --steps 2 or --episodes 50).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
printf '==> building flowpolicy (release)\n' >&2
swift build -c release --product flowpolicy
report="${FLOWPOLICY_CACHE:-$HOME/.cache/flowpolicy}/runs/pusht-eval.json"
mkdir -p "$(dirname "$report")"
printf '==> evaluating the shipped Push-T policy (report: %s)\n' "$report" >&2
.build/release/flowpolicy eval --task pusht --json "$report" "$@"
