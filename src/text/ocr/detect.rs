//! Text detection around the PP-OCRv4 detector, step for step as rapidocr 1.4.4 does
//! it: the image shrunk (or grown) and letterboxed as its `RapidOCR.__call__` does,
//! the detector's input (`DetPreProcess`), and the boxes read off its probability map
//! (`DBPostProcess`, `filter_tag_det_res`, `sorted_boxes`).

use serde::Deserialize;

use super::geometry::{
    fill_convex_polygon, grow_convex_polygon, min_area_rect, polygon_area, polygon_perimeter, Point,
};
use crate::classify::preprocess::resize_linear;

/// Which side `limit_side_len` bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitType {
    /// The shorter side is grown to the limit when below it, never shrunk.
    Min,
    /// The longer side is shrunk to the limit when above it, never grown.
    Max,
}

/// The detection facts of the manifest's `[ocr.detect]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectParams {
    pub max_side_len: u32,
    pub min_side_len: u32,
    pub letterbox_min_height: u32,
    pub letterbox_width_height_ratio: f64,
    pub limit_side_len: u32,
    pub limit_type: LimitType,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub thresh: f32,
    pub box_thresh: f32,
    pub max_candidates: usize,
    pub unclip_ratio: f32,
    pub use_dilation: bool,
    pub score_mode: ScoreMode,
}

/// How a box is scored; only rapidocr's default is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreMode {
    /// The mean probability over the box's own quadrilateral.
    Fast,
}

/// An RGB8 image owned by the OCR steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pixels {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// The image the detector and the recogniser work on, and how its coordinates map back
/// to the source's.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub pixels: Pixels,
    /// Source pixels per prepared pixel, per axis.
    pub ratio_w: f64,
    pub ratio_h: f64,
    /// Black rows added above (and as many below) the scaled image.
    pub pad_top: usize,
    pub source_width: usize,
    pub source_height: usize,
}

impl Prepared {
    /// A point of the prepared image in source pixels, clipped to the source (as
    /// rapidocr's `_get_origin_points`).
    pub fn to_source(&self, p: Point) -> Point {
        let x = p.x * self.ratio_w;
        let y = (p.y - self.pad_top as f64) * self.ratio_h;
        Point::new(
            x.clamp(0.0, self.source_width as f64),
            y.clamp(0.0, self.source_height as f64),
        )
    }
}

/// Python's `int(round(v / 32) * 32)`: halves to even.
fn round_to_32(v: usize) -> usize {
    ((v as f64 / 32.0).round_ties_even() * 32.0) as usize
}

/// Side lengths after scaling by `ratio` and rounding each to a multiple of 32.
fn scaled_to_32(width: usize, height: usize, ratio: f64) -> (usize, usize) {
    (
        round_to_32((width as f64 * ratio) as usize),
        round_to_32((height as f64 * ratio) as usize),
    )
}

/// rapidocr's image before detection: longer side over `max_side_len` shrunk, shorter
/// side under `min_side_len` grown (both to multiples of 32), then black rows above and
/// below a flat or very wide image.
pub fn prepare(rgb: &[u8], width: usize, height: usize, params: &DetectParams) -> Option<Prepared> {
    if width == 0 || height == 0 {
        return None;
    }
    let mut pixels = Pixels {
        width,
        height,
        rgb: rgb.to_vec(),
    };
    let (mut ratio_w, mut ratio_h) = (1.0, 1.0);
    let rescale = |pixels: &mut Pixels, ratio: f64| -> Option<(f64, f64)> {
        let (w, h) = scaled_to_32(pixels.width, pixels.height, ratio);
        if w == 0 || h == 0 {
            return None;
        }
        let (rw, rh) = (
            pixels.width as f64 / w as f64,
            pixels.height as f64 / h as f64,
        );
        *pixels = Pixels {
            width: w,
            height: h,
            rgb: resize_linear(&pixels.rgb, pixels.width, pixels.height, w, h),
        };
        Some((rw, rh))
    };
    let longest = width.max(height);
    if longest > params.max_side_len as usize {
        (ratio_w, ratio_h) = rescale(&mut pixels, params.max_side_len as f64 / longest as f64)?;
    }
    let shortest = pixels.width.min(pixels.height);
    if shortest < params.min_side_len as usize {
        (ratio_w, ratio_h) = rescale(&mut pixels, params.min_side_len as f64 / shortest as f64)?;
    }
    let (w, h) = (pixels.width, pixels.height);
    let wide = w as f64 / h as f64 > params.letterbox_width_height_ratio;
    let mut pad_top = 0;
    if h <= params.letterbox_min_height as usize || wide {
        let new_h = ((w as f64 / params.letterbox_width_height_ratio) as usize)
            .max(params.letterbox_min_height as usize)
            * 2;
        pad_top = new_h.abs_diff(h) / 2;
        let row = w * 3;
        let mut padded = vec![0u8; row * (h + 2 * pad_top)];
        padded[pad_top * row..(pad_top + h) * row].copy_from_slice(&pixels.rgb);
        pixels = Pixels {
            width: w,
            height: h + 2 * pad_top,
            rgb: padded,
        };
    }
    Some(Prepared {
        pixels,
        ratio_w,
        ratio_h,
        pad_top,
        source_width: width,
        source_height: height,
    })
}

