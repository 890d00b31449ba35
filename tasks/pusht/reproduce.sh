#!/usr/bin/env bash
# Reproduces every figure of tasks/pusht/README.md: the demonstrations, the shipped policy, and the experiments of
# seed 000 (fine-tuning) and seed 001 (Local Flow Matching). Each stage can be run on its own:
#
#   tasks/pusht/reproduce.sh [policy] [seed000] [seed001]     (no argument: all three, about 3 hours on 2 cores)
#
# Intermediate files go to $FLOWPOLICY_CACHE/runs/pusht (default ~/.cache/flowpolicy); the JSON reports to
# tasks/pusht/reports. `policy` also copies the trained checkpoint to tasks/pusht/policy.safetensors.
set -euo pipefail
cd "$(dirname "$0")/../.."
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(policy seed000 seed001)
flowpolicy=.build/release/flowpolicy
[ -x "$flowpolicy" ] || swift build -c release --product flowpolicy
runs="${FLOWPOLICY_CACHE:-$HOME/.cache/flowpolicy}/runs/pusht"
reports=tasks/pusht/reports
mkdir -p "$runs" "$reports"
say() { printf '==> %s\n' "$*" >&2; }

# Evaluates checkpoint $1 under the name $2 at Euler steps $3... on the 200 evaluation episodes.
evaluate() {
    local checkpoint=$1 name=$2; shift 2
    for k in "$@"; do
        "$flowpolicy" eval --task pusht --checkpoint "$checkpoint" --episodes 200 --steps "$k" \
            --json "$reports/$name-k$k.json" | grep -E '^  (success|max coverage)' | sed "s/^/$name K=$k /"
    done
}

policy() {
    say "demonstrations: 1000 scripted-expert episodes (seeds 0-999)"
    [ -f "$runs/expert-1000.safetensors" ] || "$flowpolicy" collect --task pusht --episodes 1000 \
        --out "$runs/expert-1000.safetensors" --json "$reports/collect.json"
    say "expert on the evaluation seeds"
    "$flowpolicy" eval --task pusht --expert --episodes 200 --json "$reports/expert.json" | grep -E '^  success'
    say "flow-matching policy: ResMLP-FiLM H=256, 4 blocks, 150k steps"
    "$flowpolicy" train --dataset "$runs/expert-1000.safetensors" --out "$runs/fm.safetensors" --steps 150000 \
        --lr 1e-3 --warmup 1000 --save-every 25000 --json "$reports/train-fm.json"
    cp "$runs/fm.safetensors" tasks/pusht/policy.safetensors.tmp && mv tasks/pusht/policy.safetensors.tmp tasks/pusht/policy.safetensors
    evaluate "$runs/fm.safetensors" fm 1 2 4 10
    for step in 25000 50000 75000 100000 125000; do
        evaluate "$runs/fm.step$step.safetensors" "fm-step$step" 10
    done
}

# The policy shipped before (50k steps), which the seed 000 experiments start from.
fm50k() {
    if [ ! -f "$runs/fm-50k.safetensors" ]; then
        say "flow-matching policy shipped before: the same network, 50k steps"
        "$flowpolicy" train --dataset "$runs/expert-1000.safetensors" --out "$runs/fm-50k.safetensors" --steps 50000 \
            --lr 1e-3 --warmup 1000 --save-every 10000 --json "$reports/train-fm-50k.json"
        evaluate "$runs/fm-50k.safetensors" fm-50k 1 2 4 10
        for step in 10000 20000 30000 40000; do
            evaluate "$runs/fm-50k.step$step.safetensors" "fm-50k-step$step" 10
        done
    fi
}

seed000() {
    fm50k
    local base="$runs/fm-50k.safetensors" data="$runs/expert-1000.safetensors"
    say "seed 000: MLE and residual fine-tuning through the K=2 Euler sampler, and the independent-coupling ablation"
    "$flowpolicy" finetune --checkpoint "$base" --dataset "$data" --out "$runs/mle.safetensors" --mode mle \
        --steps 2 --json "$reports/finetune-mle.json"
    "$flowpolicy" finetune --checkpoint "$base" --dataset "$data" --out "$runs/residual.safetensors" --mode residual \
        --steps 2 --json "$reports/finetune-residual.json"
    "$flowpolicy" finetune --checkpoint "$base" --dataset "$data" --out "$runs/mle-independent.safetensors" \
        --mode mle --steps 2 --coupling independent --json "$reports/finetune-mle-independent.json"
    evaluate "$runs/mle.safetensors" mle 1 2 4 10
    evaluate "$runs/residual.safetensors" residual 1 2 4 10
    evaluate "$runs/mle-independent.safetensors" mle-independent 2
    "$flowpolicy" finetune --checkpoint "$base" --dataset "$data" --out "$runs/residual-eps0.01.safetensors" \
        --mode residual --steps 2 --head-epsilon 0.01 --json "$reports/finetune-residual-eps0.01.json"
    evaluate "$runs/residual-eps0.01.safetensors" residual-eps0.01 2 4
    for name in fm-50k mle residual; do
        for noise in 2 5; do
            "$flowpolicy" eval --task pusht --checkpoint "$runs/$name.safetensors" --episodes 200 --steps 4 \
                --observation-noise "$noise" --json "$reports/$name-k4-noise$noise.json" \
                | grep -E '^  success' | sed "s/^/$name K=4 noise $noise /"
        done
        "$flowpolicy" certify --checkpoint "$runs/$name.safetensors" --task pusht --steps 2 \
            --json "$reports/certify-$name.json"
    done
}

seed001() {
    local data="$runs/expert-1000.safetensors"
    say "seed 001: Local Flow Matching, 2 blocks with the FM policy's parameter count, 70k steps"
    "$flowpolicy" train --method lfm --blocks 2 --dataset "$data" --out "$runs/lfm.safetensors" \
        --steps "${LFM_STEPS:-70000}" --lr 1e-3 --warmup 1000 --json "$reports/train-lfm.json"
    "$flowpolicy" distill --checkpoint "$runs/lfm.safetensors" --dataset "$data" --out "$runs/lfm-distilled.safetensors" \
        --json "$reports/distill-lfm.json"
    # Two blocks: K Euler steps per block is 2K network evaluations.
    evaluate "$runs/lfm.safetensors" lfm 1 2 4 5 10
    evaluate "$runs/lfm-distilled.safetensors" lfm-distilled 1
}

for stage in "${stages[@]}"; do
    case "$stage" in
        policy|seed000|seed001) "$stage" ;;
        *) echo "unknown stage '$stage' (expected policy, seed000 or seed001)" >&2; exit 2 ;;
    esac
done
