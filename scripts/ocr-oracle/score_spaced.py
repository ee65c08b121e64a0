"""Counts the lines read in the covers spaced_letters.py renders, from the JSON records
`coverguard scan --json --ocr` writes for them: a cover's line counts as read when the
words read in it, spaces removed, full-width forms folded (NFKC) and lower-cased, are
within a quarter of the phrase's letters of it (Levenshtein distance).

    target/release/coverguard scan --json --ocr /tmp/spaced/*.png > gated.jsonl
    python3 scripts/ocr-oracle/score_spaced.py gated.jsonl

Prints the lines read by spacing and by background, then the covers missed with what
was read in them. Needs only the standard library.
"""

import ast
import collections
import itertools
import json
import re
import sys
import unicodedata
from pathlib import Path

# The renderer's lists, read from its source so the order of covers stays the same
# (importing it would need Pillow).
_RENDERER = (Path(__file__).parent / "spaced_letters.py").read_text()


def _listed(name: str) -> list:
    return ast.literal_eval(re.search(rf"^{name} = (\[.*?\])$", _RENDERER, re.M | re.S).group(1))


FONTS, PHRASES, SPACINGS, SIZES = (_listed(n) for n in ("FONTS", "PHRASES", "SPACINGS", "SIZES"))


def phrase_of(number: int) -> str:
    combos = list(itertools.product(FONTS, PHRASES, SPACINGS, SIZES))
    _, phrase, _, _ = combos[number % len(combos)]
    return phrase.replace(" ", "")


def distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ca != cb))
    return row[len(b)]


def main() -> None:
    read, total, missed = collections.Counter(), collections.Counter(), []
    for line in open(sys.argv[1]):
        if not line.strip().startswith("{"):
            continue
        record = json.loads(line)
        name = Path(record["source"]).name
        number, background, spacing = name.split("-")[:3]
        want = phrase_of(int(number))
        lines = sorted((record.get("text") or {}).get("ocr") or [], key=lambda o: o["box"][0][0])
        got = unicodedata.normalize("NFKC", "".join(o["text"] for o in lines))
        got = re.sub(r"\s", "", got).lower()
        for key in (spacing, background):
            total[key] += 1
        if distance(got, want) <= len(want) / 4:
            for key in (spacing, background):
                read[key] += 1
        else:
            missed.append((name, got))
    for key in sorted(total):
        print(f"{key}: {read[key]} of {total[key]}")
    for name, got in missed:
        print(f"  missed {name}: {got!r}")


if __name__ == "__main__":
    main()
