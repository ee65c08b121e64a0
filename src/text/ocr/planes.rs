//! The images the text gate looks for rows of glyphs in: the luma at the detector's
//! scale, and two opponent-colour planes at half that, made in one pass over the pixels
//! each.

use super::avx2::avx2_where_present;

/// BT.601 luma of one RGB8 pixel, in thousandths.
fn luma_thousandths(p: &[u8]) -> u32 {
    299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32
}

/// BT.601 luma of RGB8 pixels, rounded.
#[inline(always)]
pub fn luma(rgb: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 16;
    let of = |p: &[u8]| ((luma_thousandths(p) + 500) / 1000) as u8;
    let mut out = vec![0u8; rgb.len() / 3];
    // Sums first, then the rounding division, over fixed blocks: the compiler keeps a
    // block in vector registers, which pixel by pixel it does not (1.6x as fast).
    let mut blocks = out.chunks_exact_mut(BLOCK);
    let mut pixels = rgb.chunks_exact(3 * BLOCK);
    for (o, p) in (&mut blocks).zip(&mut pixels) {
        let mut sums = [0u32; BLOCK];
        for (sum, p) in sums.iter_mut().zip(p.chunks_exact(3)) {
            *sum = luma_thousandths(p) + 500;
        }
        for (o, sum) in o.iter_mut().zip(sums) {
            *o = (sum / 1000) as u8;
        }
    }
    for (o, p) in blocks
        .into_remainder()
        .iter_mut()
        .zip(pixels.remainder().chunks_exact(3))
    {
        *o = of(p);
    }
    out
}

avx2_where_present! {
    /// The luma of an RGB8 image resized to `dst_w` x `dst_h` by bilinear sampling with
    /// pixel centres aligned (as OpenCV's INTER_LINEAR maps them), in one pass: the gate
    /// needs neither the colour nor the detector's bit-exact resize.
    pub fn grey_at(rgb: &[u8], w: usize, h: usize, dst_w: usize, dst_h: usize) -> Vec<u8> = grey_at_portable;
}

