#!/usr/bin/env bash
# The robust signals' cost: this checkout's PDQ + robust hashing against the PDQ hashing
# of the commit before them (COST_BEFORE, default a602fe1), per image, side by side in
# one run. Extra arguments go to cost.py (e.g. --rounds 40 --runs 5).
#
# The commit before is checked out once as a worktree under target/hash-cost and built
# into this checkout's target directory (so the two share their dependencies), its
# example kept aside; the venv is robustness.py's.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"

before="${COST_BEFORE:-a602fe1}"
mkdir -p "$root/target/hash-cost"
old="$root/target/hash-cost/stage_times-$before"
if [ ! -x "$old" ]; then
    tree="$root/target/hash-cost/tree-$before"
    [ -d "$tree" ] || git worktree add --detach "$tree" "$before"
    (cd "$tree" && CARGO_TARGET_DIR="$root/target" cargo build --release --locked --example stage_times)
    cp "$root/target/release/examples/stage_times" "$old"
    git worktree remove --force "$tree"
fi
cargo build --release --locked --example stage_times

venv="${ROBUSTNESS_VENV:-target/robustness-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r scripts/robustness/requirements.txt
fi
exec "$venv/bin/python" scripts/robustness/cost.py \
    --old "$old" \
    --new "$root/target/release/examples/stage_times" "$@"
