#!/usr/bin/env python3
"""How robust is hash-bank matching to everyday image edits?

Run: scripts/robustness/run.sh [--photos DIR] [--out DIR] [--coverguard BIN] ...
(it builds the venv target/robustness-venv once, then runs this file).

What it measures
----------------
A bank holds one entry per *identity* (a picture). Each identity is edited in
ways an uploader edits art (frames, crops, caption bars, stickers, small
rotations, turns and flips, resizes, JPEG, colour changes), and every edited
file is matched against the bank. Recall per edit is "caught / identities"; a
false match is any query (an edit of identity i, or a generated flat graphic)
that matches a *different* identity's entry. Three matchers are compared:

  (a) Meta's reference: the `pdqhash` binding on Pillow-decoded RGB, a bank of
      the originals' plain PDQ hashes; a query is caught when one of its eight
      dihedral hashes is within --ref-threshold (default 31, HMA's) of its own
      identity's hash and its PDQ quality is at least --ref-quality (50).
  (b) coverguard with a hash-only bank: the `pdq` and `md5` lines that
      `coverguard hash --id-from-name` prints for the originals.
  (c) coverguard with an image-built bank: every line it prints, including the
      extra `pdq_*` signal types built from the image.
(b) and (c) run `coverguard scan --json` with both banks at once (matches name
their bank) and are skipped, with the reason printed, when the binary at
--coverguard is missing or does not have `hash`.

The robustness set (deterministic: fixed seeds, stable names)
--------------------------------------------------------------
Photos: the PNG/JPEG files of the scikit-image 0.26.0 wheel (skimage/data),
from --photos or downloaded once with pip into <out>/photos.
Identity rule: a photo is an identity when its shorter side is at least
MIN_SIDE (128) px and its reference PDQ quality is at least --ref-quality
(a bank cannot hold a hash below the quality gate). This keeps the pictures
with flat edges (retina, phantom, page, text) so over-trimming shows; the
photos it leaves out (in 0.26.0: microaneurysms, 102 px; clock_motion,
quality 34) become distractors. Near-duplicates are one identity (NEAR_DUPLICATES:
the stereo motorcycle pair, the two chessboards): the first name in sorted
order is banked and edited, the other is queried as the edit `sibling`.
Identities are split into halves A (for choosing thresholds) and B (for
confirming them) by a seeded shuffle.
Distractors: generated flat graphics (solid colours, two-colour gradients,
geometric shapes, checkerboards, a page of text-like marks) plus the photos
that are not identities; and every other identity is a distractor for each.

Output: a markdown report on stdout and in <out>/report.md, and every raw
result in <out>/results.json.
"""

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image, ImageDraw, ImageEnhance

SKIMAGE = "scikit-image==0.26.0"
MIN_SIDE = 128
# Groups of file stems that show the same scene; the first (sorted) is banked.
NEAR_DUPLICATES = [("motorcycle_left", "motorcycle_right"), ("chessboard_GRAY", "chessboard_RGB")]
DIHEDRAL = ["original", "rot90", "rot180", "rot270", "flipx", "flipy", "flip_plus1", "flip_minus1"]
COLUMNS = ["a", "b", "c"]
COLUMN_TITLES = {"a": "(a) reference", "b": "(b) hash-only", "c": "(c) image-built"}
# coverguard names a bank after its file's stem.
BANK_OF_COLUMN = {"b": "robustness-hash-only", "c": "robustness-image-built"}
SCAN_BATCH = 300
SWEEP = [16, 24, 31, 40, 48, 56, 64]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def seeded(seed, *names):
    """A generator that depends only on the seed and the names, not on run order."""
    return np.random.default_rng([seed] + [zlib.crc32(n.encode()) for n in names])


# ---------------------------------------------------------------- photos


def fetch_photos(out):
    """skimage/data/*.png|*.jpg of the pinned wheel, cached in <out>/photos."""
    photos = out / "photos"
    if photos.is_dir() and any(photos.iterdir()):
        return photos
    with tempfile.TemporaryDirectory() as tmp:
        log(f"downloading {SKIMAGE} with pip (once)")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", SKIMAGE, "-d", tmp],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        photos.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith("skimage/data/") and name.endswith((".png", ".jpg")):
                    (photos / Path(name).name).write_bytes(z.read(name))
    return photos


def load_rgb(path):
    # The reference decoding: first frame, alpha dropped (not composited).
    with Image.open(path) as image:
        return image.convert("RGB")


def choose_identities(photos, min_quality):
    """Returns (identities, distractor_photos); an identity is a dict."""
    files = sorted(p for p in photos.iterdir() if p.suffix in (".png", ".jpg"))
    by_stem = {p.stem: p for p in files}
    sibling_of = {}
    for group in NEAR_DUPLICATES:
        present = sorted(s for s in group if s in by_stem)
        for other in present[1:]:
            sibling_of[other] = present[0]
    identities, distractors = [], []
    for path in files:
        if path.stem in sibling_of:
            continue
        image = load_rgb(path)
        _, quality = pdq_of(image)
        if min(image.size) >= MIN_SIDE and quality >= min_quality:
            siblings = [by_stem[s] for s, head in sorted(sibling_of.items()) if head == path.stem]
            identities.append({"id": path.stem, "path": path, "siblings": siblings,
                               "size": image.size, "quality": quality})
        else:
            distractors.append(path)
    # A sibling of a left-out photo is left out too, as a distractor.
    kept = {i["id"] for i in identities}
    distractors += [by_stem[s] for s, head in sibling_of.items() if head not in kept]
    return identities, distractors


