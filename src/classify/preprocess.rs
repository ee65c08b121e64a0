//! Model input exactly as NudeNet 3.4.2 builds it with OpenCV.
//!
//! NudeNet pads the image with black at the bottom/right to a square of side
//! `max(w, h)` and calls `cv2.dnn.blobFromImage`, which resizes with OpenCV's
//! 8-bit INTER_LINEAR. That resize is fixed-point, not float bilinear: 11-bit
//! weights rounded from float offsets, a horizontal pass kept at full precision
//! and a vertical pass whose SIMD kernel drops 4 + 16 bits before rounding. An
//! exact 2x shrink is done as a 2x2 box average instead. Matching those integer
//! steps is what makes our scores the reference's rather than merely close.
//!
//! The padded square is never materialised: pixels past the image are black.

use std::ops::Range;

/// OpenCV's INTER_RESIZE_COEF_BITS.
const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// One output coordinate's two source taps and fixed-point weights.
#[derive(Clone, Copy, Debug)]
struct Tap {
    first: usize,
    second: usize,
    w_first: i32,
    w_second: i32,
}

/// OpenCV `saturate_cast<short>(float)`: round half to even.
fn round_to_i16(v: f32) -> i32 {
    v.round_ties_even().clamp(i16::MIN as f32, i16::MAX as f32) as i32
}

/// Taps along one axis, following OpenCV's resize coefficient set-up.
/// `clamp_weights` is true for x (OpenCV resets the fraction at the borders) and
/// false for y (it only clamps the row index).
fn taps(src_len: usize, dst_len: usize, clamp_weights: bool) -> Vec<Tap> {
    let inv_scale = dst_len as f64 / src_len as f64;
    let scale = 1.0 / inv_scale;
    let last = src_len as i64 - 1;
    (0..dst_len)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if clamp_weights {
                if s < 0 {
                    frac = 0.0;
                    s = 0;
                }
                if s >= last {
                    frac = 0.0;
                    s = last;
                }
            }
            Tap {
                first: s.clamp(0, last) as usize,
                second: (s + 1).clamp(0, last) as usize,
                w_first: round_to_i16((1.0 - frac) * COEF_SCALE),
                w_second: round_to_i16(frac * COEF_SCALE),
            }
        })
        .collect()
}

/// Resize the black-padded square of an RGB8 image to `dst_side`², as
/// `cv2.resize(..., INTER_LINEAR)` does on 8-bit 3-channel input.
pub fn resize_padded_square(rgb: &[u8], width: usize, height: usize, dst_side: usize) -> Vec<u8> {
    debug_assert_eq!(rgb.len(), width * height * 3);
    let side = width.max(height);
    let pixel = |x: usize, y: usize, c: usize| -> i32 {
        if x < width && y < height {
            rgb[(y * width + x) * 3 + c] as i32
        } else {
            0
        }
    };
    resize_with(
        pixel,
        (side, side),
        (dst_side, dst_side),
        (0..dst_side, 0..dst_side),
    )
}

/// Resize an RGB8 image to `dst_width` x `dst_height`, as
/// `cv2.resize(..., INTER_LINEAR)` does on 8-bit 3-channel input.
pub fn resize_linear(
    rgb: &[u8],
    width: usize,
    height: usize,
    dst_width: usize,
    dst_height: usize,
) -> Vec<u8> {
    debug_assert_eq!(rgb.len(), width * height * 3);
    if (width, height) == (dst_width, dst_height) {
        return rgb.to_vec();
    }
    let whole = (0..dst_width, 0..dst_height);
    resize_linear_region(rgb, width, height, (dst_width, dst_height), whole)
}

/// The `region` (columns, rows) of [`resize_linear`]'s output, computed alone: each output pixel
/// depends only on its own taps, so it equals the same rectangle cut from the whole
/// resize, at the cost of the region's pixels.
pub fn resize_linear_region(
    rgb: &[u8],
    width: usize,
    height: usize,
    dst: (usize, usize),
    region: (Range<usize>, Range<usize>),
) -> Vec<u8> {
    debug_assert_eq!(rgb.len(), width * height * 3);
    let pixel = |x: usize, y: usize, c: usize| -> i32 { rgb[(y * width + x) * 3 + c] as i32 };
    resize_with(pixel, (width, height), dst, region)
}