/// [`grey_at`] as compiled for any CPU.
#[inline(always)]
pub(super) fn grey_at_portable(
    rgb: &[u8],
    w: usize,
    h: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<u8> {
    debug_assert_eq!(rgb.len(), w * h * 3);
    if (w, h) == (dst_w, dst_h) {
        return luma(rgb);
    }
    if w == 0 || h == 0 {
        return vec![0; dst_w * dst_h];
    }
    // Each needed source row's luma once when the row has no more pixels than taps (two
    // an output, near the detector's size); otherwise only the sampled pixels' (a 3000
    // px photo has 25 times the detector's pixels).
    let dense = w <= 2 * dst_w;
    let mut row_luma = vec![0f32; if dense { w } else { 0 }];
    sample(rgb, &mut row_luma, (w, h), (dst_w, dst_h))
}

/// Source row `pixels` (RGB8) as luma at the horizontal taps `xs`, into `out`; by way of
/// the whole row's luma in `row_luma` where that is not empty.
#[inline(always)]
fn grey_row(pixels: &[u8], row_luma: &mut [f32], xs: &[Tap], out: &mut [f32]) {
    let of = |p: &[u8]| luma_thousandths(p) as f32 / 1000.0;
    if row_luma.is_empty() {
        for (o, &(x0, x1, fx)) in out.iter_mut().zip(xs) {
            let (a, b) = (
                of(&pixels[x0 * 3..x0 * 3 + 3]),
                of(&pixels[x1 * 3..x1 * 3 + 3]),
            );
            *o = a + (b - a) * fx;
        }
        return;
    }
    let pixels = pixels.chunks_exact(3);
    // The same width across: every tap is its own pixel, weight 0.
    if row_luma.len() == out.len() {
        for (o, p) in out.iter_mut().zip(pixels) {
            *o = of(p);
        }
        return;
    }
    for (l, p) in row_luma.iter_mut().zip(pixels) {
        *l = of(p);
    }
    for (o, &(x0, x1, fx)) in out.iter_mut().zip(xs) {
        let (a, b) = (row_luma[x0], row_luma[x1]);
        *o = a + (b - a) * fx;
    }
}

avx2_where_present! {
    /// Two opponent-colour planes of an RGB8 image at `dst_w` x `dst_h`, red against green
    /// (128 + R - G) and blue against yellow (128 + B - (R + G) / 2), clamped to 0..=255.
    /// Text set apart from its background by hue alone has no contrast in luma, and contrast
    /// in one of these. Each output is the mean of the 2 x 2 source pixels around its centre
    /// (bilinear at half size, a sparse sample below it): colour is usually stored at half
    /// resolution anyway (JPEG's 4:2:0), and one pass over the pixels keeps it cheap.
    pub fn opponents_at(rgb: &[u8], w: usize, h: usize, dst_w: usize, dst_h: usize) -> [Vec<u8>; 2] = opponents_at_portable;
}

/// [`opponents_at`] as compiled for any CPU.
#[inline(always)]
pub(super) fn opponents_at_portable(
    rgb: &[u8],
    w: usize,
    h: usize,
    dst_w: usize,
    dst_h: usize,
) -> [Vec<u8>; 2] {
    debug_assert_eq!(rgb.len(), w * h * 3);
    let (mut red_green, mut blue_yellow) = (vec![128u8; dst_w * dst_h], vec![128u8; dst_w * dst_h]);
    if w == 0 || h == 0 {
        return [red_green, blue_yellow];
    }
    let (xs, ys) = (taps(dst_w, w), taps(dst_h, h));
    // The two source rows summed first, channel by channel (a pass the compiler
    // vectorises), then each output's two columns of those sums.
    let mut pair = vec![[0u16; 3]; w];
    // Outputs i of an exact halving take columns 2i and 2i + 1, in order: the common
    // case, read without indexing.
    let halving = xs
        .iter()
        .enumerate()
        .all(|(i, &(x0, x1, _))| (x0, x1) == (2 * i, 2 * i + 1));
    let opponents = |left: &[u16; 3], right: &[u16; 3]| {
        let [r, g, b] = [0, 1, 2].map(|c| i32::from(left[c]) + i32::from(right[c]));
        (
            (128 + (r - g) / 4).clamp(0, 255) as u8,
            (128 + (2 * b - r - g) / 8).clamp(0, 255) as u8,
        )
    };
    for (y, &(y0, y1, _)) in ys.iter().enumerate() {
        let (upper, lower) = (
            &rgb[y0 * w * 3..(y0 + 1) * w * 3],
            &rgb[y1 * w * 3..(y1 + 1) * w * 3],
        );
        for ((s, u), l) in pair.as_flattened_mut().iter_mut().zip(upper).zip(lower) {
            *s = u16::from(*u) + u16::from(*l);
        }
        let row = y * dst_w..(y + 1) * dst_w;
        let outputs = red_green[row.clone()].iter_mut().zip(&mut blue_yellow[row]);
        if halving {
            for ((rg, by), [left, right]) in outputs.zip(pair.as_chunks::<2>().0) {
                (*rg, *by) = opponents(left, right);
            }
        } else {
            for ((rg, by), &(x0, x1, _)) in outputs.zip(&xs) {
                (*rg, *by) = opponents(&pair[x0], &pair[x1]);
            }
        }
    }
    [red_green, blue_yellow]
}

/// One output coordinate's two source neighbours and the weight of the second.
type Tap = (usize, usize, f32);

/// The taps of `dst` outputs over `src` inputs, pixel centres aligned.
#[inline(always)]
fn taps(dst: usize, src: usize) -> Vec<Tap> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|i| {
            let s = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f32);
            let i0 = s.floor() as usize;
            (i0, (i0 + 1).min(src - 1), s - i0 as f32)
        })
        .collect()
}

