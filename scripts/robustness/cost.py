#!/usr/bin/env python3
"""What the robust signals cost, against the PDQ hashing coverguard did before them.

Run: scripts/robustness/cost.sh [--rounds N] [--runs N]
(it builds the `stage_times` example of this checkout and of the commit before the
robust signals, and runs this file in the robustness venv).

--old is the `stage_times` example built from the commit before the robust signals
(PDQ with its dihedral hashes: the hashing an image got then). This checkout's
`stage_times` reports the same PDQ (`pdq_ms`) and PDQ with every robust signal
(`robust_ms`, the hashing an image gets now), each timed right after a decode. Each
prints, per folder, the median over files of each file's fastest of --rounds hashings
(a fifth of them, at least 3, at 3000 px).

Corpora, built once under target/hash-cost from the scikit-image photos (those of at
least 128 px, as the stages bench takes them): each photo as JPEG q90 with its longest
side at 640 and at 3000 px, and the same picture inside a black frame a tenth of its
size on every side (so the trimmed picture is hashed too). The two binaries run in turn,
RUNS times, on every corpus; the report gives each run's ratios and their median.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from PIL import Image

from robustness import fetch_photos


def build(photos, side, out, framed):
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        return
    for src in sorted(photos.iterdir()):
        if src.suffix not in (".png", ".jpg"):
            continue
        image = Image.open(src).convert("RGB")
        if min(image.size) < 128:
            continue
        scale = side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        picture = image.resize(size, Image.Resampling.BILINEAR)
        if framed:
            bx, by = picture.width // 10, picture.height // 10
            canvas = Image.new("RGB", (picture.width + 2 * bx, picture.height + 2 * by))
            canvas.paste(picture, (bx, by))
            picture = canvas
        picture.save(out / f"{src.stem}.jpg", "JPEG", quality=90)


def times(binary, folder, rounds):
    out = subprocess.run([binary, str(folder), str(rounds)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="stage_times built before the robust signals")
    parser.add_argument("--new", required=True, help="stage_times of this checkout")
    parser.add_argument("--photos", type=Path, help="the scikit-image photos (default: robustness.py's copy)")
    parser.add_argument("--work", type=Path, default=Path("target/hash-cost"))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    photos = args.photos or fetch_photos(Path("target/robustness"))
    corpora = {}
    for side in (640, 3000):
        for framed in (False, True):
            name = f"{side} px {'framed' if framed else 'photos'}"
            folder = args.work / f"{side}{'-framed' if framed else ''}"
            build(photos, side, folder, framed)
            corpora[name] = folder

    rows = {name: [] for name in corpora}
    for run in range(args.runs):
        for name, folder in corpora.items():
            rounds = args.rounds if "640" in name else max(3, args.rounds // 5)
            old = times(args.old, folder, rounds)
            new = times(args.new, folder, rounds)
            if "robust_ms" not in new:
                sys.exit(f"{args.new} does not report robust_ms")
            rows[name].append((old["pdq_ms"], new["pdq_ms"], new["robust_ms"], new["files"]))
            print(f"run {run + 1} {name}: before {old['pdq_ms']:.2f} ms, now PDQ {new['pdq_ms']:.2f} ms,"
                  f" PDQ + robust {new['robust_ms']:.2f} ms", file=sys.stderr)

    print("| corpus | files | PDQ before | PDQ now | PDQ + robust now | now / before | robust / PDQ now |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, runs in rows.items():
        before = statistics.median(r[0] for r in runs)
        pdq = statistics.median(r[1] for r in runs)
        robust = statistics.median(r[2] for r in runs)
        total = [r[2] / r[0] for r in runs]
        extra = [r[2] / r[1] for r in runs]
        print(f"| {name} | {runs[0][3]} | {before:.2f} ms | {pdq:.2f} ms | {robust:.2f} ms"
              f" | {statistics.median(total):.2f}× ({min(total):.2f}–{max(total):.2f})"
              f" | {statistics.median(extra):.2f}× ({min(extra):.2f}–{max(extra):.2f}) |")


if __name__ == "__main__":
    main()
