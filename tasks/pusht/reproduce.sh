#!/usr/bin/env bash
# Reproduces every figure of tasks/pusht/README.md: the demonstrations, the shipped policy, and the experiments of
# seed 000 (fine-tuning) and seed 001 (Local Flow Matching). Each stage can be run on its own:
#
#   tasks/pusht/reproduce.sh [policy] [seed000] [seed001] [seeds]   (no argument: all four, about 5 hours on 2 cores)
#
# Intermediate files go to $FLOWPOLICY_CACHE/runs/pusht (default ~/.cache/flowpolicy); the JSON reports to
# tasks/pusht/reports. `policy` also copies the trained checkpoint to tasks/pusht/policy.safetensors.
set -euo pipefail
cd "$(dirname "$0")/../.."
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(policy seed000 seed001 seeds)
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

# Issue 21: three training seeds of FM and LFM, seed 000 on the shipped policy with three fine-tuning seeds,
# robustness.
seeds() {
    local data="$runs/expert-1000.safetensors" shipped=tasks/pusht/policy.safetensors
    say "three training seeds of the shipped settings, 25k steps each"
    for s in 0 1 2; do
        "$flowpolicy" train --dataset "$data" --out "$runs/seed$s-25k.safetensors" --steps 25000 --lr 1e-3 \
            --warmup 1000 --seed "$s" --json "$reports/train-seed$s-25k.json"
        evaluate "$runs/seed$s-25k.safetensors" "seed$s-25k" 2 4 10
        "$flowpolicy" train --method lfm --blocks 2 --dataset "$data" --out "$runs/lfm-seed$s-25k.safetensors" \
            --steps 25000 --lr 1e-3 --warmup 1000 --seed "$s" --json "$reports/train-lfm-seed$s-25k.json"
        evaluate "$runs/lfm-seed$s-25k.safetensors" "lfm-seed$s-25k" 1 2 5
    done
    for k in 2 4 10; do "$flowpolicy" report seeds "$reports"/seed?-25k-k$k.json; done
    for k in 1 2 5; do "$flowpolicy" report seeds "$reports"/lfm-seed?-25k-k$k.json; done
    say "seed 000 on the shipped policy: MLE and residual through K = 1 and 2, fine-tuning seeds 0-2"
    for k in 1 2; do
        for p in 0 1 2; do
            local name="shipped-k$k-policy-seed$p"
            [ "$p" = 0 ] && name="shipped-k$k"
            "$flowpolicy" eval --task pusht --episodes 200 --steps "$k" --policy-seed "$p" \
                --json "$reports/$name.json" | grep -E '^  success' | sed "s/^/shipped K=$k policy seed $p /"
        done
        for mode in mle residual; do
            for s in 0 1 2; do
                "$flowpolicy" finetune --checkpoint "$shipped" --dataset "$data" --mode "$mode" --steps "$k" \
                    --seed "$s" --out "$runs/shipped-$mode-k$k-seed$s.safetensors" \
                    --json "$reports/finetune-shipped-$mode-k$k-seed$s.json"
                "$flowpolicy" eval --task pusht --checkpoint "$runs/shipped-$mode-k$k-seed$s.safetensors" \
                    --episodes 200 --steps "$k" --json "$reports/shipped-$mode-k$k-seed$s.json" \
                    | grep -E '^  success' | sed "s/^/$mode K=$k seed $s /"
            done
            "$flowpolicy" certify --checkpoint "$runs/shipped-$mode-k$k-seed0.safetensors" --task pusht \
                --steps "$k" --json "$reports/certify-shipped-$mode-k$k-seed0.json"
        done
        "$flowpolicy" certify --checkpoint "$shipped" --task pusht --steps "$k" \
            --json "$reports/certify-shipped-k$k.json"
    done
    say "robustness: observation noise and a push, the shipped policy at K = 10"
    for noise in 2 5; do
        "$flowpolicy" eval --task pusht --episodes 200 --steps 10 --observation-noise "$noise" \
            --json "$reports/noise$noise-k10.json" | grep -E '^  success' | sed "s/^/noise $noise /"
    done
    for step in 30 100; do
        "$flowpolicy" eval --task pusht --episodes 200 --steps 10 --disturbance "$step" \
            --json "$reports/disturbance$step-k10.json" | grep -E '^  success' | sed "s/^/push at $step /"
    done
    say "robustness of the base and the fine-tuned policies at K = 1 and 2"
    for k in 1 2; do
        local name checkpoint seed
        for run in base0 base1 base2 mle0 mle1 mle2 residual0 residual1 residual2; do
            seed=${run: -1}
            case "$run" in
                base*) name="shipped-k$k-policy-seed$seed"; checkpoint="$shipped" ;;
                *) name="shipped-${run%?}-k$k-seed$seed"; checkpoint="$runs/$name.safetensors"; seed=0 ;;
            esac
            "$flowpolicy" eval --task pusht --checkpoint "$checkpoint" --episodes 200 --steps "$k" \
                --policy-seed "$seed" --observation-noise 2 --json "$reports/robust-noise2-$name.json" > /dev/null
            "$flowpolicy" eval --task pusht --checkpoint "$checkpoint" --episodes 200 --steps "$k" \
                --policy-seed "$seed" --disturbance 100 --json "$reports/robust-push100-$name.json" > /dev/null
        done
        for condition in noise2 push100; do
            for policy in shipped-k$k-policy shipped-mle-k$k shipped-residual-k$k; do
                "$flowpolicy" report seeds "$reports/robust-$condition-$policy"-seed?.json
            done
        done
    done
}

for stage in "${stages[@]}"; do
    case "$stage" in
        policy|seed000|seed001|seeds) "$stage" ;;
        *) echo "unknown stage '$stage' (expected policy, seed000, seed001 or seeds)" >&2; exit 2 ;;
    esac
done
