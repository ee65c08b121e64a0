#!/usr/bin/env bash
# Bank-matching robustness to image edits: Meta's reference PDQ (a) and, when the
# release binary is there, coverguard with a hash-only (b) and an image-built (c) bank.
# Extra arguments go to robustness.py (e.g. --photos DIR, --ref-threshold 40).
#
# The venv is built once from scripts/robustness/requirements.txt (exact versions,
# the same pins as scripts/compare) with the machine's python3 and pip;
# ROBUSTNESS_VENV moves it. This script never builds coverguard: it uses
# target/release/coverguard if present (override with --coverguard).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${ROBUSTNESS_VENV:-target/robustness-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r scripts/robustness/requirements.txt
fi

exec "$venv/bin/python" scripts/robustness/robustness.py "$@"