def split_halves(identities, seed):
    ids = sorted(i["id"] for i in identities)
    random.Random(seed).shuffle(ids)
    half = (len(ids) + 1) // 2
    return {i: ("A" if n < half else "B") for n, i in enumerate(ids)}


# ---------------------------------------------------------------- edits

COLOURS = {"black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128),
           "red": (230, 20, 40)}


def noise_canvas(size, rng):
    """A JPEG-ish noisy texture: random 8x8 blocks plus fine grain."""
    w, h = size
    blocks = rng.integers(0, 256, ((h + 7) // 8, (w + 7) // 8, 3))
    tex = np.kron(blocks, np.ones((8, 8, 1)))[:h, :w] + rng.normal(0, 20, (h, w, 3))
    return Image.fromarray(np.clip(tex, 0, 255).astype(np.uint8), "RGB")


def plain_canvas(size, colour, rng):
    if colour == "texture":
        return noise_canvas(size, rng)
    # "jpeg": a dark flat border, made noisy by saving the framed picture as JPEG q60.
    return Image.new("RGB", size, COLOURS.get(colour, (40, 40, 40)))


def frame_pad(image, colour, pct, rng):
    """A border of pct% of each dimension on every side, around the whole picture."""
    w, h = image.size
    bx, by = max(1, round(w * pct / 100)), max(1, round(h * pct / 100))
    canvas = plain_canvas((w + 2 * bx, h + 2 * by), colour, rng)
    canvas.paste(image, (bx, by))
    return canvas


def frame_shrink(image, colour, pct, rng):
    """The same canvas size, the picture shrunk inside a pct% border."""
    w, h = image.size
    bx, by = max(1, round(w * pct / 100)), max(1, round(h * pct / 100))
    canvas = plain_canvas((w, h), colour, rng)
    canvas.paste(image.resize((w - 2 * bx, h - 2 * by), Image.Resampling.LANCZOS), (bx, by))
    return canvas


def crop(image, pct):
    w, h = image.size
    dx, dy = round(w * pct / 100), round(h * pct / 100)
    return image.crop((dx, dy, w - dx, h - dy))


def text_marks(draw, box, rng, ink):
    """Rows of word-like rectangles inside box, as a caption's text would be."""
    x0, y0, x1, y1 = box
    line = max(4, (y1 - y0) // 3)
    y = y0 + line // 3
    while y + line * 2 // 3 <= y1:
        x = x0 + (x1 - x0) // 20
        while True:
            word = int(rng.integers(line, line * 4))
            if x + word > x1 - (x1 - x0) // 20:
                break
            draw.rectangle((x, y, x + word, y + line * 2 // 3), fill=ink)
            x += word + max(2, line // 2)
        y += line


def caption(image, where, pct, rng):
    """A solid dark bar over the top or bottom pct% with light text-like marks."""
    out = image.copy()
    w, h = out.size
    bar = round(h * pct / 100)
    box = (0, 0, w - 1, bar - 1) if where == "top" else (0, h - bar, w - 1, h - 1)
    draw = ImageDraw.Draw(out)
    draw.rectangle(box, fill=(20, 20, 28))
    text_marks(draw, box, rng, (240, 240, 240))
    return out


STICKER_PLACES = {"tl": (0.05, 0.05), "tr": (0.95, 0.05), "bl": (0.05, 0.95),
                  "br": (0.95, 0.95), "center": (0.5, 0.5)}


def sticker(image, place):
    """An opaque round sticker of 10% of the area with a contrasting mark."""
    out = image.copy()
    w, h = out.size
    r = math.sqrt(0.10 * w * h / math.pi)
    fx, fy = STICKER_PLACES[place]
    cx = min(max(fx * w, r + 1), w - r - 2)
    cy = min(max(fy * h, r + 1), h - r - 2)
    draw = ImageDraw.Draw(out)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(250, 200, 0), outline=(0, 0, 0), width=3)
    draw.polygon([(cx - r / 2, cy + r / 3), (cx, cy - r / 2), (cx + r / 2, cy + r / 3)], fill=(200, 0, 60))
    return out


def rotate(image, degrees, style):
    """A small rotation: 'fill' keeps the canvas (black corners), 'crop' keeps
    the largest centred rectangle of the same aspect inside the turned picture."""
    turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))
    if style == "fill":
        return turned
    w, h = image.size
    a = math.radians(abs(degrees))
    s = min(w / (w * math.cos(a) + h * math.sin(a)), h / (w * math.sin(a) + h * math.cos(a)))
    cw, ch = int(w * s) - 2, int(h * s) - 2
    return turned.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))


def resize_long(image, side):
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def gamma(image, g):
    lut = [round(255 * (v / 255) ** g) for v in range(256)] * 3
    return image.point(lut)


def hue(image, degrees):
    h, s, v = image.convert("HSV").split()
    h = h.point(lambda x: (x + round(degrees / 360 * 256)) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def saturation(image, pct):
    return ImageEnhance.Color(image).enhance(pct / 100)


def edit_table():
    """name -> (group, function(image, rng) -> image, file format)."""
    t = {"reencode_png": ("original", lambda im, rng: im, "png")}
    # Uniform or near-uniform frames (a flat colour, or a flat one with JPEG noise): what
    # trimming must catch. A textured border is another picture around the picture, not a
    # frame: it is its own group, reported but not counted with the frames.
    for colour in ["black", "white", "grey", "red", "jpeg"]:
        fmt = "jpeg60" if colour == "jpeg" else "png"
        for pct in [2, 5, 10, 20]:
            t[f"frame_{colour}_{pct}"] = ("frame_pad", lambda im, rng, c=colour, p=pct: frame_pad(im, c, p, rng), fmt)
            t[f"frameshrink_{colour}_{pct}"] = ("frame_shrink", lambda im, rng, c=colour, p=pct: frame_shrink(im, c, p, rng), fmt)
    for pct in [5, 10]:
        t[f"frame_texture_{pct}"] = ("frame_texture", lambda im, rng, p=pct: frame_pad(im, "texture", p, rng), "png")
    for pct in [2, 5, 10]:
        t[f"crop_{pct}"] = ("crop", lambda im, rng, p=pct: crop(im, p), "png")
    for where in ["bottom", "top"]:
        for pct in [10, 20, 25]:
            t[f"caption_{where}_{pct}"] = ("caption", lambda im, rng, w=where, p=pct: caption(im, w, p, rng), "png")
    for place in STICKER_PLACES:
        t[f"sticker_{place}"] = ("sticker", lambda im, rng, p=place: sticker(im, p), "png")
    for deg in [2, -2, 5, -5]:
        for style in ["fill", "crop"]:
            sign = "p" if deg > 0 else "m"
            t[f"rotate_{sign}{abs(deg)}_{style}"] = ("rotate", lambda im, rng, d=deg, s=style: rotate(im, d, s), "png")
    t["mirror"] = ("dihedral", lambda im, rng: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "png")
    t["flip_vertical"] = ("dihedral", lambda im, rng: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM), "png")
    t["rot90"] = ("dihedral", lambda im, rng: im.transpose(Image.Transpose.ROTATE_90), "png")
    t["rot180"] = ("dihedral", lambda im, rng: im.transpose(Image.Transpose.ROTATE_180), "png")
    t["rot270"] = ("dihedral", lambda im, rng: im.transpose(Image.Transpose.ROTATE_270), "png")
    t["resize_half"] = ("resize", lambda im, rng: im.resize((max(1, im.width // 2), max(1, im.height // 2)), Image.Resampling.LANCZOS), "png")
    t["resize_640"] = ("resize", lambda im, rng: resize_long(im, 640), "png")
    for q in [30, 50, 90]:
        t[f"jpeg_{q}"] = ("jpeg", lambda im, rng: im, f"jpeg{q}")
    t["grayscale"] = ("colour", lambda im, rng: im.convert("L"), "png")
    t["gamma_06"] = ("colour", lambda im, rng: gamma(im, 0.6), "png")
    t["hue_30"] = ("colour", lambda im, rng: hue(im, 30), "png")
    t["hue_90"] = ("colour", lambda im, rng: hue(im, 90), "png")
    t["saturation_50"] = ("colour", lambda im, rng: saturation(im, 50), "png")
    t["saturation_150"] = ("colour", lambda im, rng: saturation(im, 150), "png")
    return t


def save(image, path_stem, fmt):
    if fmt.startswith("jpeg"):
        path = path_stem.with_suffix(".jpg")
        image.convert("RGB").save(path, "JPEG", quality=int(fmt[4:]))
    else:
        path = path_stem.with_suffix(".png")
        # Fast compression: the pixels are what matters, and the set is rebuilt each run.
        image.save(path, "PNG", compress_level=1)
    return path


# ---------------------------------------------------------------- distractors


def gradient(size, c0, c1, kind):
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    t = {"h": x / (w - 1), "v": y / (h - 1), "d": (x + y) / (w + h - 2),
         "r": np.hypot(x - w / 2, y - h / 2) / math.hypot(w / 2, h / 2)}[kind]
    c0, c1 = np.array(c0, float), np.array(c1, float)
    return Image.fromarray((c0 + (c1 - c0) * t[..., None]).round().astype(np.uint8), "RGB")


def checkerboard(size, cell, c0=(0, 0, 0), c1=(255, 255, 255)):
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    mask = ((x // cell + y // cell) % 2).astype(bool)
    out = np.where(mask[..., None], np.array(c1, np.uint8), np.array(c0, np.uint8))
    return Image.fromarray(out.astype(np.uint8), "RGB")


def shapes(size, kind, bg, fg):
    image = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(image)
    w, h = size
    if kind == "circle":
        draw.ellipse((w * 0.2, h * 0.2, w * 0.8, h * 0.8), fill=fg)
    elif kind == "square":
        draw.rectangle((w * 0.25, h * 0.25, w * 0.75, h * 0.75), fill=fg)
    elif kind == "triangle":
        draw.polygon([(w * 0.5, h * 0.15), (w * 0.85, h * 0.8), (w * 0.15, h * 0.8)], fill=fg)
    elif kind == "stripes":
        for x in range(0, w, w // 8):
            draw.rectangle((x, 0, x + w // 16, h), fill=fg)
    elif kind == "rings":
        for r in range(min(w, h) // 2, 0, -min(w, h) // 12):
            draw.ellipse((w / 2 - r, h / 2 - r, w / 2 + r, h / 2 + r), outline=fg, width=max(2, r // 10))
    return image


def text_page(size, seed):
    image = Image.new("RGB", size, (250, 250, 245))
    text_marks(ImageDraw.Draw(image), (0, 0, size[0] - 1, size[1] - 1), seeded(seed, "page"), (20, 20, 20))
    return image


def distractor_graphics(seed):
    """name -> image: the flat graphics an art pipeline sees all the time."""
    s = (512, 512)
    g = {}
    for name, c in [("black", (0, 0, 0)), ("white", (255, 255, 255)), ("grey", (128, 128, 128)),
                    ("red", (230, 20, 40)), ("navy", (10, 20, 90)), ("spotify_green", (30, 215, 96))]:
        g[f"solid_{name}"] = Image.new("RGB", s, c)
    for kind in "hvdr":
        g[f"gradient_{kind}_black_white"] = gradient(s, (0, 0, 0), (255, 255, 255), kind)
    g["gradient_h_purple_orange"] = gradient(s, (90, 20, 160), (250, 140, 20), "h")
    g["gradient_d_teal_pink"] = gradient(s, (0, 128, 128), (240, 100, 170), "d")
    for kind in ["circle", "square", "triangle", "stripes", "rings"]:
        g[f"shape_{kind}"] = shapes(s, kind, (255, 255, 255), (0, 0, 0))
    g["shape_circle_colour"] = shapes(s, "circle", (20, 20, 80), (250, 200, 0))
    # Not 64: an 8x8 board of 64 px cells is the chessboard identity itself (turned 90
    # degrees it is the same picture), so it is no distractor.
    for cell in [2, 8, 32, 128, 256]:
        g[f"checker_{cell}"] = checkerboard(s, cell)
    g["checker_64_colour"] = checkerboard((640, 480), 64, (200, 30, 30), (30, 30, 200))
    g["text_page"] = text_page((512, 720), seed)
    g["text_page_wide"] = text_page((720, 300), seed + 1)
    return g


# ---------------------------------------------------------------- the set


def build_set(identities, distractor_photos, out, seed):
    """Writes the files; returns (originals, queries). A query is a dict with
    path, kind ('edit' | 'distractor'), identity (or None) and edit name."""
    root = out / "set"
    if root.exists():
        shutil.rmtree(root)
    (root / "originals").mkdir(parents=True)
    (root / "distractors").mkdir()
    originals, queries = {}, []
    table = edit_table()
    for ident in identities:
        # The banked file is the photo's own bytes, named by the id coverguard reads off its stem.
        original = root / "originals" / (ident["id"] + ident["path"].suffix)
        shutil.copyfile(ident["path"], original)
        originals[ident["id"]] = original
        edits_dir = root / "edits" / ident["id"]
        edits_dir.mkdir(parents=True)
        image = load_rgb(ident["path"])
        for name, (group, fn, fmt) in table.items():
            path = save(fn(image, seeded(seed, ident["id"], name)), edits_dir / name, fmt)
            queries.append({"path": path, "kind": "edit", "identity": ident["id"], "edit": name, "group": group})
        # The banked bytes themselves: a sanity row that md5 and pdq both catch.
        path = edits_dir / ("original_file" + ident["path"].suffix)
        shutil.copyfile(ident["path"], path)
        queries.append({"path": path, "kind": "edit", "identity": ident["id"], "edit": "original_file", "group": "original"})
        for sib in ident["siblings"]:
            path = edits_dir / ("sibling" + sib.suffix)
            shutil.copyfile(sib, path)
            queries.append({"path": path, "kind": "edit", "identity": ident["id"], "edit": "sibling", "group": "near_duplicate"})
    for name, image in distractor_graphics(seed).items():
        path = save(image, root / "distractors" / name, "png")
        queries.append({"path": path, "kind": "distractor", "identity": None, "edit": name, "group": "graphic"})
    for photo in distractor_photos:
        path = root / "distractors" / ("photo_" + photo.name)
        shutil.copyfile(photo, path)
        queries.append({"path": path, "kind": "distractor", "identity": None, "edit": "photo_" + photo.stem, "group": "photo"})
    return originals, queries


# ---------------------------------------------------------------- (a) reference


def pdq_of(image):
    """Plain PDQ bits (256 uint8) and quality, as the reference computes them."""
    bits, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    return np.asarray(bits, np.uint8), int(quality)


def dihedral_of(path):
    """The eight dihedral PDQ bit vectors (DIHEDRAL order) and the quality."""
    hashes, quality = pdqhash.compute_dihedral(np.asarray(load_rgb(path)))
    return np.asarray(hashes, np.uint8), int(quality)


def to_hex(bits):
    return np.packbits(bits).tobytes().hex()


def reference(originals, queries, threshold, min_quality):
    """Per query: distance (min over dihedral) to every bank entry, the matching
    transform, quality, caught and false matches."""
    ids = sorted(originals)
    bank = np.stack([pdq_of(load_rgb(originals[i]))[0] for i in ids])
    results = []
    for q in queries:
        dih, quality = dihedral_of(q["path"])
        dist = (dih[:, None, :] != bank[None, :, :]).sum(-1)  # (8, bank)
        best = dist.min(0)
        gate = quality >= min_quality
        own = ids.index(q["identity"]) if q["identity"] else None
        others = [(int(best[k]), ids[k]) for k in range(len(ids)) if k != own]
        closest_other = min(others)
        results.append({
            "quality": quality,
            "hash": to_hex(dih[0]),
            "own_distance": int(best[own]) if own is not None else None,
            "own_transform": DIHEDRAL[int(dist[:, own].argmin())] if own is not None else None,
            "caught": bool(gate and own is not None and best[own] <= threshold),
            "false": [{"entry": e, "distance": d} for d, e in others if gate and d <= threshold],
            "closest_other": {"entry": closest_other[1], "distance": closest_other[0]},
            "distances": [int(d) for d in best],
        })
    return {"bank": {i: to_hex(b) for i, b in zip(ids, bank)}, "queries": results}


# ---------------------------------------------------------------- (b), (c) coverguard


def coverguard_usable(binary):
    """None when `coverguard hash` is there, else why (b) and (c) are skipped."""
    if not Path(binary).is_file():
        return f"{binary} does not exist (not built yet; this script never builds it)"
    try:
        run = subprocess.run([binary, "hash", "--help"], capture_output=True, text=True, timeout=60)
    except OSError as e:
        return f"{binary} hash --help could not run: {e}"
    if run.returncode != 0:
        return f"`{binary} hash --help` exited {run.returncode}: {(run.stderr or run.stdout).strip()[:300]}"
    return None


def parse_hash_lines(text):
    """`coverguard hash` stdout -> [(signal_type, hash, id)] (HMA bank lines)."""
    lines = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            parts = line.split()
            lines.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    return lines


def find_matches(obj):
    """Every bank match anywhere in a scan record: dicts with bank, signal, entry."""
    found = []
    if isinstance(obj, dict):
        if {"bank", "signal", "entry"} <= obj.keys():
            found.append(obj)
        else:
            for v in obj.values():
                found += find_matches(v)
    elif isinstance(obj, list):
        for v in obj:
            found += find_matches(v)
    return found


def parse_scan_output(text):
    """`coverguard scan --json` stdout -> {source: record}."""
    records = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            record = json.loads(line)
            records[record["source"]] = record
    return records


def build_banks(binary, originals, out):
    """Writes the (b) and (c) bank files; returns their paths and the raw lines."""
    paths = [str(originals[i]) for i in sorted(originals)]
    run = subprocess.run([binary, "hash", "--id-from-name", *paths], capture_output=True, text=True)
    # 1 means a hash under the quality gate was left out (said on stderr); 2 a failure.
    if run.returncode not in (0, 1):
        raise RuntimeError(f"coverguard hash exited {run.returncode}: {run.stderr.strip()[:500]}")
    if run.stderr.strip():
        log("coverguard hash stderr:", run.stderr.strip())
    lines = parse_hash_lines(run.stdout)
    banks = {}
    for column, keep in [("b", lambda s: s in ("pdq", "md5")), ("c", lambda s: True)]:
        path = out / (BANK_OF_COLUMN[column] + ".txt")
        path.write_text("".join(f"{s} {h} {i}\n" for s, h, i in lines if keep(s)))
        banks[column] = path
    return banks, lines


def scan(binary, banks, queries):
    """Runs scan over all queries in batches; returns {path: record}."""
    bank_args = [a for column in sorted(banks) for a in ("--bank", str(banks[column]))]
    records = {}
    for start in range(0, len(queries), SCAN_BATCH):
        batch = [str(q["path"]) for q in queries[start:start + SCAN_BATCH]]
        run = subprocess.run([binary, "scan", "--json", *bank_args, *batch], capture_output=True, text=True)
        found = parse_scan_output(run.stdout)
        if run.returncode not in (0, 1):
            # 2 with records is a per-input error (kept in the record); 2 with none
            # is a refused command line or bank, which would fail every batch alike.
            if not found:
                raise RuntimeError(f"coverguard scan exited {run.returncode}: {run.stderr.strip()[:800]}")
            log(f"coverguard scan exited {run.returncode} (batch at {start}): {run.stderr.strip()[:500]}")
        records.update(found)
        log(f"scanned {min(start + SCAN_BATCH, len(queries))}/{len(queries)}")
    return records


def coverguard_results(records, queries):
    """Per column, per query: caught, true distances, false matches, error."""
    out = {c: [] for c in BANK_OF_COLUMN}
    for q in queries:
        record = records.get(str(q["path"]))
        for column, bank in BANK_OF_COLUMN.items():
            if record is None or "error" in record:
                why = "no output" if record is None else record["error"]
                out[column].append({"caught": False, "own": [], "false": [], "error": why})
                continue
            matches = [m for m in find_matches(record) if m.get("bank") == bank]
            own = [m for m in matches if q["identity"] and m["entry"] == q["identity"]]
            false = [m for m in matches if m["entry"] != q["identity"]]
            out[column].append({"caught": bool(own), "own": own, "false": false, "error": None})
    return out


def hamming(a, b):
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def pdq_records(record):
    """Every PDQ record of a scan record: the image's own and each view's."""
    found = [record["pdq"]] if "pdq" in record else []
    return found + [v["pdq"] for v in record.get("views", []) if "pdq" in v]


def queries_by_entry_type(pdq, min_quality):
    """What coverguard queries each type of bank line with (as src/matching/robust.rs
    does): {line type: [(signal kind, hashes)]}, gated on quality as the matcher is."""
    whole_ok = pdq["quality"] >= min_quality
    whole = []
    if whole_ok:
        whole += [("meta-dihedral", pdq["dihedral"]), ("turned", pdq.get("turned", []))]
    whole += [("trimmed", t["turned"]) for t in pdq.get("trimmed", []) if t["quality"] >= min_quality]
    out = {"pdq": whole}
    for region in ("center90", "center80"):
        # A crop of the banked image: the whole upload against the entry's centre.
        out[f"pdq_{region}"] = [(f"region:{region}", pdq.get("turned", []))] if whole_ok else []
    for g in pdq.get("regions", []):
        if g["region"] in ("top75", "bottom75") and g["quality"] >= min_quality:
            out[f"pdq_{g['region']}"] = [(f"region:{g['region']}", [g["hash"]])]
    return out


def coverguard_distances(records, queries, bank_lines, min_quality):
    """Per column, per query: the nearest distance to every bank entry over every signal
    coverguard matches with, whatever the threshold ({entry: (distance, signal kind)}).
    A scan reports only matches under the threshold; this is how close the rest came."""
    keep = {"b": lambda s: s == "pdq", "c": lambda s: s.startswith("pdq")}
    out = {c: [] for c in keep}
    for q in queries:
        record = records.get(str(q["path"]))
        pdqs = [] if record is None or "error" in record else pdq_records(record)
        for column, wanted in keep.items():
            nearest = {}
            for pdq in pdqs:
                asked = queries_by_entry_type(pdq, min_quality)
                for signal, bank_hash, entry in bank_lines:
                    if not wanted(signal):
                        continue
                    for kind, hashes in asked.get(signal, []):
                        for h in hashes:
                            d = hamming(h, bank_hash)
                            if entry not in nearest or d < nearest[entry][0]:
                                nearest[entry] = (d, f"{signal} {kind}")
            out[column].append(nearest)
    return out


# ---------------------------------------------------------------- report


def median(xs):
    return statistics.median(xs) if xs else None


def fmt(x):
    return "–" if x is None else (f"{x:g}" if isinstance(x, (int, float)) else str(x))


def per_edit_rows(queries, ref, cg, halves):
    """Ordered edit name -> per-column caught counts and distances."""
    rows = {}
    for n, q in enumerate(queries):
        if q["kind"] != "edit":
            continue
        row = rows.setdefault(q["edit"], {"group": q["group"], "n": 0, "lowq": 0, "dist": [],
                                          "caught": {c: 0 for c in COLUMNS},
                                          "half": {h: {c: [0, 0] for c in COLUMNS} for h in "AB"},
                                          "cg_dist": {c: [] for c in BANK_OF_COLUMN}})
        row["n"] += 1
        r = ref["queries"][n]
        row["dist"].append(r["own_distance"])
        row["lowq"] += r["quality"] < ref["min_quality"]
        caught = {"a": r["caught"]}
        for c in cg:
            caught[c] = cg[c][n]["caught"]
            row["cg_dist"][c] += [m["distance"] for m in cg[c][n]["own"] if "distance" in m]
        for c, hit in caught.items():
            row["caught"][c] += hit
            row["half"][halves[q["identity"]]][c][0] += hit
            row["half"][halves[q["identity"]]][c][1] += 1
    return rows


def false_summary(queries, ref, cg):
    """Per column: queries with a false match, split distractor / other identity."""
    out = {}
    for c in COLUMNS:
        if c != "a" and c not in cg:
            continue
        counts, pairs = {"distractor": 0, "edit": 0}, []
        for n, q in enumerate(queries):
            false = ref["queries"][n]["false"] if c == "a" else cg[c][n]["false"]
            if false:
                counts[q["kind"]] += 1
                for m in false:
                    pairs.append((m.get("distance", 0), str(q["path"]), m["entry"], m.get("signal", "pdq")))
        out[c] = {"counts": counts, "closest": min(pairs) if pairs else None, "n_pairs": len(pairs)}
    return out


def closest_false_reference(queries, ref, min_quality, kinds=("edit", "distractor")):
    """The nearest (query, other identity) pair for (a), gated queries only."""
    best = None
    for n, q in enumerate(queries):
        r = ref["queries"][n]
        if r["quality"] >= min_quality and q["kind"] in kinds:
            cand = (r["closest_other"]["distance"], str(q["path"]), r["closest_other"]["entry"], q["kind"])
            best = min(best, cand) if best else cand
    return best


def sweep(queries, ref, halves, min_quality):
    """(a) recall and false-matching queries at other thresholds, per half."""
    rows = []
    for t in SWEEP:
        row = {"T": t}
        for h in "AB":
            idx = [n for n, q in enumerate(queries) if q["kind"] == "edit" and halves[q["identity"]] == h]
            caught = sum(ref["queries"][n]["quality"] >= min_quality and ref["queries"][n]["own_distance"] <= t for n in idx)
            row[h] = (caught, len(idx))
        row["false"] = sum(ref["queries"][n]["quality"] >= min_quality and ref["queries"][n]["closest_other"]["distance"] <= t
                           for n in range(len(queries)))
        rows.append(row)
    return rows


def match_kind(match):
    """A match's signal plus the kind of its transform: 'pdq meta-dihedral',
    'pdq turned', 'pdq trimmed', 'pdq_top80 region', 'md5' (the transform's
    detail after ':' or '+' is dropped)."""
    transform = match.get("transform")
    if not transform:
        return match.get("signal", "?")
    kind = transform.split("+")[0].split(":")[0]
    return f"{match.get('signal', '?')} {'meta-dihedral' if kind in DIHEDRAL else kind}"


def signal_counts(results):
    """match kind -> (files whose own matches include it, files caught by it alone)."""
    counts = {}
    for r in results:
        signals = {match_kind(m) for m in r["own"]}
        for signal in signals:
            with_it, alone = counts.get(signal, (0, 0))
            counts[signal] = (with_it + 1, alone + (len(signals) == 1))
    return counts


DISTANCE_BINS = [0, 16, 32, 48, 64, 80, 96, 257]


def pair_distances(queries, ref, cgd, min_quality):
    """Per column: (true pair distances, false pairs as (distance, query, entry, signal, half
    of the query)). A true pair is an edit and its own identity's entry; a false pair is any
    query and another identity's entry. Queries under the quality gate match nothing, so
    only their trimmed pictures and regions count (coverguard) or nothing (reference)."""
    ids = list(ref["bank"])  # the order of each query's "distances"
    out = {}
    for c in ["a"] + sorted(cgd):
        true, false = [], []
        for n, q in enumerate(queries):
            if c == "a":
                r = ref["queries"][n]
                if r["quality"] < min_quality:
                    continue
                nearest = {e: (d, "pdq meta-dihedral") for e, d in zip(ids, r["distances"])}
            else:
                nearest = cgd[c][n]
            for entry, (d, signal) in nearest.items():
                if q["identity"] and entry == q["identity"]:
                    if q["kind"] == "edit":
                        true.append(d)
                else:
                    false.append((d, str(q["path"]), entry, signal, q["identity"]))
        out[c] = (true, false)
    return out


def distance_sections(args, queries, ref, cgd, halves):
    """The distance distribution of true and false pairs, and the closest false pair per
    half, for every column."""
    pairs = pair_distances(queries, ref, cgd, args.ref_quality)
    bins = list(zip(DISTANCE_BINS, DISTANCE_BINS[1:]))
    L = ["", "## Distances of true and false pairs", "",
         "Every (query, bank entry) pair at its nearest over every signal the matcher uses, "
         "whatever the threshold. True: an edit and its own identity (edits that are not caught "
         "included); false: any query and another identity's entry.", ""]
    head = ["pairs"] + [f"{lo}–{hi - 1}" for lo, hi in bins]
    L += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c, (true, false) in pairs.items():
        for name, ds in [("true", true), ("false", [f[0] for f in false])]:
            counts = [sum(lo <= d < hi for d in ds) for lo, hi in bins]
            L.append(f"| {COLUMN_TITLES[c]} {name} ({len(ds)}) | " + " | ".join(map(str, counts)) + " |")
    L += ["", f"Closest false pair against the threshold T = {args.ref_threshold}, per half of the "
          "identities (distractors in neither):", ""]
    L += ["| column | half A | half B | distractors |", "|---|---|---|---|"]
    for c, (_, false) in pairs.items():
        cells = []
        for which in ("A", "B", None):
            among = [f for f in false if (halves.get(f[4]) if f[4] else None) == which]
            if among:
                d, path, entry, signal, _ = min(among)
                cells.append(f"{d} (`{Path(path).name}` to `{entry}`, {signal})")
            else:
                cells.append("–")
        L.append(f"| {COLUMN_TITLES[c]} | " + " | ".join(cells) + " |")
    return L


def report(args, identities, halves, queries, ref, cg, cgd, skipped, elapsed):
    ids = [i["id"] for i in identities]
    cols = [c for c in COLUMNS if c == "a" or c in cg]
    rows = per_edit_rows(queries, ref, cg, halves)
    L = ["# Bank-matching robustness", ""]
    L.append(f"{len(ids)} identities, {sum(q['kind'] == 'edit' for q in queries)} edited files, "
             f"{sum(q['kind'] == 'distractor' for q in queries)} distractors. (a): pdqhash, threshold "
             f"{args.ref_threshold}, quality gate {args.ref_quality}. Run time {elapsed:.0f} s.")
    L.append("")
    L.append("Half A (threshold selection): " + ", ".join(i for i in ids if halves[i] == "A"))
    L.append("Half B (confirmation): " + ", ".join(i for i in ids if halves[i] == "B"))
    if skipped:
        L += ["", f"(b) and (c) skipped: {skipped}"]
    L += ["", "## Recall per edit (caught / identities)", ""]
    head = ["edit"] + [COLUMN_TITLES[c] for c in cols] + ["(a) median / max own distance", "(a) quality < gate"]
    head += [f"{COLUMN_TITLES[c]} median / max match distance" for c in cols if c != "a"]
    L += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows.items():
        dist = row["dist"]
        cells = [name] + [f"{row['caught'][c]}/{row['n']}" for c in cols]
        cells.append(f"{fmt(median(dist))} / {fmt(max(dist))}")
        cells.append(str(row["lowq"]))
        cells += [f"{fmt(median(row['cg_dist'][c]))} / {fmt(max(row['cg_dist'][c], default=None))}" for c in cols if c != "a"]
        L.append("| " + " | ".join(cells) + " |")
    total = {c: (sum(r["caught"][c] for r in rows.values()), sum(r["n"] for r in rows.values())) for c in cols}
    L.append("| **all edits** | " + " | ".join(f"**{total[c][0]}/{total[c][1]}**" for c in cols) + " |" + " |" * (len(head) - 1 - len(cols)))
    for h in "AB":
        L.append(f"| all edits, half {h} | " + " | ".join(
            f"{sum(r['half'][h][c][0] for r in rows.values())}/{sum(r['half'][h][c][1] for r in rows.values())}" for c in cols)
            + " |" + " |" * (len(head) - 1 - len(cols)))
    fs = false_summary(queries, ref, cg)
    L.append("| **false matches** (queries: distractors + edits of other identities) | " + " | ".join(
        f"**{fs[c]['counts']['distractor']} + {fs[c]['counts']['edit']}**" for c in cols) + " |" + " |" * (len(head) - 1 - len(cols)))
    L += ["", "## Distance per edit group", "",
          "(a): own distance = min over the 8 dihedral hashes to the identity's bank hash, every file (gate or not). "
          "(b)/(c): distances of the reported own matches only (a scan reports nothing beyond the bank's threshold).", ""]
    groups = {}
    for row in rows.values():
        g = groups.setdefault(row["group"], {"dist": [], **{c: [] for c in BANK_OF_COLUMN}})
        g["dist"] += row["dist"]
        for c in cg:
            g[c] += row["cg_dist"][c]
    head = ["group", "(a) median", "(a) max", "(a) within T"] + [f"{COLUMN_TITLES[c]} median / max" for c in cols if c != "a"]
    L += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, g in groups.items():
        within = sum(d <= args.ref_threshold for d in g["dist"])
        cells = [name, fmt(median(g["dist"])), fmt(max(g["dist"])), f"{within}/{len(g['dist'])}"]
        cells += [f"{fmt(median(g[c]))} / {fmt(max(g[c], default=None))}" for c in cols if c != "a"]
        L.append("| " + " | ".join(cells) + " |")
    L += ["", "## False matches", ""]
    cf = closest_false_reference(queries, ref, args.ref_quality)
    if cf:
        L.append(f"- (a) closest false pair (query quality >= {args.ref_quality}): `{cf[1]}` ({cf[3]}) to `{cf[2]}`, "
                 f"distance {cf[0]} against T = {args.ref_threshold}.")
    cd = closest_false_reference(queries, ref, args.ref_quality, ("distractor",))
    if cd:
        L.append(f"- (a) closest distractor: `{cd[1]}` to `{cd[2]}`, distance {cd[0]}.")
    for c in cols:
        s = fs[c]
        line = (f"- {COLUMN_TITLES[c]}: {s['counts']['distractor']} distractors and {s['counts']['edit']} edited files "
                f"matched another identity ({s['n_pairs']} pairs)")
        if s["closest"]:
            d, path, entry, signal = s["closest"]
            line += f"; closest: `{path}` to `{entry}` ({signal}), distance {d}"
        L.append(line + ".")
    for c in cg:
        L += ["", f"## {COLUMN_TITLES[c]}: edited files caught, by signal and transform kind", "",
              "| signal, transform kind | files caught with it | caught by it alone |", "|---|---|---|"]
        for signal, (with_it, alone) in sorted(signal_counts(cg[c]).items()):
            L.append(f"| {signal} | {with_it} | {alone} |")
    L += distance_sections(args, queries, ref, cgd, halves)
    L += ["", "## (a) at other thresholds", "", "| T | recall A | recall B | false-matching queries |", "|---|---|---|---|"]
    for row in sweep(queries, ref, halves, args.ref_quality):
        L.append(f"| {row['T']} | {row['A'][0]}/{row['A'][1]} | {row['B'][0]}/{row['B'][1]} | {row['false']} |")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--photos", type=Path, help="directory of the skimage sample photos (default: fetched with pip)")
    p.add_argument("--out", type=Path, default=Path("target/robustness"))
    p.add_argument("--coverguard", default="target/release/coverguard")
    p.add_argument("--ref-threshold", type=int, default=31)
    p.add_argument("--ref-quality", type=int, default=50)
    p.add_argument("--seed", type=int, default=20261130)
    p.add_argument("--skip-coverguard", action="store_true", help="measure (a) only")
    args = p.parse_args()
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    photos = args.photos or fetch_photos(args.out)

    identities, distractor_photos = choose_identities(photos, args.ref_quality)
    halves = split_halves(identities, args.seed)
    for i in identities:
        sib = "".join(f" + sibling {s.name}" for s in i["siblings"])
        log(f"identity {i['id']:20s} half {halves[i['id']]}  {i['size'][0]}x{i['size'][1]} q{i['quality']}{sib}")
    log("photos used as distractors:", ", ".join(p.name for p in distractor_photos) or "none")

    originals, queries = build_set(identities, distractor_photos, args.out, args.seed)
    log(f"built {len(queries)} query files in {time.monotonic() - started:.0f} s")

    ref = reference(originals, queries, args.ref_threshold, args.ref_quality)
    ref["min_quality"] = args.ref_quality
    log(f"(a) done at {time.monotonic() - started:.0f} s")

    cg, cgd, skipped, bank_lines = {}, {}, None, []
    if args.skip_coverguard:
        skipped = "--skip-coverguard"
    else:
        skipped = coverguard_usable(args.coverguard)
    if skipped is None:
        try:
            banks, bank_lines = build_banks(args.coverguard, originals, args.out)
            records = scan(args.coverguard, banks, queries)
            cg = coverguard_results(records, queries)
            cgd = coverguard_distances(records, queries, bank_lines, args.ref_quality)
        except (RuntimeError, OSError, json.JSONDecodeError, KeyError, ValueError) as e:
            skipped, cg, cgd = f"coverguard failed: {e}", {}, {}
    if skipped:
        log(f"(b) and (c) skipped: {skipped}")

    elapsed = time.monotonic() - started
    text = report(args, identities, halves, queries, ref, cg, cgd, skipped, elapsed)
    (args.out / "report.md").write_text(text)
    raw = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "identities": [{"id": i["id"], "half": halves[i["id"]], "file": i["path"].name,
                        "siblings": [s.name for s in i["siblings"]], "quality": i["quality"]} for i in identities],
        "reference_bank": ref["bank"],
        "coverguard_bank_lines": bank_lines,
        "coverguard_skipped": skipped,
        "queries": [{**{k: str(v) if k == "path" else v for k, v in q.items()}, "a": ref["queries"][n],
                     **{c: cg[c][n] for c in cg},
                     **{f"{c}_nearest": cgd[c][n] for c in cgd}} for n, q in enumerate(queries)],
    }
    (args.out / "results.json").write_text(json.dumps(raw, indent=1))
    print(text)


if __name__ == "__main__":
    main()