/// Bilinear samples of the luma of a `w` x `h` RGB8 image at `dst_w` x `dst_h`, pixel
/// centres aligned, separably: each source row used is interpolated across at the
/// horizontal taps once ([`grey_row`]), and rows are then blended down. Calls rather than
/// a closure, which the compiler left out of the AVX2 copy.
#[inline(always)]
fn sample(
    rgb: &[u8],
    row_luma: &mut [f32],
    (w, h): (usize, usize),
    (dst_w, dst_h): (usize, usize),
) -> Vec<u8> {
    let (xs, ys) = (taps(dst_w, w), taps(dst_h, h));
    let stride = 3 * w;
    let mut out = vec![0u8; dst_w * dst_h];
    // The two source rows across, as (row index, samples); taps only move down.
    let (mut upper, mut lower) = (
        (usize::MAX, vec![0f32; dst_w]),
        (usize::MAX, vec![0f32; dst_w]),
    );
    for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
        if upper.0 != y0 {
            if lower.0 == y0 {
                std::mem::swap(&mut upper, &mut lower);
            } else {
                grey_row(&rgb[y0 * stride..][..stride], row_luma, &xs, &mut upper.1);
                upper.0 = y0;
            }
        }
        if lower.0 != y1 {
            grey_row(&rgb[y1 * stride..][..stride], row_luma, &xs, &mut lower.1);
            lower.0 = y1;
        }
        for ((o, &top), &bottom) in out[y * dst_w..(y + 1) * dst_w]
            .iter_mut()
            .zip(&upper.1)
            .zip(&lower.1)
        {
            *o = (top + (bottom - top) * fy + 0.5) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opponent_planes_set_red_against_green_and_blue_against_yellow() {
        let flat = |rgb: [u8; 3]| -> Vec<u8> { (0..16).flat_map(|_| rgb).collect() };
        // Orange, cyan and grey, each 4 x 4, halved.
        for (rgb, expected) in [
            ([240, 140, 40], [228, 0]),
            ([0, 226, 226], [0, 241]),
            ([90, 90, 90], [128, 128]),
        ] {
            let planes = opponents_at(&flat(rgb), 4, 4, 2, 2);
            for (plane, want) in planes.iter().zip(expected) {
                assert_eq!(plane, &vec![want; 4], "{rgb:?}");
            }
        }
    }

    /// Each output from the 2 x 2 source pixels at its taps, one at a time: the plain
    /// statement of what [`opponents_at`] computes row by row.
    fn opponents_by_pixel(rgb: &[u8], w: usize, h: usize, dw: usize, dh: usize) -> [Vec<u8>; 2] {
        let (xs, ys) = (taps(dw, w), taps(dh, h));
        let (mut red_green, mut blue_yellow) = (Vec::new(), Vec::new());
        for &(y0, y1, _) in &ys {
            for &(x0, x1, _) in &xs {
                let mut sum = [0i32; 3];
                for (x, y) in [(x0, y0), (x1, y0), (x0, y1), (x1, y1)] {
                    for (c, s) in sum.iter_mut().enumerate() {
                        *s += i32::from(rgb[(y * w + x) * 3 + c]);
                    }
                }
                let [r, g, b] = sum;
                red_green.push((128 + (r - g) / 4).clamp(0, 255) as u8);
                blue_yellow.push((128 + (2 * b - r - g) / 8).clamp(0, 255) as u8);
            }
        }
        [red_green, blue_yellow]
    }

    #[test]
    fn opponent_planes_are_the_means_of_the_pixels_at_their_taps() {
        let mut state = 3u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        };
        // An odd width, whose halves are uneven, and an even one, halved exactly (read
        // without taps); in each, noise and saturated primaries, where the clamps and the
        // signed division's rounding toward zero show.
        for (w, h) in [(67, 45), (66, 46)] {
            let noise: Vec<u8> = (0..w * h * 3).map(|_| next()).collect();
            let primaries: Vec<u8> = (0..w * h)
                .flat_map(|i| [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]][i % 4])
                .collect();
            // Halves, uneven shrinks, the same size, an enlargement, one row or column
            // out, and none.
            for (rgb, (dw, dh)) in [&noise, &primaries].into_iter().flat_map(|rgb| {
                [
                    (w / 2, h / 2),
                    (w / 2 + 1, h / 2 + 1),
                    (20, 30),
                    (w, h),
                    (90, 50),
                    (1, h),
                    (w, 1),
                    (0, 0),
                ]
                .map(|size| (rgb, size))
            }) {
                assert_eq!(
                    opponents_at(rgb, w, h, dw, dh),
                    opponents_by_pixel(rgb, w, h, dw, dh),
                    "{w}x{h} -> {dw}x{dh}"
                );
            }
        }
    }

    #[test]
    fn luma_in_blocks_is_luma_pixel_by_pixel() {
        let thousandths = |p: &[u8]| 299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32;
        let by_pixel = |rgb: &[u8]| -> Vec<u8> {
            rgb.chunks_exact(3)
                .map(|p| ((thousandths(p) + 500) / 1000) as u8)
                .collect()
        };
        // Pixels on either side of a rounding step, where an off-by-one shows.
        let mut rgb = Vec::new();
        for r in 0..=255u8 {
            for g in 0..=255u8 {
                for b in [0u8, 1, 128, 255] {
                    if (499..=501).contains(&(thousandths(&[r, g, b]) % 1000)) {
                        rgb.extend([r, g, b]);
                    }
                }
            }
        }
        assert!(rgb.len() > 3 * 500);
        assert_eq!(luma(&rgb), by_pixel(&rgb));
        // Every length up to a few blocks, so that each remainder of a block is covered.
        let start = rgb.len() - 3 * 50;
        for pixels in 0..=50 {
            let rgb = &rgb[start..start + 3 * pixels];
            assert_eq!(luma(rgb), by_pixel(rgb), "{pixels} pixels");
        }
    }

    #[test]
    fn grey_at_keeps_flat_grey_and_samples_between_pixels() {
        let rgb = [10u8, 10, 10, 30, 30, 30];
        assert_eq!(grey_at(&rgb, 2, 1, 2, 1), vec![10, 30]);
        assert_eq!(grey_at(&rgb, 2, 1, 1, 1), vec![20]);
        assert_eq!(grey_at(&[200u8; 4 * 3 * 3], 4, 3, 2, 2), vec![200; 4]);
        assert_eq!(grey_at(&[], 0, 0, 2, 1), vec![0, 0]);
        assert!(grey_at(&[9u8; 3], 1, 1, 0, 0).is_empty());
    }

    /// Bilinear sampling pixel by pixel, four taps each: the plain statement of what
    /// [`grey_at`] computes row by row.
    fn grey_at_by_pixel(rgb: &[u8], w: usize, h: usize, dst_w: usize, dst_h: usize) -> Vec<u8> {
        let at = |x: usize, y: usize| luma_thousandths(&rgb[(y * w + x) * 3..]) as f32 / 1000.0;
        let (xs, ys) = (taps(dst_w, w), taps(dst_h, h));
        let mut out = Vec::with_capacity(dst_w * dst_h);
        for &(y0, y1, fy) in &ys {
            for &(x0, x1, fx) in &xs {
                let (a, b, c, d) = (at(x0, y0), at(x1, y0), at(x0, y1), at(x1, y1));
                let top = a + (b - a) * fx;
                let bottom = c + (d - c) * fx;
                out.push((top + (bottom - top) * fy + 0.5) as u8);
            }
        }
        out
    }

    #[test]
    fn grey_at_samples_as_four_taps_per_pixel_do() {
        let mut state = 5u32;
        let (w, h) = (53, 41);
        let rgb: Vec<u8> = (0..w * h * 3)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        // Shrinks past and within the row cache's reach, the same size, enlargements,
        // one side each way, and a single row or column out.
        for (dw, dh) in [
            (53, 41),
            (50, 40),
            (26, 20),
            (10, 7),
            (106, 82),
            (60, 30),
            (20, 90),
            (1, 41),
            (53, 1),
        ] {
            assert_eq!(
                grey_at(&rgb, w, h, dw, dh),
                grey_at_by_pixel(&rgb, w, h, dw, dh),
                "{w}x{h} -> {dw}x{dh}"
            );
        }
    }
}
