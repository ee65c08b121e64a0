//! A cheap test for text, run before the detector: most covers carry no words, and the
//! detector costs more than the explicit-content model. Rendered text is a row of
//! glyphs: blobs of one ink, darker or lighter than their surroundings, of about one
//! height, standing on one line. The gate binarises against the local mean, keeps the
//! glyph-like connected blobs and chains them into rows, in the luma and in two
//! opponent-colour planes ([`seeds_in_colour`]); each row becomes a seed rectangle where
//! the detector is then run on its own ([`OcrEngine::read_gated`]), a row of letters
//! spaced apart with its letters put side by side ([`super::spaced`]).
//!
//! The thresholds were chosen on the OCR fixture (tests/fixtures/ocr) against photos
//! without text; the recall test and the README give the figures.
//!
//! [`OcrEngine::read_gated`]: super::OcrEngine::read_gated

use super::avx2::avx2_where_present;
use super::planes::{grey_at, opponents_at};
use super::spaced::{joined, Spaced};
use super::windows::Rect;

/// The gate's thresholds (intensities on 0..=255, lengths in pixels of the detector-scale
/// image).
#[derive(Clone, Debug, PartialEq)]
pub struct GateParams {
    /// Side of the square the local mean is taken over.
    pub window: usize,
    /// How far below (dark ink) or above (light ink) the local mean a pixel must be.
    pub delta: i32,
    /// A glyph's height range.
    pub min_height: usize,
    pub max_height: usize,
    /// A glyph's least mean distance from the local mean.
    pub min_contrast: f64,
    /// A glyph's greatest intensity spread, as a share of its contrast: ink is one colour.
    pub max_spread: f64,
    /// A glyph's least share of its bounding box.
    pub min_fill: f64,
    /// Neighbours in a row: greatest gap (in heights), height ratio, centre offset (in
    /// heights) and ink difference.
    pub max_gap: f64,
    pub max_height_ratio: f64,
    pub max_centre_offset: f64,
    pub max_ink_difference: f64,
    /// A row's least number of glyphs.
    pub min_glyphs: usize,
    /// Share of a row's glyphs within `height_tolerance` of its median height.
    pub height_tolerance: f64,
    pub min_regular_heights: f64,
    /// Share of a row's glyphs whose bottom lies within `baseline_tolerance` heights
    /// (plus one pixel) of the row's fitted baseline.
    pub baseline_tolerance: f64,
    pub min_on_baseline: f64,
    /// The least glyph height a row is shown to the detector at: a row of glyphs at
    /// least twice as tall is shown halved (and halved again while that holds, up to
    /// [`MAX_HALVINGS`] times), since the detector's cost grows with the pixels it is
    /// given. Below 32 px it loses large bold lines it finds at full scale.
    pub min_shown_height: f64,
    /// A row whose glyphs cover less than this share of its length has its letters
    /// spaced apart, and is shown to the detector with them put side by side
    /// ([`super::spaced::compacted`]), each followed by `spaced_gap` glyph heights of
    /// what lies after it.
    pub spaced_cover: f64,
    pub spaced_gap: f64,
    /// A row turned a quarter with its letters spaced apart needs this many letters (or
    /// runs of touching ones). In photos without text such rows are blades of grass or
    /// the cells of a pattern, two to five of them; a contact detail spelled out so is
    /// longer.
    pub min_turned_spaced_letters: usize,
}

impl Default for GateParams {
    fn default() -> GateParams {
        GateParams {
            window: 21,
            delta: 12,
            min_height: 4,
            max_height: 160,
            min_contrast: 45.0,
            max_spread: 0.6,
            min_fill: 0.12,
            max_gap: 2.5,
            max_height_ratio: 1.8,
            max_centre_offset: 0.5,
            max_ink_difference: 30.0,
            min_glyphs: 3,
            height_tolerance: 0.25,
            min_regular_heights: 0.5,
            baseline_tolerance: 0.25,
            min_on_baseline: 0.75,
            min_shown_height: 32.0,
            spaced_cover: 0.6,
            spaced_gap: 0.3,
            min_turned_spaced_letters: 6,
        }
    }
}

/// A glyph-like blob: its box and mean ink.
#[derive(Clone, Copy, Debug)]
struct Glyph {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    ink: f64,
}

impl Glyph {
    fn transposed(self) -> Glyph {
        Glyph {
            x0: self.y0,
            y0: self.x0,
            x1: self.y1,
            y1: self.x1,
            ink: self.ink,
        }
    }

    fn height(&self) -> f64 {
        self.y1 - self.y0
    }
}

/// How many times a row's window may be halved at the most.
pub const MAX_HALVINGS: u32 = 3;

/// A row of glyphs: the rectangle the detector is to look in, the glyphs' median
/// height across the row (their width, in a vertical row), and for a row of letters
/// spaced apart, where its glyphs are.
#[derive(Clone, Debug, PartialEq)]
pub struct Seed {
    pub rect: Rect,
    pub glyph_height: f64,
    pub spaced: Option<Spaced>,
}

impl Seed {
    /// How many times this row can be halved and keep its glyphs `min_shown` tall,
    /// in an image whose shorter side, halved as often, keeps `min_side`.
    pub fn halvings(&self, min_shown: f64, shorter_side: usize, min_side: usize) -> u32 {
        (0..MAX_HALVINGS)
            .take_while(|&k| {
                self.glyph_height / f64::from(2u32 << k) >= min_shown
                    && shorter_side >> (k + 1) >= min_side
            })
            .count() as u32
    }
}

/// Side of the cells glyphs are indexed in when rows are chained, in pixels.
const GRID_CELL: f64 = 16.0;

