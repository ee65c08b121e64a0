//! Rows of letters spaced apart. The detector finds such a line only with much of the
//! image around it (a window of about 320 px a side, against the two strides an
//! ordinary line needs), but finds it at once when its letters stand as in ordinary
//! text; so the gate's sparse rows are shown to it with their letters side by side.

use super::windows::{detector_windows, Rect};
use super::{Pixels, DETECTOR_STRIDE};
use crate::classify::preprocess::resize_linear_region;

/// The glyphs of a row whose letters are spaced apart: their spans along it (columns,
/// or rows in a vertical row), disjoint and in order, end exclusive.
#[derive(Clone, Debug, PartialEq)]
pub struct Spaced {
    pub vertical: bool,
    pub spans: Vec<(usize, usize)>,
}

impl Spaced {
    /// The spans in an image halved `k` times, covering every pixel they covered, and
    /// joined where that makes them meet.
    pub fn halved(&self, k: u32) -> Spaced {
        let d = 1usize << k;
        Spaced {
            vertical: self.vertical,
            spans: joined(self.spans.iter().map(|&(a, b)| (a / d, b.div_ceil(d)))),
        }
    }

    /// The spans of a half-size image's row in the full-size image.
    pub(super) fn doubled(&self) -> Spaced {
        Spaced {
            vertical: self.vertical,
            spans: self.spans.iter().map(|&(a, b)| (2 * a, 2 * b)).collect(),
        }
    }
}

/// Spans sorted by their starts, with those that overlap or touch joined.
pub(super) fn joined<T: PartialOrd + Copy>(spans: impl Iterator<Item = (T, T)>) -> Vec<(T, T)> {
    let mut out: Vec<(T, T)> = Vec::new();
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => {
                if b > last.1 {
                    last.1 = b;
                }
            }
            _ => out.push((a, b)),
        }
    }
    out
}

/// The positions along a row from `from` to `to` that show its letters side by side:
/// the margin before the first glyph, each glyph's span followed by at most `gap`
/// positions of what lies after it, and everything after the last.
pub fn compacted(spans: &[(usize, usize)], from: usize, to: usize, gap: usize) -> Vec<usize> {
    let spans: Vec<(usize, usize)> = spans
        .iter()
        .map(|&(a, b)| (a.clamp(from, to), b.clamp(from, to)))
        .filter(|(a, b)| a < b)
        .collect();
    let Some(&(first, _)) = spans.first() else {
        return (from..to).collect();
    };
    let mut keep: Vec<usize> = (from..first).collect();
    for (i, &(a, b)) in spans.iter().enumerate() {
        let end = match spans.get(i + 1) {
            Some(&(next, _)) => (b + gap).min(next),
            None => to,
        };
        keep.extend(a..end);
    }
    keep
}

/// The window shown to the detector for a row of letters spaced apart, in an image
/// scaled to `scaled`: the row's rectangle, grown across the row as other windows are
/// ([`detector_windows`]), with the letters put side by side along it
/// ([`compacted`]). Returns the rectangle it was cut from and its pixels.
pub(super) fn window(
    rgb: &[u8],
    width: usize,
    height: usize,
    scaled: (usize, usize),
    rect: Rect,
    spaced: &Spaced,
    gap: usize,
) -> (Rect, Pixels) {
    let grown = detector_windows(&[rect], scaled.0, scaled.1, DETECTOR_STRIDE)[0];
    let region = if spaced.vertical {
        Rect {
            y0: rect.y0,
            y1: rect.y1,
            ..grown
        }
    } else {
        Rect {
            x0: rect.x0,
            x1: rect.x1,
            ..grown
        }
    };
    let cut = resize_linear_region(
        rgb,
        width,
        height,
        scaled,
        (region.x0..region.x1, region.y0..region.y1),
    );
    let (rw, rh) = (region.width(), region.height());
    let pixel = |x: usize, y: usize| &cut[(y * rw + x) * 3..(y * rw + x) * 3 + 3];
    let pixels = if spaced.vertical {
        let keep = compacted(&spaced.spans, region.y0, region.y1, gap);
        let rgb = keep
            .iter()
            .flat_map(|&y| (0..rw).flat_map(move |x| pixel(x, y - region.y0)))
            .copied()
            .collect();
        Pixels {
            width: rw,
            height: keep.len(),
            rgb,
        }
    } else {
        let keep = compacted(&spaced.spans, region.x0, region.x1, gap);
        let rgb = (0..rh)
            .flat_map(|y| keep.iter().flat_map(move |&x| pixel(x - region.x0, y)))
            .copied()
            .collect();
        Pixels {
            width: keep.len(),
            height: rh,
            rgb,
        }
    };
    (region, pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaced_letters_are_put_side_by_side_with_the_rows_margins() {
        let spans = [(10, 15), (30, 35), (50, 55)];
        let side_by_side: Vec<usize> = (2..18).chain(30..38).chain(50..70).collect();
        assert_eq!(compacted(&spans, 2, 70, 3), side_by_side);
        // A gap wider than the space between letters keeps the space as it is.
        assert_eq!(compacted(&spans, 2, 70, 40), (2..70).collect::<Vec<_>>());
        // Spans are clipped to the row; without any the row is kept whole.
        assert_eq!(
            compacted(&[(0, 5), (60, 80)], 2, 70, 1),
            (2..6).chain(60..70).collect::<Vec<_>>()
        );
        assert_eq!(compacted(&[], 2, 9, 1), (2..9).collect::<Vec<_>>());
        assert_eq!(compacted(&[(80, 90)], 2, 9, 1), (2..9).collect::<Vec<_>>());
    }

    #[test]
    fn halved_spans_cover_what_they_covered_and_join_where_they_meet() {
        let spaced = Spaced {
            vertical: true,
            spans: vec![(3, 5), (6, 9), (20, 21)],
        };
        assert_eq!(
            spaced.halved(1),
            Spaced {
                vertical: true,
                spans: vec![(1, 5), (10, 11)]
            }
        );
        assert_eq!(spaced.halved(0), spaced);
    }
}
