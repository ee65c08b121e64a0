"""Covers whose lines have their letters split by spaces, an evasion the text rules undo:
four grooming phrases in three of Debian's fonts, at 20 and 32 px, with one, two and three
spaces between letters, on a flat colour and on two scikit-image photos (216 PNGs at
640 x 640). The file names carry the background, the spacing and the size, e.g.
`002-flat-2sp-20.png`.

    target/ocr-oracle-venv/bin/python scripts/ocr-oracle/spaced_letters.py \
        --photos "$SKIMAGE_DATA" --out /tmp/spaced
    target/release/coverguard scan --json --ocr /tmp/spaced/*-flat-*
    target/release/coverguard scan --json --ocr --ocr-every-image /tmp/spaced/*-flat-*

`score_spaced.py` counts the lines read in those records.
"""

import argparse
import itertools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
]
PHRASES = ["snap me katie12", "add me on kik", "text me 5551234", "whats your number"]
SPACINGS = [1, 2, 3]
SIZES = [20, 32]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, required=True,
                    help="the scikit-image data folder (coffee.png, astronaut.png)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    backgrounds = [
        ("flat", None),
        ("coffee", args.photos / "coffee.png"),
        ("astronaut", args.photos / "astronaut.png"),
    ]
    combos = itertools.product(backgrounds, FONTS, PHRASES, SPACINGS, SIZES)
    for n, ((name, photo), font, phrase, spaces, size) in enumerate(combos):
        line = (" " * spaces).join(phrase.replace(" ", ""))
        if photo is None:
            image = Image.new("RGB", (640, 640), (40, 90, 160))
        else:
            image = Image.open(photo).convert("RGB").resize((640, 640))
        ImageDraw.Draw(image).text(
            (20, 300), line, font=ImageFont.truetype(font, size), fill=(255, 255, 255))
        image.save(args.out / f"{n:03d}-{name}-{spaces}sp-{size}.png")


if __name__ == "__main__":
    main()
