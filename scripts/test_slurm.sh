#!/usr/bin/env bash
# Campaigns on a real one-node Slurm cluster (scripts/slurm_cluster.sh: Debian's slurm-wlm and munge, installed if
# missing, started in a temporary folder and stopped on exit). First a plain 4-task job array checks the cluster runs
# jobs; then a Push-T campaign (the shipped policy, K = 2, receding, 8 episodes, 4 shards) is planned, submitted as a
# job array with sbatch --wait and merged, and its per-seed outcomes must equal a local unsharded `flowpolicy eval`
# of the same configuration, seed by seed. `--cluster-only` stops after the job array. Needs .build/release/flowpolicy
# (scripts/test.sh builds it) and root.
set -euo pipefail
cd "$(dirname "$0")/.."
repository="$PWD"
flowpolicy="${FLOWPOLICY_BIN:-$repository/.build/release/flowpolicy}"  # FLOWPOLICY_BIN: another build
cluster_only=false
case "${1:-}" in
    '') ;;
    --cluster-only) cluster_only=true ;;
    *) printf 'usage: %s [--cluster-only]\n' "$0" >&2; exit 2 ;;
esac

work="$(mktemp -d)"
cluster="$work/cluster"
cleanup() {
    scripts/slurm_cluster.sh stop "$cluster" >&2 || true
    rm -rf "$work"
}
trap cleanup EXIT

