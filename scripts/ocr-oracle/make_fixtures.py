#!/usr/bin/env python3
"""OCR oracle fixture: what rapidocr_onnxruntime 1.4.4's own Python pipeline reads.

Run through scripts/ocr-oracle/run.sh, which builds the venv from requirements.txt.

Renders, deterministically (fixed seed, pinned Pillow with its own FreeType, Debian's
DejaVu and Liberation fonts), into tests/fixtures/ocr/:
  text-NN.png     36 covers of at most 640 px: one to three lines of cover-like or
                  grooming-like Latin text, 12/16/24/40/72 px tall ("Hg" ink height),
                  at 0, +-5, +-15 degrees (one image at 90), on flat colours and on
                  crops of the scikit-image photos;
  skimage-text.png  scikit-image's text.png, copied as is (no ground truth);
  notext-N.png    6 images with no text (photo crops, flat fills);
  large-N.jpg     3 images 3000 px on the long side (upscaled photo, rendered text),
                  JPEG quality 90.
--inks same-luma draws every line in a colour of the luma of what lies under it (the
same lines in the same places as with contrasting inks, for a seed): text that stands
out by hue alone.
Then runs rapidocr on every file (by path, as a user would) in three modes and writes
rapidocr-1.4.4.json (sorted keys, deterministic) and README.md (with a summary and the
timings of this run, which are not in the JSON).

Modes:
  default     RapidOCR(): its config.yaml (det limit_type min, limit_side_len 736,
              use_cls true, text_score 0.5).
  max736      detection at a long side of at most 736 px. rapidocr 1.4.4 accepts
              RapidOCR(det_limit_type="max", det_limit_side_len=736) (the "det_" prefix
              is stripped into the Det config), but its TextDetector.get_preprocess
              ignores limit_side_len when limit_type is "max" and picks 960, 1500 or
              2000 from the image's long side. So this mode builds the engine with those
              keywords and then pins the detector's resize to DetPreProcess(736, "max");
              nothing else in the pipeline is touched.
  max_kwargs  the same keywords without the pin: what 1.4.4 really does with them.
"""

import argparse
import copy
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import PIL
import pyclipper
import shapely
from PIL import Image, ImageDraw, ImageFont
from shapely.geometry import Polygon

import rapidocr_onnxruntime
from rapidocr_onnxruntime import RapidOCR
from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

RAPIDOCR_VERSION = "1.4.4"
SEED = 20250611
JSON_NAME = f"rapidocr-{RAPIDOCR_VERSION}.json"

DEJAVU = "/usr/share/fonts/truetype/dejavu/"
LIBERATION = "/usr/share/fonts/truetype/liberation/"
FONTS = [
    ("DejaVu Sans", DEJAVU + "DejaVuSans.ttf"),
    ("DejaVu Sans Bold", DEJAVU + "DejaVuSans-Bold.ttf"),
    ("DejaVu Serif", DEJAVU + "DejaVuSerif.ttf"),
    ("Liberation Sans", LIBERATION + "LiberationSans-Regular.ttf"),
    ("Liberation Serif", LIBERATION + "LiberationSerif-Regular.ttf"),
    ("Liberation Mono", LIBERATION + "LiberationMono-Regular.ttf"),
]

HEIGHTS = [12, 16, 24, 40, 72]
# "contrast": inks darker or lighter than the background; "same-luma": see same_luma_ink.
INKS_MODE = "contrast"
ANGLES = [0, 5, -5, 15, -15, 0]
N_TEXT = 36
INDEX_90 = 20  # the one cover whose text is turned 90 degrees (counter-clockwise)

# Cover-like titles first, then the kind of text the service screens for. Fictional
# numbers (555-01xx) and handles; Latin only (the recogniser is Chinese + Latin).
STRINGS = [
    "SUMMER VIBES 2024",
    "chill beats to study to",
    "Road Trip Mix",
    "Late Night Drive",
    "Workout Hits Vol. 3",
    "Best of 90s R&B",
    "Sad Girl Autumn",
    "Gym Motivation!!",
    "Lo-Fi Sunday Morning",
    "Party Mix #7",
    "Throwback Thursday",
    "Songs 4 U <3",
    "Coffee & Jazz",
    "Rainy Days",
    "TOP 50 HITS",
    "Hey, it's 2 AM...",
    "Vol. 2 (Deluxe)",
    "100% Pure Hits",
    "Cafe Mornings",
    "Indie Folk / Acoustic",
    "Feel Good Friday",
    "BEACH PARTY '25",
    "add me on snap: lily_2010",
    "text me 555 0147",
    "dm me on insta @mia.xo",
    "im 12",
    "send pics",
    "kik me: jenny_14",
    "call 555-0123 after school",
    "whats ur snap?",
    "I'm 13 btw",
    "follow @beatsbyray",
    "sk8rgirl@example.com",
]

