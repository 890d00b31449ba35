#!/usr/bin/env bash
# The Franka Kitchen expert on other subtask orders: for each order, a copy of tasks/franka_kitchen/task.yaml with
# that `tasks:` list (through FLOWPOLICY_TASKS), evaluated with `flowpolicy eval --expert`.
#
#   tools/kitchen_expert_orders.sh [--episodes N] [--json-dir DIR] ["a, b, c, d" ...]
#
# Without orders, runs the six orders of tasks/franka_kitchen/README.md. Subtask names are the reference's
# (bottom burner, top burner, light switch, slide cabinet, hinge cabinet, microwave, kettle).
set -euo pipefail
cd "$(dirname "$0")/.."
episodes=50
json_dir=""
orders=()
while [ $# -gt 0 ]; do
    case "$1" in
        --episodes) episodes="$2"; shift 2 ;;
        --json-dir) json_dir="$2"; shift 2 ;;
        *) orders+=("$1"); shift ;;
    esac
done
if [ ${#orders[@]} -eq 0 ]; then
    orders=("microwave, kettle, light switch, slide cabinet"
            "microwave, kettle, bottom burner, light switch"
            "kettle, bottom burner, slide cabinet, hinge cabinet"
            "top burner, light switch, microwave, hinge cabinet"
            "microwave, bottom burner, top burner, slide cabinet"
            "bottom burner, kettle, light switch, hinge cabinet")
fi
binary=.build/release/flowpolicy
[ -x "$binary" ] || { echo "build first: swift build -c release" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
for order in "${orders[@]}"; do
    mkdir -p "$root/tasks/franka_kitchen"
    sed "s/^  tasks: .*/  tasks: [$order]/" tasks/franka_kitchen/task.yaml > "$root/tasks/franka_kitchen/task.yaml"
    json=()
    [ -n "$json_dir" ] && json=(--json "$json_dir/expert $order.json")
    echo "== $order"
    FLOWPOLICY_TASKS="$root/tasks" "$binary" eval --task franka_kitchen --expert --episodes "$episodes" "${json[@]}" \
        | grep -E "success|p[1-4] |length"
done