# Prints the Slurm logs of the jobs (and the daemons' last lines) after a failure.
show_logs() {
    local log
    for log in "$work"/logs/*.out "$cluster/slurmctld.log" "$cluster/slurmd.log"; do
        [ -f "$log" ] || continue
        printf -- '--- %s ---\n' "$log" >&2
        tail -n 40 "$log" >&2
    done
}
fail() {
    printf 'error: %s\n' "$1" >&2
    show_logs
    exit 1
}

printf '==> starting a one-node Slurm cluster in %s\n' "$cluster" >&2
chmod 711 "$work"  # munged wants every folder above its socket executable by all
exports="$(scripts/slurm_cluster.sh start "$cluster")" || exit 1
eval "$exports"  # export SLURM_CONF=$cluster/slurm.conf
sinfo >&2
mkdir -p "$work/logs"

# --- the cluster runs a job array: 4 tasks, each writing its index ---
printf '==> a 4-task job array (sbatch --array=0-3 --wait)\n' >&2
mkdir -p "$work/array"
# shellcheck disable=SC2016  # $SLURM_ARRAY_TASK_ID is the job's, expanded on the node
sbatch --wait --array=0-3 --job-name=array-check --output="$work/logs/array-%A_%a.out" \
    --wrap 'echo "$SLURM_ARRAY_TASK_ID" >"'"$work"'/array/out.$SLURM_ARRAY_TASK_ID"' >&2 \
    || fail 'the job array failed'
for i in 0 1 2 3; do
    [ "$(cat "$work/array/out.$i" 2>/dev/null)" = "$i" ] || fail "array task $i wrote no $work/array/out.$i"
done
printf 'job array: 4 of 4 tasks ran on the cluster\n' >&2
if $cluster_only; then
    printf 'slurm: the cluster ran a 4-task job array (--cluster-only: no campaign)\n'
    exit 0
fi

# --- a campaign as a Slurm job array, merged, against a local run ---
[ -x "$flowpolicy" ] || fail "$flowpolicy is missing: build it first (swift build -c release, or scripts/test.sh)"
"$flowpolicy" campaign --help >/dev/null 2>&1 || fail "$flowpolicy has no campaign command"
export PATH="$(dirname "$flowpolicy"):$PATH"
checkpoint="$repository/tasks/pusht/policy.safetensors"
campaign="$work/campaign"
cat >"$work/campaign.yaml" <<EOF
task: pusht
checkpoints: [$checkpoint]
steps: [2]
hand_overs: [receding]
episodes: 8
shards: 4
EOF
printf '==> flowpolicy campaign plan\n' >&2
"$flowpolicy" campaign plan "$work/campaign.yaml" --out "$campaign" >&2 || fail 'campaign plan failed'
for file in jobs.txt campaign.sbatch plan.json; do
    [ -s "$campaign/$file" ] || fail "campaign plan wrote no $campaign/$file"
done
lines="$(wc -l <"$campaign/jobs.txt")"
[ "$lines" -eq 4 ] || fail "jobs.txt has $lines lines, expected 4 (1 checkpoint x 1 K x 1 hand-over x 4 shards)"
grep -qE '^#SBATCH[[:space:]]+--array=0-3([^0-9]|$)' "$campaign/campaign.sbatch" \
    || fail 'campaign.sbatch has no "#SBATCH --array=0-3" line'

printf '==> sbatch --wait campaign.sbatch (4 array tasks, 2 at a time on 2 cores)\n' >&2
sbatch --wait --output="$work/logs/campaign-%A_%a.out" "$campaign/campaign.sbatch" >&2 \
    || fail 'the campaign job array failed'
printf '==> flowpolicy campaign merge\n' >&2
"$flowpolicy" campaign merge "$campaign" >&2 || fail 'campaign merge failed'
[ -s "$campaign/campaign.json" ] || fail "campaign merge wrote no $campaign/campaign.json"

printf '==> the same configuration locally: unsharded, and in 4 shards merged with flowpolicy merge\n' >&2
configuration=(--task pusht --checkpoint "$checkpoint" --episodes 8 --steps 2 --hand-over receding)
"$flowpolicy" eval "${configuration[@]}" --json "$work/local.json" >"$work/logs/local.out" 2>&1 \
    || fail 'the local flowpolicy eval failed'
shards=()
for i in 0 1 2 3; do
    "$flowpolicy" eval "${configuration[@]}" --shard "$i/4" --json "$work/shard-$i.json" \
        >"$work/logs/local-shard-$i.out" 2>&1 || fail "the local flowpolicy eval --shard $i/4 failed"
    shards+=("$work/shard-$i.json")
done
"$flowpolicy" merge "${shards[@]}" --json "$work/local-merged.json" >"$work/logs/local-merge.out" 2>&1 \
    || fail 'flowpolicy merge of the local shards failed'

python3 - "$campaign/campaign.json" "$work/local.json" "$work/local-merged.json" <<'EOF' || fail 'outcomes differ'
import json, sys

def outcomes(report, name):
    results = report.get("results")
    assert isinstance(results, list) and results, f"{name}: no results array"
    return [(r["seed"], r["success"], r["steps"], r["maxProgress"]) for r in results]

def successes(report):
    return report["success"]["successes"]

rows = json.load(open(sys.argv[1]))["rows"]
assert len(rows) == 1, f"campaign.json: {len(rows)} rows, expected 1 configuration"
row = rows[0]["report"]
local = json.load(open(sys.argv[2]))
merged = json.load(open(sys.argv[3]))
expected = outcomes(local, "local.json")
assert len(expected) == 8, f"local.json: {len(expected)} episodes, expected 8"
assert len({s for s, *_ in expected}) == 8, "local.json: repeated seeds"
for name, report in (("the Slurm campaign", row), ("the local shards merged", merged)):
    got = sorted(outcomes(report, name))
    for e, g in zip(sorted(expected), got):
        if e != g:
            print(f"{name}: seed {e[0]}: local (success, steps, maxProgress) = {e[1:]}, {name} = {g[1:]}",
                  file=sys.stderr)
    assert got == sorted(expected), f"{name}: per-seed outcomes differ from the local run's"
    assert successes(report) == successes(local) == sum(e[1] for e in expected), \
        f"{name}: {successes(report)} successes, local {successes(local)}"
    print(f"{name}: 8 seeds equal to the local run's, {successes(report)} of 8 successes")
EOF
printf 'slurm: the campaign job array equals the local run, seed by seed\n'