/// The detector's input size for an image (`DetPreProcess.resize`), or `None` when a
/// side rounds to zero.
pub fn input_size(
    width: usize,
    height: usize,
    limit: u32,
    limit_type: LimitType,
) -> Option<(usize, usize)> {
    let limit = limit as f64;
    let ratio = match limit_type {
        LimitType::Max if width.max(height) as f64 > limit => limit / width.max(height) as f64,
        LimitType::Min if (width.min(height) as f64) < limit => limit / width.min(height) as f64,
        _ => 1.0,
    };
    let (w, h) = scaled_to_32(width, height, ratio);
    (w > 0 && h > 0).then_some((w, h))
}

/// The detector's input size for a `width` x `height` source, as [`prepare`] and then
/// [`input_size`] make it (without the letterbox's black rows).
pub fn detector_size(width: usize, height: usize, params: &DetectParams) -> Option<(usize, usize)> {
    if width == 0 || height == 0 {
        return None;
    }
    let (mut w, mut h) = (width, height);
    if w.max(h) > params.max_side_len as usize {
        (w, h) = scaled_to_32(w, h, params.max_side_len as f64 / w.max(h) as f64);
    }
    if w.min(h) > 0 && w.min(h) < params.min_side_len as usize {
        (w, h) = scaled_to_32(w, h, params.min_side_len as f64 / w.min(h) as f64);
    }
    if w == 0 || h == 0 {
        return None;
    }
    input_size(w, h, params.limit_side_len, params.limit_type)
}

/// The detector's NCHW input (channels B, G, R, each `(v / 255 - mean) / std`) for
/// `pixels` resized to `size`.
pub fn input_tensor(pixels: &Pixels, size: (usize, usize), params: &DetectParams) -> Vec<f32> {
    let (w, h) = size;
    let resized = resize_linear(&pixels.rgb, pixels.width, pixels.height, w, h);
    let plane = w * h;
    let mut out = vec![0f32; plane * 3];
    for p in 0..3 {
        // Plane 0 is blue: rapidocr hands the detector OpenCV's BGR order.
        let c = 2 - p;
        let (mean, std) = (params.mean[p] as f64, params.std[p] as f64);
        for (i, o) in out[p * plane..(p + 1) * plane].iter_mut().enumerate() {
            let scaled = resized[i * 3 + c] as f32 * (1.0f32 / 255.0);
            *o = ((scaled as f64 - mean) / std) as f32;
        }
    }
    out
}

/// A detected text box: corners top-left, top-right, bottom-right, bottom-left in the
/// prepared image, and the mean text probability inside it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TextBox {
    pub quad: [Point; 4],
    pub score: f64,
}

