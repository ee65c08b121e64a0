#!/usr/bin/env bash
# OCR oracle fixture: renders tests/fixtures/ocr/ (cover-like text on flat colours and
# on the scikit-image photos, no-text controls, 3000 px JPEGs) and records what
# rapidocr_onnxruntime 1.4.4's own Python pipeline reads in each image, in two
# detection modes, to tests/fixtures/ocr/rapidocr-1.4.4.json (+ README.md).
# Extra arguments go to make_fixtures.py (e.g. --photos DIR, --out DIR).
#
# The venv is built once from scripts/ocr-oracle/requirements.txt (exact versions)
# with the machine's python3 and pip; OCR_ORACLE_VENV moves it. This script never
# builds coverguard: without --photos it asks target/release/coverguard (if present)
# where the provisioned scikit-image photos are.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${OCR_ORACLE_VENV:-target/ocr-oracle-venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r scripts/ocr-oracle/requirements.txt
fi

exec "$venv/bin/python" scripts/ocr-oracle/make_fixtures.py "$@"