/// OpenCV's 8-bit 3-channel INTER_LINEAR resize of the image `pixel` reads, the
/// `region` (columns, rows) of its output, clipped to the output.
fn resize_with(
    pixel: impl Fn(usize, usize, usize) -> i32,
    (src_w, src_h): (usize, usize),
    (dst_w, dst_h): (usize, usize),
    (xs, ys): (Range<usize>, Range<usize>),
) -> Vec<u8> {
    let xs = xs.start.min(dst_w)..xs.end.min(dst_w);
    let ys = ys.start.min(dst_h)..ys.end.min(dst_h);
    let (rw, rh) = (xs.len(), ys.len());
    let mut out = vec![0u8; rw * rh * 3];
    if rw == 0 || rh == 0 || src_w == 0 || src_h == 0 {
        return out;
    }
    let at = |x: usize, y: usize| ((y - ys.start) * rw + x - xs.start) * 3;
    if (src_w, src_h) == (dst_w, dst_h) {
        for y in ys.clone() {
            for x in xs.clone() {
                for c in 0..3 {
                    out[at(x, y) + c] = pixel(x, y, c) as u8;
                }
            }
        }
        return out;
    }
    // OpenCV turns an exact 2x INTER_LINEAR shrink on both axes into its fast 2x2
    // area average.
    let scale_x = 1.0 / (dst_w as f64 / src_w as f64);
    let scale_y = 1.0 / (dst_h as f64 / src_h as f64);
    if (scale_x - 2.0).abs() < f64::EPSILON && (scale_y - 2.0).abs() < f64::EPSILON {
        for y in ys.clone() {
            for x in xs.clone() {
                for c in 0..3 {
                    let sum = pixel(2 * x, 2 * y, c)
                        + pixel(2 * x + 1, 2 * y, c)
                        + pixel(2 * x, 2 * y + 1, c)
                        + pixel(2 * x + 1, 2 * y + 1, c);
                    out[at(x, y) + c] = ((sum + 2) >> 2) as u8;
                }
            }
        }
        return out;
    }

    let x_taps = &taps(src_w, dst_w, true)[xs];
    let y_taps = &taps(src_h, dst_h, false)[ys];
    // Horizontal pass of one source row, at full fixed-point precision.
    let horizontal = |row: usize, buf: &mut Vec<i32>| {
        buf.clear();
        for t in x_taps {
            for c in 0..3 {
                buf.push(pixel(t.first, row, c) * t.w_first + pixel(t.second, row, c) * t.w_second);
            }
        }
    };
    let (mut row_a, mut row_b) = (Vec::with_capacity(rw * 3), Vec::with_capacity(rw * 3));
    let mut cached: (Option<usize>, Option<usize>) = (None, None);
    for (dy, t) in y_taps.iter().enumerate() {
        if cached.0 != Some(t.first) {
            if cached.1 == Some(t.first) {
                std::mem::swap(&mut row_a, &mut row_b);
                cached.0 = cached.1.take();
            } else {
                horizontal(t.first, &mut row_a);
                cached.0 = Some(t.first);
            }
        }
        if cached.1 != Some(t.second) {
            horizontal(t.second, &mut row_b);
            cached.1 = Some(t.second);
        }
        let dst = &mut out[dy * rw * 3..(dy + 1) * rw * 3];
        for (i, d) in dst.iter_mut().enumerate() {
            // OpenCV's vectorised vertical kernel: >>4, 16-bit multiply-high, then round >>2.
            let a = ((row_a[i] >> 4).min(i16::MAX as i32) * t.w_first) >> 16;
            let b = ((row_b[i] >> 4).min(i16::MAX as i32) * t.w_second) >> 16;
            *d = ((a + b + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    out
}

/// Channel order of the model input planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

impl ChannelOrder {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rgb" => Some(ChannelOrder::Rgb),
            "bgr" => Some(ChannelOrder::Bgr),
            _ => None,
        }
    }
}

/// Write an RGB8 `side`² image as one NCHW float32 plane set, scaled.
pub fn to_nchw(resized: &[u8], side: usize, order: ChannelOrder, scale: f32, out: &mut [f32]) {
    let plane = side * side;
    debug_assert_eq!(out.len(), plane * 3);
    let source_channel = |plane_index: usize| match order {
        ChannelOrder::Rgb => plane_index,
        ChannelOrder::Bgr => 2 - plane_index,
    };
    for p in 0..3 {
        let c = source_channel(p);
        for (i, o) in out[p * plane..(p + 1) * plane].iter_mut().enumerate() {
            *o = resized[i * 3 + c] as f32 * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_copy_and_padding_is_black() {
        let rgb: Vec<u8> = (0..4 * 2 * 3).map(|v| v as u8 + 10).collect();
        let out = resize_padded_square(&rgb, 4, 2, 4);
        assert_eq!(&out[..24], &rgb[..]);
        assert!(out[24..].iter().all(|&v| v == 0));
    }

    #[test]
    fn exact_half_is_a_rounded_box_average() {
        // 2x2 block 1, 2, 3, 5 -> (11 + 2) >> 2 = 3.
        let mut rgb = vec![0u8; 4 * 4 * 3];
        for (i, v) in [(0, 1u8), (1, 2), (4, 3), (5, 5)] {
            rgb[i * 3] = v;
        }
        let out = resize_padded_square(&rgb, 4, 4, 2);
        assert_eq!(out[0], 3);
    }

    #[test]
    fn flat_image_stays_flat() {
        let rgb = vec![200u8; 37 * 37 * 3];
        for side in [5, 16, 20, 50, 111] {
            let out = resize_padded_square(&rgb, 37, 37, side);
            assert!(out.iter().all(|&v| v == 200), "side {side}");
        }
    }

    #[test]
    fn a_rectangle_resizes_each_axis_on_its_own() {
        // A horizontal ramp stays monotone along x, and its rows stay the same but for
        // the one level OpenCV's vertical kernel can drop (it truncates each tap).
        let (w, h) = (30usize, 7usize);
        let rgb: Vec<u8> = (0..h)
            .flat_map(|_| (0..w).flat_map(|x| [(x * 8) as u8; 3]))
            .collect();
        let out = resize_linear(&rgb, w, h, 45, 48);
        assert_eq!(out.len(), 45 * 48 * 3);
        let row = |y: usize| &out[y * 45 * 3..(y + 1) * 45 * 3];
        assert!((1..48).all(|y| row(y).iter().zip(row(0)).all(|(a, b)| a.abs_diff(*b) <= 1)));
        assert!(row(0)
            .chunks(3)
            .zip(row(0).chunks(3).skip(1))
            .all(|(a, b)| a[0] <= b[0]));
        // The padded square is the same resize of the padded pixels.
        let mut padded = vec![0u8; w * w * 3];
        padded[..rgb.len()].copy_from_slice(&rgb);
        assert_eq!(
            resize_linear(&padded, w, w, 20, 20),
            resize_padded_square(&rgb, w, h, 20)
        );
    }

    #[test]
    fn a_region_of_the_resize_is_the_same_rectangle_cut_from_the_whole() {
        // A noisy image, so every tap and rounding step shows in the output.
        let (w, h) = (60usize, 46usize);
        let mut state = 0x9e37_79b9u32;
        let rgb: Vec<u8> = (0..w * h * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        // Shrinks, enlargements, mixed axes, the exact 2x shrink and the same size.
        for (dw, dh) in [(40, 30), (120, 92), (96, 20), (30, 23), (60, 46), (7, 100)] {
            let whole = resize_linear(&rgb, w, h, dw, dh);
            for (xs, ys) in [
                (0..dw, 0..dh),
                (3..dw / 2, 5..dh - 1),
                (dw - 1..dw, 0..1),
                (2..dw, dh / 3..dh),
            ] {
                let cut: Vec<u8> = ys
                    .clone()
                    .flat_map(|y| &whole[(y * dw + xs.start) * 3..(y * dw + xs.end) * 3])
                    .copied()
                    .collect();
                let alone = resize_linear_region(&rgb, w, h, (dw, dh), (xs.clone(), ys.clone()));
                assert_eq!(alone, cut, "{dw}x{dh} {xs:?} {ys:?}");
            }
        }
        // A region past the output is clipped to it.
        let past = (38..50, 28..50);
        assert_eq!(
            resize_linear_region(&rgb, w, h, (40, 30), past).len(),
            2 * 2 * 3
        );
    }

    #[test]
    fn channel_order_swaps_planes() {
        let px = [1u8, 2, 3];
        let mut out = [0f32; 3];
        to_nchw(&px, 1, ChannelOrder::Bgr, 1.0, &mut out);
        assert_eq!(out, [3.0, 2.0, 1.0]);
        to_nchw(&px, 1, ChannelOrder::Rgb, 1.0, &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0]);
    }
}