/// The rows of glyphs [`seeds`] finds in the image's luma at the detector's `w` x `h`,
/// and in its two opponent-colour planes at half that ([`opponents_at`]), those brought
/// back to `w` x `h`.
pub fn seeds_in_colour(
    rgb: &[u8],
    width: usize,
    height: usize,
    (w, h): (usize, usize),
    params: &GateParams,
) -> Vec<Seed> {
    let mut found = seeds(&grey_at(rgb, width, height, w, h), w, h, params);
    let (hw, hh) = (w / 2, h / 2);
    if hw > 0 && hh > 0 {
        for plane in opponents_at(rgb, width, height, hw, hh) {
            // No glyph stands further from its local mean than the plane's range (a grey
            // image's planes are flat).
            let (lo, hi) = plane
                .iter()
                .fold((u8::MAX, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            if f64::from(hi.saturating_sub(lo)) < params.min_contrast {
                continue;
            }
            found.extend(seeds(&plane, hw, hh, params).into_iter().map(|s| Seed {
                rect: s.rect.doubled(1, w, h),
                glyph_height: 2.0 * s.glyph_height,
                spaced: s.spaced.as_ref().map(Spaced::doubled),
            }));
        }
    }
    found
}

avx2_where_present! {
    /// The rows of glyphs in a `width` x `height` grey image, each as a rectangle with a
    /// margin around it, clipped to the image.
    pub fn seeds(gray: &[u8], width: usize, height: usize, params: &GateParams) -> Vec<Seed> = seeds_portable;
}

#[inline(always)]
fn seeds_portable(gray: &[u8], width: usize, height: usize, params: &GateParams) -> Vec<Seed> {
    debug_assert_eq!(gray.len(), width * height);
    if width == 0 || height == 0 {
        return Vec::new();
    }
    let mean = LocalMean::new(gray, width, height, params.window);
    let (dark_ink, light_ink) = mean.ink(gray, params.delta);
    let mut rects = Vec::new();
    for ink in [dark_ink, light_ink] {
        // Each glyph, and whether it is one turned too (tested once: a texture's blobs
        // run to the tens of thousands).
        let found: Vec<(Glyph, bool)> = blobs(gray, &mean, &ink, |b| b.may_be_glyph(params))
            .iter()
            .filter_map(|b| b.glyph(params))
            .collect();
        for vertical in [false, true] {
            let glyphs = found
                .iter()
                .filter(|&&(_, turned)| turned || !vertical)
                .map(|&(g, _)| g);
            for Row {
                bounds,
                glyph_height,
                spans,
            } in rows(glyphs, vertical, params)
            {
                let margin = 0.6 * glyph_height + 4.0;
                let length = if vertical {
                    bounds.y1 - bounds.y0
                } else {
                    bounds.x1 - bounds.x0
                };
                let cover: f64 = spans.iter().map(|(a, b)| b - a).sum::<f64>() / length;
                let is_spaced = cover < params.spaced_cover;
                if vertical && is_spaced && spans.len() < params.min_turned_spaced_letters {
                    continue;
                }
                let spaced = is_spaced.then(|| Spaced {
                    vertical,
                    spans: spans
                        .iter()
                        .map(|&(a, b)| (a as usize, b.ceil() as usize))
                        .collect(),
                });
                let clip = |v: f64, hi: usize| v.clamp(0.0, hi as f64) as usize;
                rects.push(Seed {
                    rect: Rect {
                        x0: clip(bounds.x0 - margin, width),
                        y0: clip(bounds.y0 - margin, height),
                        x1: clip((bounds.x1 + margin + 1.0).ceil(), width),
                        y1: clip((bounds.y1 + margin + 1.0).ceil(), height),
                    },
                    glyph_height,
                    spaced,
                });
            }
        }
    }
    rects.retain(|s| s.rect.area() > 0);
    rects
}

/// The mean over a `window` x `window` square centred on each pixel (clipped at the
/// borders), floor(sum / area), computed once for every pixel.
struct LocalMean {
    mean: Vec<u8>,
    w: usize,
    h: usize,
}

impl LocalMean {
    #[inline(always)]
    fn new(gray: &[u8], w: usize, h: usize, window: usize) -> LocalMean {
        let r = window / 2;
        // Each column's sum over the rows of the current window, moved down a row at a
        // time (whole rows added and taken away, which vectorises), and their running
        // sums across: columns[x] is the window's sum over columns 0..x. 255 x 736 x 736
        // fits in u32 many times over.
        let mut vertical = vec![0u32; w];
        let mut columns = vec![0u32; w + 1];
        let rows_of = |y: usize| &gray[y * w..(y + 1) * w];
        // Rows 0..r are in every window that starts at the top; row y + r enters at row y.
        for above in 0..r.min(h) {
            for (s, &v) in vertical.iter_mut().zip(rows_of(above)) {
                *s += u32::from(v);
            }
        }
        // Each column's window bounds and width, the same for every row.
        let spans: Vec<(usize, usize)> = (0..w)
            .map(|x| (x.saturating_sub(r), (x + r + 1).min(w)))
            .collect();
        let full = 2 * r + 1;
        let interior = r..w.saturating_sub(r);
        let mut mean = vec![0u8; w * h];
        for y in 0..h {
            if y + r < h {
                for (s, &v) in vertical.iter_mut().zip(rows_of(y + r)) {
                    *s += u32::from(v);
                }
            }
            // Row y - r - 1 has just left the window.
            if y > r {
                for (s, &v) in vertical.iter_mut().zip(rows_of(y - r - 1)) {
                    *s -= u32::from(v);
                }
            }
            let (ya, yb) = (y.saturating_sub(r), (y + r + 1).min(h));
            let mut running = 0u32;
            for (c, &v) in columns[1..].iter_mut().zip(&vertical) {
                running += v;
                *c = running;
            }
            let rows = (yb - ya) as u32;
            // Away from the left and right edges every window is whole across, so one
            // divisor serves the row; a division per pixel was most of the gate's cost.
            let whole = Divisor::new(rows * full as u32);
            let row = &mut mean[y * w..(y + 1) * w];
            let clipped = |x: usize| {
                let (xa, xb) = spans[x];
                (columns[xb] - columns[xa]) / (rows * (xb - xa) as u32)
            };
            for x in (0..interior.start.min(w)).chain(interior.end.max(interior.start)..w) {
                row[x] = clipped(x) as u8;
            }
            // Whole windows: column x's window is columns x - r .. x + r + 1.
            if !interior.is_empty() {
                let left = &columns[interior.start - r..interior.end - r];
                let right = &columns[interior.start + r + 1..interior.end + r + 1];
                for ((m, &a), &b) in row[interior.clone()].iter_mut().zip(left).zip(right) {
                    *m = whole.floor(b - a) as u8;
                }
            }
        }
        LocalMean { mean, w, h }
    }

    #[cfg(test)]
    fn at(&self, x: usize, y: usize) -> i32 {
        self.mean[y * self.w + x] as i32
    }

    /// The pixels darker, and those lighter, than their mean by more than `delta` (1 in
    /// a byte mask, 0 elsewhere), each in a border of none, so that a pixel's eight
    /// neighbours are all inside the mask.
    #[inline(always)]
    fn ink(&self, gray: &[u8], delta: i32) -> (Vec<u8>, Vec<u8>) {
        let pw = self.w + 2;
        let mut dark = vec![0u8; pw * (self.h + 2)];
        let mut light = dark.clone();
        for y in 0..self.h {
            let row = y * self.w..(y + 1) * self.w;
            let inside = (y + 1) * pw + 1..(y + 1) * pw + 1 + self.w;
            let pixels = gray[row.clone()].iter().zip(&self.mean[row]);
            for ((d, l), (&v, &m)) in dark[inside.clone()]
                .iter_mut()
                .zip(&mut light[inside])
                .zip(pixels)
            {
                let diff = v as i32 - m as i32;
                *d = (diff < -delta) as u8;
                *l = (diff > delta) as u8;
            }
        }
        (dark, light)
    }
}

/// Division by a fixed whole number as a multiplication and a shift.
#[derive(Clone, Copy)]
struct Divisor {
    reciprocal: u64,
    divisor: u32,
}

impl Divisor {
    const SHIFT: u32 = 40;

    #[inline(always)]
    fn new(divisor: u32) -> Divisor {
        Divisor {
            reciprocal: (1u64 << Self::SHIFT).div_ceil(u64::from(divisor.max(1))),
            divisor: divisor.max(1),
        }
    }

    /// floor(n / divisor) for a mean of bytes, n <= 255 x divisor. Exact while 255 x
    /// divisor^2 < 2^40 (the reciprocal's excess, times n, stays under 1 / divisor);
    /// larger windows than a gate uses divide.
    #[inline(always)]
    fn floor(self, n: u32) -> u32 {
        if 255 * u64::from(self.divisor).pow(2) < 1u64 << Self::SHIFT {
            ((u64::from(n) * self.reciprocal) >> Self::SHIFT) as u32
        } else {
            n / self.divisor
        }
    }
}

/// One 8-connected blob of ink: its bounds (inclusive) and sums over its pixels, whole
/// numbers so that any order of summing gives the same blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Blob {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    n: u32,
    sum: u32,
    contrast: u32,
    sum2: u64,
}

impl Blob {
    #[inline(always)]
    fn merge(&mut self, o: &Blob) {
        self.x0 = self.x0.min(o.x0);
        self.y0 = self.y0.min(o.y0);
        self.x1 = self.x1.max(o.x1);
        self.y1 = self.y1.max(o.y1);
        self.n += o.n;
        self.sum += o.sum;
        self.contrast += o.contrast;
        self.sum2 += o.sum2;
    }

    /// Whether the blob has a glyph's height and proportions and fills enough of its
    /// box: what [`Blob::glyph`] asks of its bounds and count alone.
    fn may_be_glyph(&self, params: &GateParams) -> bool {
        let (bw, bh) = self.size();
        shaped(bw, bh, params) && self.n as f64 >= params.min_fill * bw * bh
    }

    fn size(&self) -> (f64, f64) {
        (
            (self.x1 - self.x0 + 1) as f64,
            (self.y1 - self.y0 + 1) as f64,
        )
    }

    /// The blob as a glyph, if it looks like one: of a glyph's height and proportions,
    /// in clear contrast with its surroundings, of one ink, filling enough of its box;
    /// and whether it has a glyph's height and proportions turned a quarter too.
    ///
    /// A row read down (text turned a quarter) takes only glyphs that pass both ways:
    /// turned, so that its glyphs' height across it is a glyph's, which strokes stacked
    /// end to end (grass blades) are not; as they stand, so that it takes no shape a row
    /// read across refuses. A turned line loses its thinnest letters (an l lying flat)
    /// to that, not its row.
    fn glyph(&self, params: &GateParams) -> Option<(Glyph, bool)> {
        let (n, sum, sum2) = (self.n as f64, self.sum as f64, self.sum2 as f64);
        let (bw, bh) = self.size();
        let contrast = self.contrast as f64 / n;
        let spread = (sum2 / n - (sum / n).powi(2)).max(0.0).sqrt();
        let glyph_like = self.may_be_glyph(params)
            && contrast >= params.min_contrast
            && spread <= params.max_spread * contrast;
        glyph_like.then(|| {
            let glyph = Glyph {
                x0: self.x0 as f64,
                y0: self.y0 as f64,
                x1: (self.x1 + 1) as f64,
                y1: (self.y1 + 1) as f64,
                ink: sum / n,
            };
            (glyph, shaped(bh, bw, params))
        })
    }
}

/// Whether a `bw` x `bh` box has a glyph's height and proportions.
fn shaped(bw: f64, bh: f64, params: &GateParams) -> bool {
    (params.min_height as f64..=params.max_height as f64).contains(&bh)
        && bw <= 3.0 * bh
        && bh <= 18.0 * bw
}

/// The root of `a`'s set in a union-find forest, halving the path on the way.
#[inline(always)]
fn root(parent: &mut [usize], mut a: usize) -> usize {
    while parent[a] != a {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    a
}

/// The first index from `from` on where `row` (bytes of 0 and 1) holds `value`, or its
/// length; eight bytes are tested at a time, since a photo's runs are found by the
/// hundred thousand.
#[inline(always)]
fn edge(row: &[u8], mut from: usize, value: u8) -> usize {
    // Bytes equal to `value` become non-zero.
    let flip = if value == 1 {
        0
    } else {
        u64::from_le_bytes([1; 8])
    };
    while let Some(bytes) = row.get(from..from + 8) {
        let word = u64::from_le_bytes(bytes.try_into().expect("eight bytes")) ^ flip;
        if word != 0 {
            return from + (word.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    row[from..]
        .iter()
        .position(|&b| b == value)
        .map_or(row.len(), |i| from + i)
}

/// The 8-connected blobs of `ink` (pixels darker, or lighter, than their local mean,
/// inside a border of none) that `wanted` keeps, in the raster order of their first
/// pixel. Labelled by runs rather than by flood fill: a textured photo marks a third of
/// its pixels, and a row's runs are found in one sweep and joined to the touching runs
/// of the row above. `wanted` sees each blob's bounds and pixel count (its sums still
/// zero); only the pixels of the blobs it keeps are summed, since most ink lies in
/// blobs no glyph has the size or shape of (a texture's grain, one wide patch).
#[inline(always)]
fn blobs(gray: &[u8], mean: &LocalMean, ink: &[u8], wanted: impl Fn(&Blob) -> bool) -> Vec<Blob> {
    let (w, h) = (mean.w, mean.h);
    let pw = w + 2;
    // Each run's columns (end exclusive), row by row: rows[y] is row y's first run. A
    // run's parent is an earlier run of its blob, so each blob's root is its first run
    // in raster order.
    let mut runs: Vec<(u32, u32)> = Vec::new();
    let mut rows = Vec::with_capacity(h + 1);
    let mut parent: Vec<usize> = Vec::new();
    let mut above = 0..0;
    for y in 0..h {
        let row = &ink[(y + 1) * pw + 1..(y + 1) * pw + 1 + w];
        let first = runs.len();
        rows.push(first);
        let mut next_above = above.start;
        let mut x = 0;
        loop {
            let x0 = edge(row, x, 1);
            if x0 == w {
                break;
            }
            let x1 = edge(row, x0, 0);
            x = x1;
            let id = runs.len();
            parent.push(id);
            runs.push((x0 as u32, x1 as u32));
            // A run above touches this one when it reaches column x0 - 1 and starts by
            // column x1 (diagonal neighbours count).
            while next_above < above.end && (runs[next_above].1 as usize) < x0 {
                next_above += 1;
            }
            let mut k = next_above;
            while k < above.end && runs[k].0 as usize <= x1 {
                let (a, b) = (root(&mut parent, k), root(&mut parent, id));
                parent[a.max(b)] = a.min(b);
                k += 1;
            }
        }
        above = first..runs.len();
    }
    rows.push(runs.len());
    // Each blob's bounds and count, under a label given in the order of its root.
    let mut label = vec![0u32; runs.len()];
    let mut found: Vec<Blob> = Vec::new();
    for y in 0..h {
        for i in rows[y]..rows[y + 1] {
            let (x0, x1) = runs[i];
            let run = Blob {
                x0,
                y0: y as u32,
                x1: x1 - 1,
                y1: y as u32,
                n: x1 - x0,
                sum: 0,
                contrast: 0,
                sum2: 0,
            };
            let r = root(&mut parent, i);
            if r == i {
                label[i] = found.len() as u32;
                found.push(run);
            } else {
                label[i] = label[r];
                found[label[r] as usize].merge(&run);
            }
        }
    }
    let keep: Vec<bool> = found.iter().map(&wanted).collect();
    for y in 0..h {
        let (values, means) = (&gray[y * w..(y + 1) * w], &mean.mean[y * w..(y + 1) * w]);
        for i in rows[y]..rows[y + 1] {
            let l = label[i] as usize;
            if !keep[l] {
                continue;
            }
            let (x0, x1) = (runs[i].0 as usize, runs[i].1 as usize);
            let blob = &mut found[l];
            for (&v, &m) in values[x0..x1].iter().zip(&means[x0..x1]) {
                blob.sum += v as u32;
                blob.sum2 += (v as u32 * v as u32) as u64;
                blob.contrast += (v as i32 - m as i32).unsigned_abs();
            }
        }
    }
    found
        .into_iter()
        .zip(keep)
        .filter_map(|(b, k)| k.then_some(b))
        .collect()
}

/// A row of glyphs: its bounds, its glyphs' median height, and their spans along it,
/// joined where they overlap.
struct Row {
    bounds: Glyph,
    glyph_height: f64,
    spans: Vec<(f64, f64)>,
}

/// Glyphs chained into rows (columns when `vertical`).
fn rows(glyphs: impl Iterator<Item = Glyph>, vertical: bool, params: &GateParams) -> Vec<Row> {
    let g: Vec<Glyph> = glyphs
        .map(|g| if vertical { g.transposed() } else { g })
        .collect();
    let mut parent: Vec<usize> = (0..g.len()).collect();
    // Neighbours are looked up in a grid of glyph corners and centres, not by scanning
    // every glyph to the right: texture makes thousands of glyph-like blobs.
    let mut order: Vec<usize> = (0..g.len()).collect();
    order.sort_by(|&a, &b| g[a].x0.total_cmp(&g[b].x0));
    let mut rank = vec![0usize; g.len()];
    for (k, &i) in order.iter().enumerate() {
        rank[i] = k;
    }
    let cell = |v: f64| (v.max(0.0) / GRID_CELL) as usize;
    let centre = |g: &Glyph| (g.y0 + g.y1) / 2.0;
    let (cols, grid_rows) = g.iter().fold((1, 1), |(c, r), b| {
        (c.max(cell(b.x0) + 1), r.max(cell(centre(b)) + 1))
    });
    let mut grid: Vec<Vec<usize>> = vec![Vec::new(); cols * grid_rows];
    for (i, b) in g.iter().enumerate() {
        grid[cell(centre(b)) * cols + cell(b.x0)].push(i);
    }
    for (i, a) in g.iter().enumerate() {
        let reach = params.max_gap * a.height();
        // A neighbour's height is at most `max_height_ratio` times this one's.
        let rise = params.max_centre_offset * params.max_height_ratio * a.height();
        let (cy0, cy1) = (
            cell(centre(a) - rise),
            cell(centre(a) + rise).min(grid_rows - 1),
        );
        let (cx0, cx1) = (cell(a.x0), cell(a.x1 + reach).min(cols - 1));
        for cy in cy0..=cy1 {
            for cx in cx0..=cx1 {
                for &j in &grid[cy * cols + cx] {
                    let b = &g[j];
                    if rank[j] <= rank[i] || b.x0 - a.x1 > reach {
                        continue;
                    }
                    let (hi, lo) = (a.height().max(b.height()), a.height().min(b.height()));
                    if hi / lo.max(1.0) > params.max_height_ratio
                        || (centre(b) - centre(a)).abs() > params.max_centre_offset * hi
                        || (b.ink - a.ink).abs() > params.max_ink_difference
                    {
                        continue;
                    }
                    let (ra, rb) = (root(&mut parent, i), root(&mut parent, j));
                    parent[ra] = rb;
                }
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..g.len() {
        groups.entry(root(&mut parent, i)).or_default().push(i);
    }
    groups
        .into_values()
        .filter(|members| members.len() >= params.min_glyphs)
        .filter_map(|members| {
            let row: Vec<Glyph> = members.iter().map(|&i| g[i]).collect();
            let median = median_height(&row);
            let regular = row
                .iter()
                .filter(|g| (g.height() - median).abs() <= params.height_tolerance * median)
                .count();
            if (regular as f64) < params.min_regular_heights * row.len() as f64 {
                return None;
            }
            let on_line = on_baseline(&row, params.baseline_tolerance * median + 1.0);
            if (on_line as f64) < params.min_on_baseline * row.len() as f64 {
                return None;
            }
            let bounds = row.iter().skip(1).fold(row[0], |b, g| Glyph {
                x0: b.x0.min(g.x0),
                y0: b.y0.min(g.y0),
                x1: b.x1.max(g.x1),
                y1: b.y1.max(g.y1),
                ink: b.ink,
            });
            let mut along: Vec<(f64, f64)> = row.iter().map(|g| (g.x0, g.x1)).collect();
            along.sort_by(|a, b| a.0.total_cmp(&b.0));
            Some(Row {
                bounds: if vertical {
                    bounds.transposed()
                } else {
                    bounds
                },
                glyph_height: median,
                spans: joined(along.into_iter()),
            })
        })
        .collect()
}

fn median_height(row: &[Glyph]) -> f64 {
    let mut h: Vec<f64> = row.iter().map(Glyph::height).collect();
    h.sort_by(f64::total_cmp);
    let n = h.len();
    if n % 2 == 1 {
        h[n / 2]
    } else {
        (h[n / 2 - 1] + h[n / 2]) / 2.0
    }
}

/// How many glyphs' bottoms lie within `tolerance` of the least-squares line through
/// the bottoms (against the glyphs' centres along the row).
fn on_baseline(row: &[Glyph], tolerance: f64) -> usize {
    let n = row.len() as f64;
    let xs: Vec<f64> = row.iter().map(|g| (g.x0 + g.x1) / 2.0).collect();
    let ys: Vec<f64> = row.iter().map(|g| g.y1).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    xs.iter()
        .zip(&ys)
        .filter(|&(x, y)| (my + slope * (x - mx) - y).abs() <= tolerance)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::ocr::planes::{grey_at_portable, opponents_at_portable};

    /// The blobs of `ink` by flood fill from each blob's first pixel in raster order: the
    /// plain statement of what [`blobs`] computes by runs.
    fn blobs_by_flood_fill(gray: &[u8], mean: &LocalMean, ink: &[u8]) -> Vec<Blob> {
        let (w, h) = (mean.w, mean.h);
        let pw = w + 2;
        let mut seen = vec![false; ink.len()];
        let mut found = Vec::new();
        for sy in 0..h {
            for sx in 0..w {
                let start = (sy + 1) * pw + sx + 1;
                if ink[start] == 0 || seen[start] {
                    continue;
                }
                seen[start] = true;
                let mut stack = vec![(sx, sy)];
                let mut blob: Option<Blob> = None;
                while let Some((x, y)) = stack.pop() {
                    let v = gray[y * w + x];
                    let pixel = Blob {
                        x0: x as u32,
                        y0: y as u32,
                        x1: x as u32,
                        y1: y as u32,
                        n: 1,
                        sum: v as u32,
                        contrast: (v as i32 - mean.at(x, y)).unsigned_abs(),
                        sum2: v as u64 * v as u64,
                    };
                    match blob.as_mut() {
                        Some(b) => b.merge(&pixel),
                        None => blob = Some(pixel),
                    }
                    for (dx, dy) in
                        (-1isize..=1).flat_map(|dy| (-1isize..=1).map(move |dx| (dx, dy)))
                    {
                        let q =
                            ((y as isize + 1 + dy) as usize) * pw + (x as isize + 1 + dx) as usize;
                        if ink[q] != 0 && !seen[q] {
                            seen[q] = true;
                            stack.push(((x as isize + dx) as usize, (y as isize + dy) as usize));
                        }
                    }
                }
                found.extend(blob);
            }
        }
        found
    }

    #[test]
    fn blobs_by_runs_are_the_blobs_a_flood_fill_finds() {
        // Noise at several densities (isolated pixels, touching diagonals, snakes that
        // join runs only several rows down, a mask all ink) and a grain that is mostly
        // one blob; both inks of each.
        let mut state = 11u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 24
        };
        let (w, h) = (61, 47);
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for density in [10u32, 80, 128, 200, 256] {
            cases.push(
                (0..w * h)
                    .map(|_| if next() < density { 0 } else { 255 })
                    .collect(),
            );
        }
        cases.push((0..w * h).map(|_| (next() % 64) as u8 * 4).collect());
        cases.push(image(w, h, 200, &letters(5, 3, 20)));
        for gray in &cases {
            for window in [3, 21] {
                let mean = LocalMean::new(gray, w, h, window);
                let (dark, light) = mean.ink(gray, 0);
                for ink in [&dark, &light] {
                    let all = blobs_by_flood_fill(gray, &mean, ink);
                    assert_eq!(blobs(gray, &mean, ink, |_| true), all);
                    // Only the blobs kept are summed and returned, whole: the gate's
                    // own test, and one that keeps blobs larger than a pixel.
                    let params = GateParams::default();
                    let tests: [&dyn Fn(&Blob) -> bool; 2] =
                        [&|b| b.may_be_glyph(&params), &|b| b.n > 1];
                    for wanted in tests {
                        let kept: Vec<Blob> = all.iter().copied().filter(wanted).collect();
                        assert_eq!(blobs(gray, &mean, ink, wanted), kept);
                    }
                }
            }
        }
        // A mask of ink everywhere is one blob of every pixel.
        let gray = vec![7u8; w * h];
        let mean = LocalMean::new(&gray, w, h, 3);
        let mut all = vec![1u8; (w + 2) * (h + 2)];
        for (p, v) in all.iter_mut().enumerate() {
            let (px, py) = (p % (w + 2), p / (w + 2));
            *v = (px > 0 && py > 0 && px <= w && py <= h) as u8;
        }
        let found = blobs(&gray, &mean, &all, |_| true);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].n as usize, w * h);
        assert_eq!(found, blobs_by_flood_fill(&gray, &mean, &all));
    }

    #[test]
    fn edges_are_found_eight_bytes_at_a_time_as_one_at_a_time() {
        let mut state = 3u32;
        for len in [0usize, 1, 7, 8, 9, 16, 23, 64, 100] {
            for density in [0u32, 30, 128, 230, 256] {
                let row: Vec<u8> = (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        u8::from((state >> 24) < density)
                    })
                    .collect();
                for from in 0..=len {
                    for value in [0, 1] {
                        let expected = (from..len).find(|&i| row[i] == value).unwrap_or(len);
                        assert_eq!(edge(&row, from, value), expected, "{row:?} from {from}");
                    }
                }
            }
        }
    }

    /// A grey image with dark bars drawn in it, each `(x, y, w, h)`.
    fn image(w: usize, h: usize, background: u8, bars: &[(usize, usize, usize, usize)]) -> Vec<u8> {
        let mut g = vec![background; w * h];
        for &(x, y, bw, bh) in bars {
            for yy in y..y + bh {
                for xx in x..x + bw {
                    g[yy * w + xx] = 20;
                }
            }
        }
        g
    }

    /// Letter-like pairs of strokes, `n` of them in a row at `y`, 12 px tall.
    fn letters(n: usize, x: usize, y: usize) -> Vec<(usize, usize, usize, usize)> {
        (0..n)
            .flat_map(|i| {
                let left = x + i * 10;
                // An "n": two stems joined by a bar on top.
                [(left, y, 2, 12), (left + 5, y, 2, 12), (left, y, 7, 2)]
            })
            .collect()
    }

    #[test]
    fn the_avx2_pass_finds_what_the_portable_pass_finds() {
        if !crate::text::ocr::avx2::avx2_present() {
            eprintln!("skipped: no AVX2 on this CPU, so only the portable pass runs");
            return;
        }
        let params = GateParams::default();
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut images = 0;
        for folder in ["ocr", "ocr-gate"] {
            for entry in std::fs::read_dir(fixtures.join(folder)).unwrap() {
                let path = entry.unwrap().path();
                if !matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("png" | "jpg")
                ) {
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                let d =
                    crate::decode::decode(&bytes, &crate::decode::DecodeLimits::default()).unwrap();
                let (w, h) = (d.width as usize, d.height as usize);
                // At the detector's scale, and below it: the same size, an interpolation
                // across, and sparse sampling.
                let fit = (736.0 / w.max(h) as f64).min(1.0);
                let at = |f: f64| ((w as f64 * f) as usize, (h as f64 * f) as usize);
                for (dw, dh) in [at(fit), at(fit * 0.7), at(fit * 0.4)] {
                    let grey = grey_at(&d.rgb, w, h, dw, dh);
                    let case = format!("{} at {dw}x{dh}", path.display());
                    assert_eq!(grey, grey_at_portable(&d.rgb, w, h, dw, dh), "{case}");
                    assert_eq!(
                        opponents_at(&d.rgb, w, h, dw / 2, dh / 2),
                        opponents_at_portable(&d.rgb, w, h, dw / 2, dh / 2),
                        "{case}"
                    );
                    assert_eq!(
                        seeds(&grey, dw, dh, &params),
                        seeds_portable(&grey, dw, dh, &params),
                        "{case}"
                    );
                }
                images += 1;
            }
        }
        assert!(images >= 40, "only {images} fixture images");
    }

    #[test]
    fn a_divisor_floors_every_mean_of_bytes_it_can_be_asked_for() {
        // Every numerator for the windows of the default gate and odd ones around it,
        // then the largest divisors the multiplication is trusted with and the first
        // one past them, which divides.
        let exact_limit = ((1u64 << Divisor::SHIFT) as f64 / 255.0).sqrt() as u32;
        let divisors =
            (1..=600).chain([2601, 65_000, exact_limit - 1, exact_limit, exact_limit + 1]);
        for d in divisors {
            let divisor = Divisor::new(d);
            let numerators: Box<dyn Iterator<Item = u32>> = if d <= 2601 {
                Box::new(0..=255 * d)
            } else {
                Box::new(
                    (0..=255u32)
                        .flat_map(move |q| [q * d, (q * d).saturating_sub(1), q * d + d - 1]),
                )
            };
            for n in numerators.filter(|&n| n <= 255 * d) {
                assert_eq!(divisor.floor(n), n / d, "{n} / {d}");
            }
        }
    }

    #[test]
    fn ink_is_decided_against_the_floor_of_the_local_mean_at_every_pixel() {
        // A pseudo-random image small enough that every window is clipped somewhere, and
        // a window larger than it: borders and the interior, every delta sign.
        // Then a wider one whose windows are whole in the middle, and flat images at the
        // ends of the range, where every quotient is a whole number.
        let mut state = 7u32;
        let mut noise = |w: usize, h: usize| -> Vec<u8> {
            (0..w * h)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 24) as u8
                })
                .collect()
        };
        let images = [
            (12, 9, noise(12, 9)),
            (37, 23, noise(37, 23)),
            (160, 48, noise(160, 48)),
            (40, 30, vec![255u8; 40 * 30]),
            (40, 30, vec![0u8; 40 * 30]),
        ];
        for ((w, h, gray), (window, delta)) in images
            .iter()
            .flat_map(|i| [(21, 12), (5, 0), (51, 40)].map(|p| (i, p)))
        {
            let (w, h) = (*w, *h);
            let mean = LocalMean::new(gray, w, h, window);
            let (dark, light) = mean.ink(gray, delta);
            let r = window / 2;
            for y in 0..h {
                for x in 0..w {
                    let (ya, yb) = (y.saturating_sub(r), (y + r + 1).min(h));
                    let (xa, xb) = (x.saturating_sub(r), (x + r + 1).min(w));
                    let sum: u32 = (ya..yb)
                        .flat_map(|yy| (xa..xb).map(move |xx| (xx, yy)))
                        .map(|(xx, yy)| gray[yy * w + xx] as u32)
                        .sum();
                    let m = (sum / ((yb - ya) * (xb - xa)) as u32) as i32;
                    assert_eq!(mean.at(x, y), m, "({x}, {y})");
                    let d = gray[y * w + x] as i32 - m;
                    let p = (y + 1) * (w + 2) + x + 1;
                    assert_eq!(
                        dark[p],
                        u8::from(d < -delta),
                        "dark ({x}, {y}) window {window}"
                    );
                    assert_eq!(
                        light[p],
                        u8::from(d > delta),
                        "light ({x}, {y}) window {window}"
                    );
                }
            }
            // The border is never ink.
            for p in 0..dark.len() {
                let (px, py) = (p % (w + 2), p / (w + 2));
                if px == 0 || py == 0 || px == w + 1 || py == h + 1 {
                    assert!(dark[p] == 0 && light[p] == 0, "border ({px}, {py})");
                }
            }
        }
    }

    #[test]
    fn a_row_in_a_colour_of_the_backgrounds_luma_is_found_in_the_colour_planes() {
        let (w, h) = (600, 300);
        // Cyan on orange, of one luma (158.4 and 158.5); letters 36 px tall.
        let (ink, paper) = ([0u8, 226, 226], [240u8, 140, 40]);
        let bars: Vec<_> = letters(8, 40, 40)
            .into_iter()
            .map(|(x, y, bw, bh)| (3 * x, 3 * y, 3 * bw, 3 * bh))
            .collect();
        let rgb: Vec<u8> = image(w, h, 230, &bars)
            .iter()
            .flat_map(|&v| if v == 20 { ink } else { paper })
            .collect();
        let params = GateParams::default();
        assert!(seeds(&grey_at(&rgb, w, h, w, h), w, h, &params).is_empty());
        let found = seeds_in_colour(&rgb, w, h, (w, h), &params);
        assert!(
            found
                .iter()
                .any(|s| s.rect.x0 < 120 && s.rect.x1 > 351 && s.rect.y0 < 120 && s.rect.y1 > 156),
            "{found:?}"
        );
    }

    #[test]
    fn a_row_of_glyphs_is_a_seed_and_a_flat_image_has_none() {
        let (w, h) = (200, 100);
        let flat = image(w, h, 230, &[]);
        assert!(seeds(&flat, w, h, &GateParams::default()).is_empty());
        let text = image(w, h, 230, &letters(8, 40, 40));
        let found = seeds(&text, w, h, &GateParams::default());
        assert_eq!(found.len(), 1, "{found:?}");
        let r = found[0].rect;
        assert!(
            r.x0 < 40 && r.x1 > 40 + 77 && r.y0 < 40 && r.y1 > 52,
            "{r:?}"
        );
    }

    #[test]
    fn too_few_glyphs_or_glyphs_off_one_line_are_no_row() {
        let (w, h) = (200, 120);
        let params = GateParams::default();
        let two = image(w, h, 230, &letters(2, 40, 40));
        assert!(seeds(&two, w, h, &params).is_empty());
        assert_eq!(
            seeds(&image(w, h, 230, &letters(3, 40, 40)), w, h, &params).len(),
            1
        );
        // Eight letters, each 8 px lower than the last: a staircase, not a line.
        let stairs: Vec<_> = (0..8)
            .flat_map(|i| letters(1, 40 + i * 10, 10 + i * 8))
            .collect();
        assert!(seeds(&image(w, h, 230, &stairs), w, h, &params).is_empty());
    }

    #[test]
    fn light_ink_on_dark_and_vertical_rows_are_found_too() {
        let (w, h) = (120, 200);
        let mut g = image(w, h, 230, &letters(8, 20, 40));
        for v in &mut g {
            *v = 255 - *v;
        }
        assert_eq!(seeds(&g, w, h, &GateParams::default()).len(), 1);
        // The same row turned a quarter.
        let wide = image(200, 120, 230, &letters(8, 40, 40));
        assert_eq!(
            seeds(
                &transposed(&wide, 200, 120),
                120,
                200,
                &GateParams::default()
            )
            .len(),
            1
        );
    }

    /// A `w` x `h` grey image turned a quarter and mirrored: its transpose, `h` x `w`.
    fn transposed(g: &[u8], w: usize, h: usize) -> Vec<u8> {
        let mut t = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                t[x * h + y] = g[y * w + x];
            }
        }
        t
    }

    #[test]
    fn a_row_turned_a_quarter_is_found_turned_and_stacked_strokes_are_no_row() {
        let (w, h) = (160, 120);
        let row = letters(6, 20, 30);
        // Strokes stacked end to end, as grass blades stand: read down, each would be a
        // glyph six times wider than tall, which no row read across takes.
        let blades: Vec<_> = (0..6).map(|i| (120, 10 + i * 16, 2, 12)).collect();
        let sorted = |mut s: Vec<Seed>| {
            s.sort_by_key(|s| (s.rect.x0, s.rect.y0, s.rect.x1, s.rect.y1));
            s
        };
        let params = GateParams::default();
        for (name, bars) in [("row", row), ("blades", blades)] {
            let g = image(w, h, 230, &bars);
            let upright = sorted(seeds(&g, w, h, &params));
            let turned = seeds(&transposed(&g, w, h), h, w, &params)
                .into_iter()
                .map(|s| Seed {
                    rect: Rect {
                        x0: s.rect.y0,
                        y0: s.rect.x0,
                        x1: s.rect.y1,
                        y1: s.rect.x1,
                    },
                    spaced: s.spaced.map(|sp| Spaced {
                        vertical: !sp.vertical,
                        ..sp
                    }),
                    ..s
                })
                .collect();
            assert_eq!(upright, sorted(turned), "{name}");
            assert_eq!(upright.len(), usize::from(name == "row"), "{name}");
        }
    }

    #[test]
    fn a_row_of_letters_spaced_apart_keeps_where_its_letters_are() {
        let params = GateParams::default();
        let dense = image(120, 60, 230, &letters(6, 20, 20));
        let found = seeds(&dense, 120, 60, &params);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].spaced, None,
            "letters a stem apart are ordinary text"
        );
        // Letters two widths apart cover under half of their row.
        let pitch = 7 + 14;
        let bars: Vec<_> = (0..5)
            .flat_map(|i| letters(1, 10 + i * pitch, 40))
            .collect();
        let w = 20 + 5 * pitch;
        let found = seeds(&image(w, 100, 230, &bars), w, 100, &params);
        assert_eq!(found.len(), 1);
        let spans = (0..5).map(|i| (10 + i * pitch, 17 + i * pitch)).collect();
        assert_eq!(
            found[0].spaced,
            Some(Spaced {
                vertical: false,
                spans
            })
        );
    }

    #[test]
    fn a_turned_row_of_letters_spaced_apart_needs_enough_letters() {
        // The same row upright and turned a quarter, letters two widths apart: upright
        // any length is a row, turned only one long enough to spell a contact detail.
        let params = GateParams::default();
        let pitch = 7 + 14;
        for n in 3..=8 {
            let bars: Vec<_> = (0..n)
                .flat_map(|i| letters(1, 10 + i * pitch, 40))
                .collect();
            let (w, h) = (20 + n * pitch, 100);
            let g = image(w, h, 230, &bars);
            let upright = seeds(&g, w, h, &params);
            assert_eq!(upright.len(), 1, "{n} letters upright");
            assert!(upright[0].spaced.is_some(), "{n} letters upright");
            let turned = seeds(&transposed(&g, w, h), h, w, &params);
            // Textures make such rows of two to five.
            if n >= 6 {
                assert_eq!(turned.len(), 1, "{n} letters turned");
                let spaced = turned[0].spaced.as_ref().expect("spaced");
                assert!(
                    spaced.vertical && spaced.spans.len() == n,
                    "{n}: {spaced:?}"
                );
            } else {
                assert!(turned.is_empty(), "{n} letters turned: {turned:?}");
            }
        }
    }

    #[test]
    fn letters_split_by_spaces_still_make_a_row() {
        // "n n n n n" with gaps of one, two and three letter widths, then up to the
        // greatest gap a row bridges: spacing letters out is an evasion, not a texture.
        let params = GateParams::default();
        let (width, height) = (7, 12);
        let reach = (params.max_gap * height as f64) as usize;
        for (gap, found) in [
            (width, 1),
            (2 * width, 1),
            (3 * width, 1),
            (reach, 1),
            (reach + 1, 0),
        ] {
            let pitch = width + gap;
            let bars: Vec<_> = (0..5)
                .flat_map(|i| letters(1, 10 + i * pitch, 40))
                .collect();
            let w = 20 + 5 * pitch;
            let g = image(w, 100, 230, &bars);
            assert_eq!(seeds(&g, w, 100, &params).len(), found, "gap {gap}");
        }
    }

    #[test]
    fn rows_of_tall_glyphs_are_halved_while_they_stay_tall_enough() {
        let seed = |glyph_height| Seed {
            rect: Rect {
                x0: 0,
                y0: 0,
                x1: 10,
                y1: 10,
            },
            glyph_height,
            spaced: None,
        };
        // At least 32 px after each halving, in an image at least 64 px after it.
        assert_eq!(seed(63.0).halvings(32.0, 640, 64), 0);
        assert_eq!(seed(64.0).halvings(32.0, 640, 64), 1);
        assert_eq!(seed(127.0).halvings(32.0, 640, 64), 1);
        assert_eq!(seed(128.0).halvings(32.0, 640, 64), 2);
        assert_eq!(seed(4000.0).halvings(32.0, 4000, 64), MAX_HALVINGS);
        // A small image is not halved below two strides.
        assert_eq!(seed(160.0).halvings(32.0, 200, 64), 1);
        assert_eq!(seed(160.0).halvings(32.0, 127, 64), 0);
    }
}