FLATS = [  # name, rgb, tone
    ("white", (255, 255, 255), "light"),
    ("black", (0, 0, 0), "dark"),
    ("cream", (246, 238, 220), "light"),
    ("navy", (18, 28, 66), "dark"),
    ("pink", (250, 212, 226), "light"),
    ("forest", (22, 62, 42), "dark"),
    ("sky", (205, 228, 250), "light"),
    ("plum", (72, 22, 92), "dark"),
    ("orange", (240, 140, 40), "mid"),
]
INKS = {
    "light": [(0, 0, 0), (20, 30, 80), (150, 20, 30), (60, 60, 60)],
    "dark": [(255, 255, 255), (255, 220, 60), (255, 120, 180), (120, 230, 255)],
    "mid": [(0, 0, 0), (255, 255, 255)],
}
PHOTOS = [
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "camera.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
    "coins.png",
]
FLAT_SIZES = [(640, 640), (600, 600), (640, 360), (512, 512), (480, 640), (640, 480)]
PHOTO_SIZES = [(400, 400), (360, 360), (320, 400), (400, 300), (320, 320), (384, 384)]

LARGE = [  # photo, size, angle, line heights
    ("rocket.jpg", (2000, 3000), 0, [24, 72, 192]),
    ("coffee.png", (3000, 2000), 5, [36, 96, 160]),
    ("motorcycle_left.png", (3000, 2024), -15, [48, 120, 240]),
]
NOTEXT = [  # name, photo or flat rgb, canvas size
    ("notext-0.png", "coffee.png", (320, 320)),
    ("notext-1.png", "chelsea.png", (300, 300)),
    ("notext-2.png", "hubble_deep_field.jpg", (320, 320)),
    ("notext-3.png", "brick.png", (384, 384)),
    ("notext-4.png", (246, 238, 220), (640, 640)),
    ("notext-5.png", (18, 28, 66), (640, 640)),
]

MARGIN = 8
GAP = 6


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def provisioned_photos(binary):
    if not Path(binary).exists():
        sys.exit(
            f"{binary} is missing: build coverguard (cargo build --release --bin coverguard) "
            "or pass --photos DIR (scikit-image's skimage/data folder)"
        )
    out = subprocess.run(
        [binary, "models", "fetch", "--test-data"], check=True, capture_output=True, text=True
    ).stdout
    paths = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return Path(paths["test data"].strip()) / "skimage" / "data"


def debian_package(path):
    try:
        owner = subprocess.run(
            ["dpkg", "-S", path], check=True, capture_output=True, text=True
        ).stdout.split(":")[0]
        version = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", owner], check=True, capture_output=True, text=True
        ).stdout
        return owner, version
    except (OSError, subprocess.CalledProcessError):
        return "unknown", "unknown"


# ---------------------------------------------------------------- rendering

_font_cache = {}