/// The text boxes in the detector's probability map (`map_w` x `map_h`), in the
/// coordinates of a `dest_w` x `dest_h` image, top to bottom and left to right.
pub fn boxes(
    pred: &[f32],
    map_w: usize,
    map_h: usize,
    dest_w: usize,
    dest_h: usize,
    params: &DetectParams,
) -> Vec<TextBox> {
    debug_assert_eq!(pred.len(), map_w * map_h);
    let mut bitmap: Vec<bool> = pred.iter().map(|&p| p > params.thresh).collect();
    if params.use_dilation {
        bitmap = dilate_2x2(&bitmap, map_w, map_h);
    }
    let mut found = Vec::new();
    for component in components(&bitmap, map_w, map_h)
        .into_iter()
        .take(params.max_candidates)
    {
        let Some((quad, short)) = mini_box(&component) else {
            continue;
        };
        if short < MIN_SIZE {
            continue;
        }
        let score = box_score_fast(pred, map_w, map_h, &quad);
        if params.box_thresh as f64 > score {
            continue;
        }
        let distance = polygon_area(&quad) * params.unclip_ratio as f64 / polygon_perimeter(&quad);
        let grown = grow_convex_polygon(&quad, distance);
        let Some((quad, short)) = mini_box(&grown) else {
            continue;
        };
        if short < MIN_SIZE + 2.0 {
            continue;
        }
        let scale = |v: f64, from: usize, to: usize| {
            (v / from as f64 * to as f64)
                .round_ties_even()
                .clamp(0.0, to as f64)
        };
        let quad = quad.map(|p| Point::new(scale(p.x, map_w, dest_w), scale(p.y, map_h, dest_h)));
        found.push(TextBox { quad, score });
    }
    let mut kept: Vec<TextBox> = found
        .into_iter()
        .filter_map(|b| {
            let quad = order_clockwise(b.quad).map(|p| {
                Point::new(
                    p.x.clamp(0.0, dest_w as f64 - 1.0).trunc(),
                    p.y.clamp(0.0, dest_h as f64 - 1.0).trunc(),
                )
            });
            let w = quad[0].distance(quad[1]) as i64;
            let h = quad[0].distance(quad[3]) as i64;
            (w > 3 && h > 3).then_some(TextBox { quad, ..b })
        })
        .collect();
    sort_reading_order(&mut kept);
    kept
}

/// DBPostProcess's `min_size`.
const MIN_SIZE: f64 = 3.0;

/// `cv2.dilate` with a 2x2 kernel of ones: a pixel is set when it, its left, upper or
/// upper-left neighbour is.
fn dilate_2x2(bitmap: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut out = bitmap.to_vec();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            out[i] = bitmap[i]
                || (x > 0 && bitmap[i - 1])
                || (y > 0 && bitmap[i - w])
                || (x > 0 && y > 0 && bitmap[i - w - 1]);
        }
    }
    out
}

/// The 8-connected regions of set pixels, each as the leftmost and rightmost pixel
/// centre of every row it spans: enough for its convex hull, which is all the boxes use.
/// (OpenCV's `findContours` with RETR_LIST also returns holes' borders; a hole's box
/// holds the low probabilities of the hole and falls under `box_thresh`.)
fn components(bitmap: &[bool], w: usize, h: usize) -> Vec<Vec<Point>> {
    let mut label = vec![0u32; bitmap.len()];
    let mut regions = Vec::new();
    let mut stack = Vec::new();
    for start in 0..bitmap.len() {
        if !bitmap[start] || label[start] != 0 {
            continue;
        }
        let id = regions.len() as u32 + 1;
        let mut extents: std::collections::BTreeMap<usize, (usize, usize)> = Default::default();
        label[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            let e = extents.entry(y).or_insert((x, x));
            e.0 = e.0.min(x);
            e.1 = e.1.max(x);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let n = ny as usize * w + nx as usize;
                    if bitmap[n] && label[n] == 0 {
                        label[n] = id;
                        stack.push(n);
                    }
                }
            }
        }
        regions.push(
            extents
                .into_iter()
                .flat_map(|(y, (a, b))| {
                    [
                        Point::new(a as f64, y as f64),
                        Point::new(b as f64, y as f64),
                    ]
                })
                .collect(),
        );
    }
    regions
}

