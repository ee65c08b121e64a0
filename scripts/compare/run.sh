#!/usr/bin/env bash
# Side-by-side comparison of coverguard with the Python stack (NudeNet 3.4.2,
# python-threatexchange PDQ hashing and faiss matching), on the same files in one run.
# Extra arguments go to compare.py (e.g. --bank-size 10000000 --rounds 5).
#
# The venv is built once from scripts/compare/requirements.txt (exact versions) with
# the machine's python3 and pip; COMPARE_VENV moves it.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${COMPARE_VENV:-target/compare-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r scripts/compare/requirements.txt
fi

cargo build --release --locked --bin coverguard --example stage_times
exec "$venv/bin/python" scripts/compare/compare.py \
    --coverguard target/release/coverguard \
    --stage-times target/release/examples/stage_times "$@"