def font_for_height(path, height):
    """The integer size at which the ink of "Hg" (cap top to descender) is `height` px."""
    key = (path, height)
    if key not in _font_cache:
        best = None
        for size in range(max(4, height // 2), height * 2 + 1):
            l, t, r, b = ImageFont.truetype(path, size).getbbox("Hg")
            d = abs((b - t) - height)
            if best is None or d < best[0]:
                best = (d, size)
        _font_cache[key] = best[1]
    size = _font_cache[key]
    return ImageFont.truetype(path, size), size


def rotate_point(x, y, cx, cy, angle):
    """Where PIL's Image.rotate(angle, center=(cx, cy)) (counter-clockwise) moves (x, y)."""
    a = math.radians(angle)
    dx, dy = x - cx, y - cy
    return cx + dx * math.cos(a) + dy * math.sin(a), cy - dx * math.sin(a) + dy * math.cos(a)


def render_line(text, font, angle, fill, stroke, stroke_fill):
    """RGBA tile of the rotated line cropped to its ink, and the text box's corners in it."""
    l, t, r, b = font.getbbox(text, stroke_width=stroke)
    tw, th = r - l, b - t
    side = int(math.ceil(math.hypot(tw, th))) + 8
    ox, oy = (side - tw) // 2 - l, (side - th) // 2 - t
    edge = stroke_fill if stroke else fill
    tile = Image.new("RGBA", (side, side), (*edge, 0))
    ImageDraw.Draw(tile).text(
        (ox, oy), text, font=font, fill=(*fill, 255), stroke_width=stroke, stroke_fill=(*edge, 255)
    )
    c = side / 2
    if angle:
        tile = tile.rotate(angle, resample=Image.BICUBIC, center=(c, c))
    corners = [(ox + l, oy + t), (ox + r, oy + t), (ox + r, oy + b), (ox + l, oy + b)]
    quad = [rotate_point(x, y, c, c, angle) for x, y in corners]
    box = tile.getchannel("A").getbbox()
    tile = tile.crop(box)
    quad = [(x - box[0], y - box[1]) for x, y in quad]
    return tile, quad


def place(rng, size, tile_size, taken):
    W, H = size
    w, h = tile_size
    if w > W - 2 * MARGIN or h > H - 2 * MARGIN:
        return None
    for _ in range(400):
        x = rng.randint(MARGIN, W - MARGIN - w)
        y = rng.randint(MARGIN, H - MARGIN - h)
        if all(
            x + w + GAP <= a or x >= c + GAP or y + h + GAP <= b or y >= d + GAP
            for a, b, c, d in taken
        ):
            return x, y
    return None


def luminance(img, box):
    region = img.convert("L").crop(box)
    return float(np.asarray(region, dtype=np.float64).mean())


def photo_crop(photo, size, rng):
    W, H = size
    iw, ih = photo.size
    cw = min(iw, ih * W / H)
    f = rng.uniform(0.65, 1.0)
    cw = int(cw * f)
    ch = int(cw * H / W)
    x0 = rng.randint(0, iw - cw)
    y0 = rng.randint(0, ih - ch)
    box = (x0, y0, x0 + cw, y0 + ch)
    return photo.crop(box).resize(size, Image.LANCZOS), list(box)


def luma(rgb):
    """BT.601 luma, as coverguard's gate and OpenCV's grey conversion weigh the channels."""
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def same_luma_ink(canvas, box):
    """The colour of the luma of what is under `box` that lies furthest from its mean
    colour: grey moved as far as the channels allow along one of six hue directions
    that carry no luma. Text in it stands out by hue alone."""
    region = np.asarray(canvas.convert("RGB").crop(box), dtype=np.float64)
    mean = region.reshape(-1, 3).mean(axis=0)
    level = luma(mean)
    best, best_distance = None, -1.0
    for hue in [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]:
        direction = np.array(hue, dtype=np.float64) - luma(hue)
        reach = min(
            ((255.0 - level) / d if d > 0 else level / -d) for d in direction if d != 0
        )
        colour = np.clip(np.round(level + reach * direction), 0, 255)
        distance = float(np.linalg.norm(colour - mean))
        if distance > best_distance:
            best, best_distance = tuple(int(c) for c in colour), distance
    return best


def ink_for(canvas, bg, box, rng, stroke):
    """Fill and stroke colours that stand out from what is under `box`."""
    if bg["type"] == "flat":
        tone = bg["tone"]
    else:
        tone = "light" if luminance(canvas, box) >= 128 else "dark"
    fill = rng.choice(INKS[tone])
    if INKS_MODE == "same-luma":
        # Drawn from the generator all the same, so that a seed lays out the same lines.
        return same_luma_ink(canvas, box), None
    stroke_fill = (255, 255, 255) if tone == "light" else (0, 0, 0)
    return fill, (stroke_fill if stroke else None)


def draw_lines(canvas, bg, specs, angle, rng, usage, photo_bg):
    """Draws up to len(specs) lines; each spec is (height, font index). Returns ground truth."""
    taken, drawn = [], []
    for height, font_index in specs:
        font_name, font_path = FONTS[font_index]
        font, size = font_for_height(font_path, height)
        stroke = max(1, round(height / 14)) if photo_bg and rng.random() < 0.6 else 0
        order = sorted(STRINGS, key=lambda s: (usage[s], rng.random()))
        for text in order:
            tile, _ = render_line(text, font, angle, (255, 255, 255), stroke, (0, 0, 0))
            pos = place(rng, canvas.size, tile.size, taken)
            if pos is None:
                continue
            x, y = pos
            box = (x, y, x + tile.size[0], y + tile.size[1])
            fill, stroke_fill = ink_for(canvas, bg, box, rng, stroke)
            tile, quad = render_line(text, font, angle, fill, stroke, stroke_fill or fill)
            canvas.alpha_composite(tile, (x, y))
            ink = tile.getchannel("A").point(lambda v: 255 if v >= 128 else 0).getbbox()
            taken.append(box)
            usage[text] += 1
            drawn.append(
                {
                    "text": text,
                    "font": font_name,
                    "font_file": Path(font_path).name,
                    "font_size": size,
                    "height_px": height,
                    "angle": angle,
                    "fill": list(fill),
                    "stroke_width": stroke,
                    "stroke_fill": list(stroke_fill) if stroke_fill else None,
                    "quad": [[round(px + x, 1), round(py + y, 1)] for px, py in quad],
                    "bbox": [ink[0] + x, ink[1] + y, ink[2] + x, ink[3] + y],
                }
            )
            break
        else:
            log(f"  no string fits: {height} px {font_name} at {angle} deg on {canvas.size}")
    return drawn


def load_photo(photos, name):
    return Image.open(photos / name).convert("RGB")


def make_images(photos, out):
    """Writes the images; returns their records (without rapidocr output)."""
    usage = {s: 0 for s in STRINGS}
    records = []
    for i in range(N_TEXT):
        rng = random.Random(SEED * 1000 + i)
        angle = 90 if i == INDEX_90 else ANGLES[i % len(ANGLES)]
        if i % 2 == 0:
            name, rgb, tone = FLATS[(i // 2) % len(FLATS)]
            size = FLAT_SIZES[(i // 2) % len(FLAT_SIZES)]
            canvas = Image.new("RGBA", size, (*rgb, 255))
            bg = {"type": "flat", "name": name, "rgb": list(rgb), "tone": tone}
        else:
            photo = PHOTOS[(i // 2) % len(PHOTOS)]
            size = PHOTO_SIZES[(i // 2) % len(PHOTO_SIZES)]
            img, crop = photo_crop(load_photo(photos, photo), size, rng)
            canvas = img.convert("RGBA")
            bg = {"type": "photo", "photo": photo, "crop": crop}
        n_lines = 1 + (i * 7 + i // 3) % 3
        specs = [(HEIGHTS[(i + 2 * j) % len(HEIGHTS)], (i + j) % len(FONTS)) for j in range(n_lines)]
        drawn = draw_lines(canvas, bg, specs, angle, rng, usage, bg["type"] == "photo")
        file = f"text-{i:02d}.png"
        canvas.convert("RGB").save(out / file, compress_level=9)
        records.append({"file": file, "kind": "text", "background": bg, "angle": angle, "drawn": drawn})

    shutil.copyfile(photos / "text.png", out / "skimage-text.png")
    records.append(
        {
            "file": "skimage-text.png",
            "kind": "skimage_text",
            "background": {"type": "photo", "photo": "text.png", "crop": None},
            "angle": None,
            "drawn": None,
        }
    )

    for k, (file, src, size) in enumerate(NOTEXT):
        rng = random.Random(SEED * 1000 + 100 + k)
        if isinstance(src, str):
            img, crop = photo_crop(load_photo(photos, src), size, rng)
            bg = {"type": "photo", "photo": src, "crop": crop}
        else:
            img = Image.new("RGB", size, src)
            bg = {"type": "flat", "rgb": list(src)}
        img.save(out / file, compress_level=9)
        records.append({"file": file, "kind": "no_text", "background": bg, "angle": None, "drawn": []})

    for k, (photo, size, angle, heights) in enumerate(LARGE):
        rng = random.Random(SEED * 1000 + 200 + k)
        canvas = load_photo(photos, photo).resize(size, Image.BICUBIC).convert("RGBA")
        bg = {"type": "photo", "photo": photo, "crop": None, "upscaled_to": list(size)}
        specs = [(h, (k * 2 + j) % len(FONTS)) for j, h in enumerate(heights)]
        drawn = draw_lines(canvas, bg, specs, angle, rng, usage, True)
        file = f"large-{k}.jpg"
        canvas.convert("RGB").save(out / file, quality=90)
        records.append({"file": file, "kind": "large", "background": bg, "angle": angle, "drawn": drawn})

    for rec in records:
        path = out / rec["file"]
        with Image.open(path) as im:
            rec["width"], rec["height"] = im.size
        rec["sha256"] = sha256(path)
        rec["bytes"] = path.stat().st_size
    unused = [s for s, n in usage.items() if n == 0]
    if unused:
        log("strings never drawn:", unused)
    return records


# ---------------------------------------------------------------- rapidocr


class Probe:
    """Wraps one RapidOCR engine's steps to keep what passes between them."""

    def __init__(self, ocr):
        self.ocr = ocr
        letterbox, det, cls, rec = ocr.maybe_add_letterbox, ocr.auto_text_det, ocr.text_cls, ocr.text_rec

        def p_letterbox(img, op_record):
            img, op_record = letterbox(img, op_record)
            self.op_record = copy.deepcopy(op_record)
            self.pre_hw = list(img.shape[:2])
            return img, op_record

        def p_det(img):
            boxes, elapse = det(img)
            self.det_in_hw = list(ocr.text_det.preprocess_op.resize(img).shape[:2])
            self.boxes = None if boxes is None else np.array(boxes, dtype=np.float32)
            return boxes, elapse

        def p_cls(imgs):
            imgs, res, elapse = cls(imgs)
            self.cls = [[str(label), float(score)] for label, score in res]
            return imgs, res, elapse

        def p_rec(imgs, return_word_box=False):
            res, elapse = rec(imgs, return_word_box)
            self.rec = [(str(r[0]), float(r[1])) for r in res]
            return res, elapse

        ocr.maybe_add_letterbox, ocr.auto_text_det = p_letterbox, p_det
        ocr.text_cls, ocr.text_rec = p_cls, p_rec

    def __call__(self, path, raw_hw):
        self.op_record, self.pre_hw, self.det_in_hw, self.boxes = None, None, None, None
        self.cls, self.rec = None, None
        t0 = time.perf_counter()
        result, _ = self.ocr(str(path))
        seconds = time.perf_counter() - t0
        lines = [
            {"box": [[float(v) for v in p] for p in box], "text": str(text), "score": float(score)}
            for box, text, score in (result or [])
        ]
        det = []
        if self.boxes is not None and len(self.boxes):
            src = self.ocr._get_origin_points(list(self.boxes), self.op_record, *raw_hw).tolist()
            for k, box in enumerate(src):
                det.append(
                    {
                        "box": [[float(v) for v in p] for p in box],
                        "cls": self.cls[k] if self.cls else None,
                        "text": self.rec[k][0] if self.rec else None,
                        "score": self.rec[k][1] if self.rec else None,
                    }
                )
        record = {
            "lines": lines,
            "det": det,
            "preprocessed_hw": self.pre_hw,
            "det_input_hw": self.det_in_hw,
        }
        return record, seconds


def engines():
    default = RapidOCR()
    max736 = RapidOCR(det_limit_type="max", det_limit_side_len=736)
    td = max736.text_det
    assert td.limit_type == "max" and td.limit_side_len == 736, (td.limit_type, td.limit_side_len)
    td.get_preprocess = lambda max_wh: DetPreProcess(736, "max", td.mean, td.std)
    max_kwargs = RapidOCR(det_limit_type="max", det_limit_side_len=736)
    return {"default": Probe(default), "max736": Probe(max736), "max_kwargs": Probe(max_kwargs)}


MODES = {
    "default": "RapidOCR(): config.yaml defaults (Det limit_type min, limit_side_len 736; "
    "use_cls true; text_score 0.5)",
    "max736": 'RapidOCR(det_limit_type="max", det_limit_side_len=736) with '
    'text_det.get_preprocess pinned to DetPreProcess(736, "max"): detector input at most '
    "736 px on the long side (1.4.4 ignores limit_side_len in max mode)",
    "max_kwargs": 'RapidOCR(det_limit_type="max", det_limit_side_len=736) as is: 1.4.4 then '
    "resizes the detector input to at most 960/1500/2000 px (long side <960, <1500, else)",
}


# ---------------------------------------------------------------- evaluation


def levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(truth, read):
    truth, read = truth.lower(), read.lower()
    return levenshtein(truth, read) / max(1, len(truth))


def iou(q1, q2):
    p1, p2 = Polygon(q1).buffer(0), Polygon(q2).buffer(0)
    union = p1.union(p2).area
    return p1.intersection(p2).area / union if union > 0 else 0.0


def joined_read(drawn, lines):
    """The lines lying mostly (>= half their area) inside the drawn quad, in reading order
    along the drawn line, joined by spaces, and the IoU of their union with the quad."""
    quad = Polygon(drawn["quad"]).buffer(0)
    parts = []
    for line in lines:
        box = Polygon(line["box"]).buffer(0)
        if box.area > 0 and box.intersection(quad).area / box.area >= 0.5:
            parts.append((box, line["text"]))
    if not parts:
        return None
    (x0, y0), (x1, y1) = drawn["quad"][0], drawn["quad"][1]
    parts.sort(key=lambda p: (p[0].centroid.x - x0) * (x1 - x0) + (p[0].centroid.y - y0) * (y1 - y0))
    union = shapely.union_all([p[0] for p in parts])
    return " ".join(t for _, t in parts), union.intersection(quad).area / union.union(quad).area


def evaluate(records, mode):
    """found/drawn per kind (as asked, and with split lines joined), false lines on the
    no-text images, stray lines on text images, per-height counts, and the misses."""
    stats = {"text": [0, 0], "large": [0, 0], "text_joined": 0, "large_joined": 0,
             "no_text_false": 0, "spurious": 0, "stray": [], "by_height": {}, "misses": []}
    for rec in records:
        lines = rec["rapidocr"][mode]["lines"]
        if rec["kind"] == "no_text":
            stats["no_text_false"] += len(lines)
            continue
        if rec["kind"] not in ("text", "large"):
            continue
        for d in rec["drawn"]:
            stats[rec["kind"]][1] += 1
            by_height = stats["by_height"].setdefault((rec["kind"], d["height_px"]), [0, 0])
            by_height[1] += 1
            best, found = None, False
            for line in lines:
                o, c = iou(d["quad"], line["box"]), cer(d["text"], line["text"])
                if o >= 0.3 and c <= 0.2:
                    stats[rec["kind"]][0] += 1
                    by_height[0] += 1
                    found = True
                    break
                if o > 0 and (best is None or c < best[1]):
                    best = (line["text"], round(c, 2), round(o, 2))
            else:
                stats["misses"].append((rec["file"], d["height_px"], d["angle"], d["text"], best))
            joined = joined_read(d, lines)
            if found or joined and joined[1] >= 0.3 and cer(d["text"], joined[0]) <= 0.2:
                stats[rec["kind"] + "_joined"] += 1
        for line in lines:
            if all(iou(d["quad"], line["box"]) < 0.3 for d in rec["drawn"]):
                stats["spurious"] += 1
                stats["stray"].append((rec["file"], line["text"], round(line["score"], 2)))
    return stats


# ---------------------------------------------------------------- output


def folder_bytes(out):
    return sum(p.stat().st_size for p in out.iterdir() if p.is_file())


def write_readme(out, header, records, stats, timings, load):
    packages = {}
    for name, f in sorted(header["fonts"].items()):
        packages.setdefault(f"{f['package']} {f['package_version']}", []).append(Path(f["file"]).name)
    fonts = "; ".join(f"{', '.join(names)} (Debian {pkg})" for pkg, names in packages.items())
    n_text = sum(r["kind"] == "text" for r in records)
    n_lines = sum(len(r["drawn"]) for r in records if r["kind"] == "text")
    rows = []
    for mode in MODES:
        s, t = stats[mode], timings[mode]
        rows.append(
            f"| `{mode}` | {s['text'][0]}/{s['text'][1]} ({s['text_joined']}) | "
            f"{s['large'][0]}/{s['large'][1]} ({s['large_joined']}) | {s['no_text_false']} | "
            f"{s['spurious']} | {statistics.median(t['small']):.2f} | {statistics.median(t['large']):.2f} |"
        )
    size_mb = folder_bytes(out) / 1e6
    inks_note = (
        "\n  Inks `same-luma`: each line in a colour of the luma of what is under it (hue alone sets it apart)."
        if INKS_MODE == "same-luma"
        else ""
    )
    text = f"""# OCR oracle: rapidocr_onnxruntime {RAPIDOCR_VERSION}

What rapidocr's own Python pipeline (PP-OCRv4 det + rec, mobile v2 cls; ONNX Runtime {header['onnxruntime']},
OpenCV {header['opencv']}) reads in these {len(records)} images: the Rust OCR is right when it reads the same.
Made by `bash scripts/ocr-oracle/run.sh` (venv from its requirements.txt, then `make_fixtures.py`,
seed {SEED}, photos from `coverguard models fetch --test-data`). Two runs give a byte-identical
`{JSON_NAME}` and images; only the timings below change. Folder: {size_mb:.2f} MB.

- `text-00..35.png` ({n_text}, long side <= 640): {n_lines} lines, 1-3 per image, "Hg" ink {'/'.join(map(str, HEIGHTS))} px, at 0,
  +-5, +-15 degrees (`text-{INDEX_90:02d}`: 90), on flat colours or crops of the scikit-image photos.{inks_note}
- `skimage-text.png`: scikit-image's `text.png` as is (handwritten maths; no ground truth).
- `notext-0..5.png`: crops of coffee, chelsea, hubble_deep_field, brick, and two flat fills.
- `large-0..2.jpg`: photos upscaled to 3000 px on the long side, lines of 24-240 px, JPEG q90.
- Fonts, in /usr/share/fonts/truetype (package by `dpkg -S`): {fonts}.

Modes (files passed by path, so Pillow decodes; rapidocr first shrinks an image over 2000 px
to <= 2000 px, multiples of 32, with Python's round, and recognises crops of that copy):
- `default`: `RapidOCR()`, its config.yaml: det limit_type min, limit_side_len 736; use_cls; text_score 0.5.
- `max736`: detector input <= 736 px on the long side: `RapidOCR(det_limit_type="max", det_limit_side_len=736)`
  plus `text_det.get_preprocess` pinned to `DetPreProcess(736, "max")`, as 1.4.4 ignores the 736 in max mode.
- `max_kwargs`: those keywords alone; 1.4.4 then limits the detector input to 960, 1500 or 2000 px.

JSON: `header` (versions, fonts, photo and model sha256, modes) and `images`, each with `file, kind
(text|skimage_text|no_text|large), width, height, sha256, bytes, background, angle, drawn` (ground truth:
`text, font, font_size, height_px, fill, stroke_*, quad` = the text box's corners, `bbox` = ink box)
and `rapidocr.<mode>`: `lines` (the output: `box` 4x[x,y] source px, `text`, `score`), `det` (every
detector box before the text_score filter, with its `cls` [label, score], `text`, `score`),
`preprocessed_hw`, `det_input_hw`. Angles are counter-clockwise degrees; y points down.

Found: a line's box has IoU >= 0.3 with the drawn quad and CER <= 0.2 (lower-cased); in brackets,
also counting a drawn line whose read is split over several boxes (joined with spaces). False: lines
on the no-text images. Stray: lines on text images overlapping no drawn line (the motorcycle photos'
own YAMAHA logo among them). Seconds: median per image of `ocr(path)` in this run, on a 2-core
machine busy with other work (load average {load}): rough.

| mode | found <= 640 px | found 3000 px | false | stray | s/img <= 640 | s/img 3000 |
| --- | --- | --- | --- | --- | --- | --- |
""" + "\n".join(rows) + "\n"
    (out / "README.md").write_text(text)
    return text


def main():
    global SEED, INKS_MODE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, help="scikit-image's skimage/data folder")
    ap.add_argument("--coverguard", default="target/release/coverguard")
    ap.add_argument("--out", type=Path, default=Path("tests/fixtures/ocr"))
    ap.add_argument("--seed", type=int, default=SEED,
                    help="another seed renders a held-out set (the fixture uses the default)")
    ap.add_argument("--heights", type=lambda v: [int(h) for h in v.split(",")],
                    help="comma-separated \"Hg\" ink heights in px for the covers' lines, in "
                    "place of 12,16,24,40,72 (e.g. large titles)")
    ap.add_argument("--backgrounds", type=lambda v: v.split(","),
                    help="comma-separated files in the --photos folder to draw the text "
                    "on, in place of the nine scikit-image photos (e.g. textures)")
    ap.add_argument("--inks", choices=["contrast", "same-luma"], default="contrast",
                    help="same-luma: every line in a colour of the luma of what is under it "
                    "(text that stands out by hue alone; no stroke colour)")
    args = ap.parse_args()
    SEED = args.seed
    INKS_MODE = args.inks
    if args.backgrounds:
        PHOTOS[:] = args.backgrounds
    if args.heights:
        HEIGHTS[:] = args.heights
    photos = args.photos or provisioned_photos(args.coverguard)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for p in out.iterdir():
        if p.is_file() and (p.suffix in (".png", ".jpg") or p.name in (JSON_NAME, "README.md")):
            p.unlink()

    log(f"rendering into {out} from {photos}")
    records = make_images(photos, out)

    pkg = Path(rapidocr_onnxruntime.__file__).parent
    fonts = {}
    for name, path in FONTS:
        owner, version = debian_package(path)
        fonts[name] = {"file": path, "sha256": sha256(path), "package": owner, "package_version": version}
    used_photos = sorted(
        {r["background"]["photo"] for r in records if r["background"]["type"] == "photo"}
    )
    header = {
        "rapidocr_onnxruntime": RAPIDOCR_VERSION,
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "shapely": shapely.__version__,
        "pyclipper": pyclipper.__version__,
        "python": platform.python_version(),
        "generator": "scripts/ocr-oracle/make_fixtures.py",
        "seed": SEED,
        "fonts": fonts,
        "photos": {n: sha256(photos / n) for n in used_photos},
        "models": {p.name: sha256(p) for p in sorted((pkg / "models").glob("*.onnx"))},
        "modes": MODES,
        "coordinates": "pixels of the source image, x right, y down; angles counter-clockwise "
        "in degrees; height_px is the ink height of 'Hg' in the font at font_size",
    }
    if INKS_MODE != "contrast":
        # Only where it differs, so that the default run still writes the fixture as it is.
        header["inks"] = INKS_MODE
    assert importlib.metadata.version("rapidocr_onnxruntime") == RAPIDOCR_VERSION

    probes = engines()
    warm = out / records[0]["file"]
    for probe in probes.values():
        probe(warm, (records[0]["height"], records[0]["width"]))

    timings = {m: {"small": [], "large": []} for m in probes}
    for rec in records:
        rec["rapidocr"] = {}
        for mode, probe in probes.items():
            result, seconds = probe(out / rec["file"], (rec["height"], rec["width"]))
            rec["rapidocr"][mode] = result
            timings[mode]["large" if rec["kind"] == "large" else "small"].append(seconds)
        log(
            f"{rec['file']:18} " + "  ".join(
                f"{m}: {' | '.join(l['text'] for l in rec['rapidocr'][m]['lines']) or '-'}" for m in probes
            )
        )

    doc = {"header": header, "images": records}
    (out / JSON_NAME).write_text(json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n")

    stats = {m: evaluate(records, m) for m in probes}
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(write_readme(out, header, records, stats, timings, load))
    for mode in probes:
        heights = ", ".join(f"{k[0]} {k[1]}px {v[0]}/{v[1]}" for k, v in sorted(stats[mode]["by_height"].items()))
        print(f"## {mode}: found by height: {heights}")
        print(f"## {mode}: misses (file, height, angle, drawn, best overlapping read (text, CER, IoU))")
        for miss in stats[mode]["misses"]:
            print("  ", miss)
        print(f"## {mode}: stray lines (file, text, score)")
        for stray in stats[mode]["stray"]:
            print("  ", stray)
    print(f"folder: {folder_bytes(out)} bytes in {sum(1 for _ in out.iterdir())} files")


if __name__ == "__main__":
    main()