/// `get_mini_boxes`: the minimum-area rectangle's corners as top-left, top-right,
/// bottom-right, bottom-left (by rapidocr's x-then-y rule), and its short side.
fn mini_box(points: &[Point]) -> Option<([Point; 4], f64)> {
    let rect = min_area_rect(points)?;
    let mut p = rect.corners.to_vec();
    p.sort_by(|a, b| a.x.total_cmp(&b.x));
    let (i1, i4) = if p[1].y > p[0].y { (0, 1) } else { (1, 0) };
    let (i2, i3) = if p[3].y > p[2].y { (2, 3) } else { (3, 2) };
    Some(([p[i1], p[i2], p[i3], p[i4]], rect.short_side()))
}

/// `box_score_fast`: the mean probability over the box's filled polygon.
fn box_score_fast(pred: &[f32], w: usize, h: usize, quad: &[Point; 4]) -> f64 {
    let clip = |v: f64, hi: usize| (v as i64).clamp(0, hi as i64 - 1) as usize;
    let xmin = clip(quad.iter().map(|p| p.x).fold(f64::MAX, f64::min).floor(), w);
    let xmax = clip(quad.iter().map(|p| p.x).fold(f64::MIN, f64::max).ceil(), w);
    let ymin = clip(quad.iter().map(|p| p.y).fold(f64::MAX, f64::min).floor(), h);
    let ymax = clip(quad.iter().map(|p| p.y).fold(f64::MIN, f64::max).ceil(), h);
    let local = quad.map(|p| Point::new((p.x - xmin as f64).trunc(), (p.y - ymin as f64).trunc()));
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (y, x0, x1) in fill_convex_polygon(&local, xmax - xmin + 1, ymax - ymin + 1) {
        let row = (ymin + y) * w + xmin;
        sum += pred[row + x0..=row + x1]
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>();
        n += x1 - x0 + 1;
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// `order_points_clockwise`: the two leftmost points by y are top-left and bottom-left,
/// the two rightmost top-right and bottom-right.
fn order_clockwise(quad: [Point; 4]) -> [Point; 4] {
    let mut p = quad.to_vec();
    p.sort_by(|a, b| a.x.total_cmp(&b.x));
    let (mut left, mut right) = ([p[0], p[1]], [p[2], p[3]]);
    left.sort_by(|a, b| a.y.total_cmp(&b.y));
    right.sort_by(|a, b| a.y.total_cmp(&b.y));
    [left[0], right[0], right[1], left[1]]
}

/// `sorted_boxes`: by the top-left corner's y then x, then boxes whose tops are within
/// 10 px of each other put left to right.
fn sort_reading_order(boxes: &mut [TextBox]) {
    boxes.sort_by(|a, b| {
        a.quad[0]
            .y
            .total_cmp(&b.quad[0].y)
            .then(a.quad[0].x.total_cmp(&b.quad[0].x))
    });
    for i in 0..boxes.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            if (boxes[j + 1].quad[0].y - boxes[j].quad[0].y).abs() < 10.0
                && boxes[j + 1].quad[0].x < boxes[j].quad[0].x
            {
                boxes.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn params() -> DetectParams {
        DetectParams {
            max_side_len: 2000,
            min_side_len: 30,
            letterbox_min_height: 30,
            letterbox_width_height_ratio: 8.0,
            limit_side_len: 736,
            limit_type: LimitType::Max,
            mean: [0.5; 3],
            std: [0.5; 3],
            thresh: 0.3,
            box_thresh: 0.5,
            max_candidates: 1000,
            unclip_ratio: 1.6,
            use_dilation: true,
            score_mode: ScoreMode::Fast,
        }
    }

    #[test]
    fn input_sizes_round_to_32_as_python_does() {
        // 640 stays; 3000x2000 shrinks to 736x490.67 -> 736x480 (15.33 rounds down).
        assert_eq!(input_size(640, 640, 736, LimitType::Max), Some((640, 640)));
        assert_eq!(
            input_size(3000, 2000, 736, LimitType::Max),
            Some((736, 480))
        );
        // 16.5 * 32 = 528: the half goes to the even 16.
        assert_eq!(input_size(528, 100, 736, LimitType::Max), Some((512, 96)));
        assert_eq!(input_size(640, 320, 736, LimitType::Min), Some((1472, 736)));
        assert_eq!(input_size(10, 10, 736, LimitType::Max), None);
    }

    #[test]
    fn the_detector_size_of_a_source_is_what_prepare_then_input_size_give() {
        let p = params();
        for (w, h) in [(640, 640), (3000, 2000), (900, 60), (20, 300), (2100, 80)] {
            let prepared = prepare(&vec![0u8; w * h * 3], w, h, &p).unwrap();
            // The letterbox adds rows only; the width the detector sees is the same.
            let full = input_size(
                prepared.pixels.width,
                prepared.pixels.height,
                p.limit_side_len,
                p.limit_type,
            )
            .unwrap();
            let unpadded = detector_size(w, h, &p).unwrap();
            assert_eq!(unpadded.0, full.0, "{w}x{h}");
            if prepared.pad_top == 0 {
                assert_eq!(unpadded, full, "{w}x{h}");
            }
        }
        assert_eq!(detector_size(0, 10, &p), None);
        // Only the letterbox's black rows give so flat an image a height to detect in.
        assert_eq!(detector_size(2100, 40, &p), None);
    }

    #[test]
    fn large_images_shrink_to_2000_and_wide_ones_are_letterboxed() {
        let p = params();
        let big = prepare(&vec![9u8; 3000 * 1500 * 3], 3000, 1500, &p).unwrap();
        assert_eq!(
            (big.pixels.width, big.pixels.height, big.pad_top),
            (1984, 992, 0)
        );
        assert!((big.ratio_w - 3000.0 / 1984.0).abs() < 1e-12);
        let wide = prepare(&vec![200u8; 900 * 60 * 3], 900, 60, &p).unwrap();
        // new height max(900 / 8, 30) * 2 = 224: 82 black rows above and below.
        assert_eq!(
            (wide.pixels.width, wide.pixels.height, wide.pad_top),
            (900, 224, 82)
        );
        assert_eq!(wide.pixels.rgb[0], 0);
        assert_eq!(wide.pixels.rgb[82 * 900 * 3], 200);
        let back = wide.to_source(Point::new(10.0, 82.0 + 30.0));
        assert_eq!((back.x, back.y), (10.0, 30.0));
        assert!(prepare(&[], 0, 0, &p).is_none());
    }

    #[test]
    fn a_block_of_text_probability_becomes_one_grown_box() {
        let (w, h) = (64, 32);
        let mut pred = vec![0.05f32; w * h];
        for y in 10..18 {
            for x in 8..50 {
                pred[y * w + x] = 0.9;
            }
        }
        // A speck under min_size and a faint block under box_thresh make no box.
        pred[2 * w + 60] = 0.9;
        for y in 24..30 {
            for x in 8..40 {
                pred[y * w + x] = 0.35;
            }
        }
        let found = boxes(&pred, w, h, w * 2, h * 2, &params());
        assert_eq!(found.len(), 1, "{found:?}");
        let b = found[0];
        // The dilated rim (one column and row of 0.05) is inside the box too.
        assert!(b.score > 0.75 && b.score < 0.9, "{b:?}");
        // Grown by area * 1.6 / perimeter on each side, then scaled by 2.
        let [tl, tr, br, bl] = b.quad;
        assert!(
            tl.x < 16.0 && tr.x > 98.0 && tl.y < 20.0 && bl.y > 34.0,
            "{b:?}"
        );
        assert_eq!((tl.y, tr.x), (tr.y, br.x));
    }

    #[test]
    fn boxes_are_read_top_to_bottom_then_left_to_right() {
        let at = |x: f64, y: f64| TextBox {
            quad: [Point::new(x, y); 4],
            score: 1.0,
        };
        let mut b = vec![at(50.0, 12.0), at(5.0, 100.0), at(10.0, 15.0)];
        sort_reading_order(&mut b);
        let xs: Vec<f64> = b.iter().map(|b| b.quad[0].x).collect();
        assert_eq!(xs, vec![10.0, 50.0, 5.0]);
    }
}
