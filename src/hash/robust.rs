//! Hashes for matching edited copies, read off the filtered image PDQ computes (no second
//! pass over the pixels) but for a framed picture's own:
//! - **turned**: the PDQ of the image actually turned or mirrored. The reference's
//!   dihedral hashes permute and negate DCT coefficients instead, which assumes the filter
//!   and the decimation are symmetric; they are not (an even box window reaches one pixel
//!   further after its centre than before it, and the sample of each cell is the pixel
//!   right of its centre), so on images whose coefficients crowd the median the two differ
//!   by dozens of bits. Reading the filtered image at the mirrored positions, shifted back
//!   by the filter's lean, gives the turned image's own values.
//! - **trimmed**: the same, for the picture inside a uniform frame ([`super::trim`]), from
//!   a PDQ pass of its own over a copy of at most 512 px.
//! - **regions**: fixed parts of the image (the top 75%, the centre 90%, ...), which a
//!   caption bar or a small crop leaves intact. Only comparable with the same region of
//!   another image, so they need banks built from images.
//!
//! A region is read from the whole image's filtered values, whose box window suits the
//! whole image: slightly blurrier than hashing the region alone. Both sides of a region
//! match are read so, which keeps them comparable.

use super::pdq::{
    self, decimation_indices, filter_shift, hash_downsampled, Dihedral, Downsampled, Grid, Luma,
    PdqError, PdqHash, DOWNSAMPLED_DIM,
};
use super::trim::{self, Crop};
use super::{scratch, PdqOutput};
use crate::names::named_enum;

named_enum!(
    /// A fixed part of the image, named by the share of it kept. `ALL` is the order they are
    /// hashed and reported in.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Region ("region") {
        /// The top 75% of the rows: what a caption bar over the bottom quarter or less leaves.
        Top75 => "top75",
        /// The bottom 75% of the rows.
        Bottom75 => "bottom75",
        /// The middle 90% along both axes: what a crop of 5% per side keeps.
        Center90 => "center90",
        /// The middle 80%: a crop of 10% per side.
        Center80 => "center80",
    }
);

impl Region {
    /// The region's rows and columns as (start, length) spans of an image.
    fn spans(self, width: usize, height: usize) -> ((usize, usize), (usize, usize)) {
        let share = |len: usize, percent: usize| (len * percent).div_ceil(100).max(1);
        let centred = |len: usize, percent: usize| {
            let kept = share(len, percent);
            ((len - kept) / 2, kept)
        };
        match self {
            Region::Top75 => ((0, share(height, 75)), (0, width)),
            Region::Bottom75 => {
                let rows = share(height, 75);
                ((height - rows, rows), (0, width))
            }
            Region::Center90 => (centred(height, 90), centred(width, 90)),
            Region::Center80 => (centred(height, 80), centred(width, 80)),
        }
    }
}

impl serde::Serialize for Region {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Region {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The content inside a frame, hashed turned every way.
#[derive(Clone, Debug, PartialEq)]
pub struct TrimmedPdq {
    pub crop: Crop,
    pub quality: u32,
    /// In [`Dihedral::ALL`] order: `turned[0]` is the crop as it is.
    pub turned: [PdqHash; 8],
}

#[derive(Clone, Debug, PartialEq)]
pub struct RegionPdq {
    pub region: Region,
    pub hash: PdqHash,
    pub quality: u32,
}

/// The signals beyond the reference PDQ.
#[derive(Clone, Debug, PartialEq)]
pub struct RobustPdq {
    /// PDQ of the actually turned image, in [`Dihedral::ALL`] order. The turns that
    /// reverse no axis (`turned[0]`, and the transpose) are the reference's `dihedral`
    /// hashes: only a reversal meets the filter's lean.
    pub turned: [PdqHash; 8],
    pub trimmed: Vec<TrimmedPdq>,
    pub regions: Vec<RegionPdq>,
}

/// The reference PDQ of an RGB8 image with its robust signals: one filter pass, and one
/// more per framed picture found. `robust` stays `None` under PDQ's minimum size.
pub fn pdq_robust_from_rgb8(width: u32, height: u32, rgb: &[u8]) -> Result<PdqOutput, PdqError> {
    let luma = pdq::luma_of_rgb8(width, height, rgb)?;
    let (w, h) = (luma.width, luma.height);
    // The pictures inside frames, shrunk off the luma before the filter clobbers it.
    let framed: Vec<(Crop, Luma)> = trim::frame_crops(width, height, rgb)
        .into_iter()
        .map(|crop| (crop, shrunk_crop(&luma, crop, TRIM_HASH_SIDE)))
        .collect();
    let whole = ((0, h), (0, w));
    let mut grids = Vec::new();
    let readers = Readers::new(w, h);
    grids.extend(readers.reversed(whole));
    for region in Region::ALL {
        grids.push(readers.grid(region.spans(w, h), false, false));
    }
    let (mut output, readings) = pdq::pdq_luma_with_grids(luma, &grids);
    if readings.len() != grids.len() {
        return Ok(output);
    }
    // Three reversed readings of the whole image, then one per region.
    let (reversed, region_readings) = readings.split_at(3);
    let reversed: &[Box<Downsampled>; 3] = reversed.try_into().expect("three readings");
    let turned = turned_hashes(&output.dihedral, reversed);
    let trimmed = framed
        .into_iter()
        .filter_map(|(crop, picture)| {
            let (turned, quality) = turned_pdq(picture)?;
            Some(TrimmedPdq {
                crop,
                quality,
                turned,
            })
        })
        .collect();
    let regions = region_readings
        .iter()
        .zip(Region::ALL)
        .map(|(reading, region)| {
            let (hash, quality) = hash_downsampled(reading);
            RegionPdq {
                region,
                hash,
                quality,
            }
        })
        .collect();
    output.robust = Some(RobustPdq {
        turned,
        trimmed,
        regions,
    });
    Ok(output)
}

/// Longest side a trimmed picture is hashed at. The whole image's filtered values suit a
/// crop badly (a wider box window: fine textures land 30-40 bits away), so the picture
/// inside a frame gets a PDQ pass of its own, on a box-averaged copy, which bounds its
/// cost; PDQ is built to survive that downscale.
const TRIM_HASH_SIDE: usize = 512;

/// The luma of `crop`, averaged over `factor` x `factor` blocks for the smallest factor
/// that brings its longest side to `max_side` or under (edge blocks average the values they
/// have). Averaging luma rather than the pixels spares the picture a second conversion.
fn shrunk_crop(luma: &Luma, crop: Crop, max_side: usize) -> Luma {
    let (x, y) = (crop.x as usize, crop.y as usize);
    let (w, h) = (crop.width as usize, crop.height as usize);
    let rows = luma.values[y * luma.width..]
        .chunks_exact(luma.width)
        .take(h)
        .map(|row| &row[x..x + w]);
    let factor = w.max(h).div_ceil(max_side).max(1);
    if factor == 1 {
        let mut values = scratch::take(w * h);
        rows.for_each(|row| values.extend_from_slice(row));
        return Luma {
            width: w,
            height: h,
            values,
        };
    }
    let (out_w, out_h) = (w.div_ceil(factor), h.div_ceil(factor));
    let mut values = scratch::take(out_w * out_h);
    // A band of `factor` rows is summed down the columns first (whole rows at a time),
    // then across each block.
    let mut band = vec![0f32; w];
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        band.fill(0.0);
        let mut count = 0;
        for row in rows.by_ref().take(factor) {
            band.iter_mut().zip(row).for_each(|(sum, &v)| *sum += v);
            count += 1;
        }
        // One reciprocal for the full blocks: a division per value was half the cost.
        let full = 1.0 / (count * factor) as f32;
        let blocks = band.chunks_exact(factor);
        let last = blocks.remainder();
        values.extend(blocks.map(|block| block.iter().sum::<f32>() * full));
        if !last.is_empty() {
            values.push(last.iter().sum::<f32>() / (count * last.len()) as f32);
        }
    }
    Luma {
        width: out_w,
        height: out_h,
        values,
    }
}

/// The eight turned hashes of a luma plane and its quality; `None` under PDQ's minimum
/// size.
fn turned_pdq(luma: Luma) -> Option<([PdqHash; 8], u32)> {
    let readers = Readers::new(luma.width, luma.height);
    let grids = readers.reversed(((0, luma.height), (0, luma.width)));
    let (output, readings) = pdq::pdq_luma_with_grids(luma, &grids);
    let reversed = <&[Box<Downsampled>; 3]>::try_from(&readings[..]).ok()?;
    Some((turned_hashes(&output.dihedral, reversed), output.quality))
}

/// Builds grids reading a span of the filtered image as it is or mirrored.
struct Readers {
    row_shift: usize,
    col_shift: usize,
}

type Span = (usize, usize);

impl Readers {
    /// Readers for the filtered image of a `width` x `height` plane.
    fn new(width: usize, height: usize) -> Readers {
        Readers {
            row_shift: filter_shift(height),
            col_shift: filter_shift(width),
        }
    }

    /// Sample positions along one span. Reversed, position `k` is where the mirrored span's
    /// filter would have sampled: the mirror of the forward sample, moved back against
    /// the filter's lean (and kept inside the image).
    fn positions((start, len): Span, shift: usize, reversed: bool) -> [usize; DOWNSAMPLED_DIM] {
        let forward = decimation_indices(len);
        if !reversed {
            return forward.map(|d| start + d);
        }
        // Between 129 and 256 px the last sample lands one pixel from the edge with a lean of
        // two: it is read at the edge, an approximation of that one column or row.
        std::array::from_fn(|k| start + (len - 1 - forward[k]).saturating_sub(shift))
    }

    fn grid(&self, (rows, cols): (Span, Span), reverse_rows: bool, reverse_cols: bool) -> Grid {
        Grid {
            rows: Self::positions(rows, self.row_shift, reverse_rows),
            cols: Self::positions(cols, self.col_shift, reverse_cols),
        }
    }

    /// The readings a span needs for the turns beyond the reference's own reading:
    /// columns reversed, rows reversed, both.
    fn reversed(&self, spans: (Span, Span)) -> [Grid; 3] {
        [(false, true), (true, false), (true, true)]
            .map(|(rows, cols)| self.grid(spans, rows, cols))
    }
}

/// How each transform turns the image: which of the image's own axes it reverses (rows,
/// columns), then whether it transposes. Matches the reference's coefficient mapping
/// (`Dihedral::map_coefficient`).
fn turn_of(transform: Dihedral) -> (bool, bool, bool) {
    match transform {
        Dihedral::Original => (false, false, false),
        Dihedral::Rot90 => (false, true, true),
        Dihedral::Rot180 => (true, true, false),
        Dihedral::Rot270 => (true, false, true),
        Dihedral::FlipX => (true, false, false),
        Dihedral::FlipY => (false, true, false),
        Dihedral::FlipPlus1 => (false, false, true),
        Dihedral::FlipMinus1 => (true, true, true),
    }
}

/// The eight turned hashes from the reference's `dihedral` hashes and the three readings of
/// [`Readers::reversed`]. A transposed reading's DCT is the transposed DCT, so three DCTs
/// serve six turns; the two that reverse nothing (as it is, and the transpose) are the
/// reference's own, which permute its unturned reading's DCT exactly so.
fn turned_hashes(dihedral: &[PdqHash; 8], reversed: &[Box<Downsampled>; 3]) -> [PdqHash; 8] {
    let dcts = reversed.each_ref().map(|r| pdq::dct_64_to_16(r));
    Dihedral::ALL.map(|transform| {
        let (rows, cols, transpose) = turn_of(transform);
        let Some(which) = (usize::from(rows) * 2 + usize::from(cols)).checked_sub(1) else {
            return dihedral[transform as usize];
        };
        let dct = &dcts[which];
        if transpose {
            let transposed = std::array::from_fn(|i| std::array::from_fn(|j| dct[j][i]));
            pdq::hash_from_dct(&transposed)
        } else {
            pdq::hash_from_dct(dct)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::pdq::pdq_from_rgb8;
    use crate::hash::test_images::{smooth, textured};

    /// `rgb` turned by `transform`, as the pixels would be.
    fn turn(transform: Dihedral, width: u32, height: u32, rgb: &[u8]) -> (u32, u32, Vec<u8>) {
        let (rows, cols, transpose) = turn_of(transform);
        let (w, h) = if transpose {
            (height, width)
        } else {
            (width, height)
        };
        let mut out = Vec::with_capacity(rgb.len());
        for y in 0..h {
            for x in 0..w {
                // Undo the transpose, then the reversals, to find the source pixel.
                let (mut sx, mut sy) = if transpose { (y, x) } else { (x, y) };
                if cols {
                    sx = width - 1 - sx;
                }
                if rows {
                    sy = height - 1 - sy;
                }
                let i = ((sy * width + sx) * 3) as usize;
                out.extend_from_slice(&rgb[i..i + 3]);
            }
        }
        (w, h, out)
    }

    /// Every turn of `rgb`: (reference dihedral hash, turned hash, hash of the turned pixels).
    fn turns(w: u32, h: u32, rgb: &[u8]) -> Vec<(PdqHash, PdqHash, PdqHash)> {
        let output = pdq_robust_from_rgb8(w, h, rgb).unwrap();
        let robust = output.robust.unwrap();
        Dihedral::ALL
            .iter()
            .enumerate()
            .map(|(i, &transform)| {
                let (tw, th, turned) = turn(transform, w, h, rgb);
                let actual = pdq_from_rgb8(tw, th, &turned).unwrap().hash;
                (output.dihedral[i], robust.turned[i], actual)
            })
            .collect()
    }

    #[test]
    fn the_turn_table_names_transforms_as_the_reference_does() {
        // With odd box windows along both axes (383 and 517 px) the filter is symmetric and
        // the reference's DCT-domain turns are exact: each names the same pixel turn.
        let (w, h) = (383, 517);
        for rgb in [smooth(w, h), textured(w, h)] {
            for (i, (reference, turned, actual)) in turns(w, h, &rgb).into_iter().enumerate() {
                assert_eq!(reference, actual, "{:?}", Dihedral::ALL[i]);
                assert_eq!(turned, actual, "{:?}", Dihedral::ALL[i]);
            }
        }
    }

    #[test]
    fn turned_hashes_are_the_hashes_of_the_turned_pixels() {
        // Even windows (a lean to undo) and odd ones, square and not, along each axis.
        for (w, h) in [(640, 480), (512, 512), (300, 450), (1000, 750), (100, 90)] {
            for rgb in [smooth(w, h), textured(w, h)] {
                for (i, (_, turned, actual)) in turns(w, h, &rgb).into_iter().enumerate() {
                    let d = turned.distance(&actual);
                    assert!(d <= 2, "{w}x{h} {:?}: {d} bits", Dihedral::ALL[i]);
                }
            }
        }
    }

    #[test]
    fn between_129_and_256_px_the_last_sample_is_approximated_and_still_far_closer() {
        // There the window is 2 and the turned image's last sample falls where the lean
        // cannot be undone (one pixel from the edge): that column or row of 64 is read from
        // the nearest filtered value instead.
        for (w, h) in [(256, 256), (300, 200)] {
            for rgb in [smooth(w, h), textured(w, h)] {
                for (i, (reference, turned, actual)) in turns(w, h, &rgb).into_iter().enumerate() {
                    let (ours, theirs) = (turned.distance(&actual), reference.distance(&actual));
                    assert!(ours <= 16, "{w}x{h} {:?}: {ours}", Dihedral::ALL[i]);
                    assert!(
                        ours <= theirs,
                        "{w}x{h} {:?}: {ours} vs {theirs}",
                        Dihedral::ALL[i]
                    );
                }
            }
        }
    }

    #[test]
    fn the_references_dihedral_hashes_miss_turns_of_a_smooth_image_that_turned_hashes_catch() {
        // The class of image the reference's DCT-domain turns get wrong: a mirrored or
        // rotated smooth picture is far from the original by the reference's own
        // dihedral hashes, and next to it by the turned ones.
        let (w, h) = (512, 512);
        let original = smooth(w, h);
        let bank = pdq_from_rgb8(w, h, &original).unwrap().hash;
        let mut worst_reference = 0;
        for &transform in &Dihedral::ALL[1..] {
            let (tw, th, upload) = turn(transform, w, h, &original);
            let reference = pdq_robust_from_rgb8(tw, th, &upload).unwrap();
            let by_reference = reference
                .dihedral
                .iter()
                .map(|d| d.distance(&bank))
                .min()
                .unwrap();
            let robust = reference.robust.unwrap();
            let by_turned = robust
                .turned
                .iter()
                .map(|d| d.distance(&bank))
                .min()
                .unwrap();
            worst_reference = worst_reference.max(by_reference);
            assert!(by_turned <= 8, "{transform:?}: turned {by_turned}");
        }
        assert!(
            worst_reference > 31,
            "the reference misses some turn: {worst_reference}"
        );
    }

    #[test]
    fn a_framed_picture_hashes_near_the_picture_itself() {
        let (w, h) = (400, 300);
        let picture = textured(w, h);
        let bank = pdq_from_rgb8(w, h, &picture).unwrap().hash;
        // A 10% black frame around it.
        let (fw, fh) = (w + 80, h + 60);
        let mut framed = vec![0u8; (fw * fh * 3) as usize];
        for y in 0..h {
            let src = &picture[(y * w * 3) as usize..((y + 1) * w * 3) as usize];
            let at = (((y + 30) * fw + 40) * 3) as usize;
            framed[at..at + src.len()].copy_from_slice(src);
        }
        let whole = pdq_robust_from_rgb8(fw, fh, &framed).unwrap();
        let robust = whole.robust.as_ref().unwrap();
        assert!(
            whole.hash.distance(&bank) > 31,
            "the frame defeats the whole-image hash"
        );
        let trimmed = &robust.trimmed[0];
        assert_eq!(
            trimmed.crop,
            Crop {
                x: 40,
                y: 30,
                width: w,
                height: h
            }
        );
        let d = trimmed.turned[0].distance(&bank);
        assert!(d <= 31, "trimmed: {d}");
    }

    #[test]
    fn regions_are_named_and_parsed_back() {
        for region in Region::ALL {
            assert_eq!(region.to_string().parse::<Region>(), Ok(region));
        }
        let err = "top81".parse::<Region>().unwrap_err();
        assert_eq!(err.known, Region::NAMES);
        assert!(
            err.to_string().contains("expected top75, bottom75"),
            "{err}"
        );
        assert_eq!(Region::Center90.spans(200, 100), ((5, 90), (10, 180)));
        assert_eq!(Region::Bottom75.spans(12, 12), ((3, 9), (0, 12)));
    }

    #[test]
    fn a_caption_bar_leaves_the_top_region_intact() {
        let (w, h) = (320, 320);
        let picture = textured(w, h);
        let mut captioned = picture.clone();
        let bar_from = (h * 4 / 5) as usize * w as usize * 3;
        captioned[bar_from..]
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = if i % 97 < 9 { 255 } else { 20 });
        let region = |rgb: &[u8]| {
            pdq_robust_from_rgb8(w, h, rgb)
                .unwrap()
                .robust
                .unwrap()
                .regions[0]
                .hash
        };
        assert_eq!(Region::ALL[0], Region::Top75);
        let d = region(&picture).distance(&region(&captioned));
        assert!(d <= 16, "top75 with and without the bar: {d}");
    }

    #[test]
    fn a_crop_of_the_luma_is_shrunk_to_the_mean_of_each_block() {
        let luma = Luma {
            width: 50,
            height: 40,
            values: (0..2000).map(|i| ((i * 37) % 101) as f32).collect(),
        };
        // Factor 3 with partial blocks at the right and bottom edges; factor 1 copies.
        for (crop, max_side, factor) in [((3, 5, 29, 22), 10, 3), ((4, 2, 20, 30), 30, 1)] {
            let (x, y, w, h): (usize, usize, usize, usize) = crop;
            let rect = Crop {
                x: x as u32,
                y: y as u32,
                width: w as u32,
                height: h as u32,
            };
            let shrunk = shrunk_crop(&luma, rect, max_side);
            assert_eq!(
                (shrunk.width, shrunk.height),
                (w.div_ceil(factor), h.div_ceil(factor))
            );
            for oy in 0..shrunk.height {
                for ox in 0..shrunk.width {
                    let (mut sum, mut n) = (0.0f64, 0);
                    for yy in y + oy * factor..(y + (oy + 1) * factor).min(y + h) {
                        for xx in x + ox * factor..(x + (ox + 1) * factor).min(x + w) {
                            sum += f64::from(luma.values[yy * 50 + xx]);
                            n += 1;
                        }
                    }
                    let got = shrunk.values[oy * shrunk.width + ox];
                    let want = (sum / f64::from(n)) as f32;
                    assert!(
                        (got - want).abs() < 1e-3,
                        "{crop:?} ({ox}, {oy}): {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn tiny_images_have_no_robust_signals() {
        let output = pdq_robust_from_rgb8(4, 4, &[7; 48]).unwrap();
        assert_eq!(output.quality, 0);
        assert!(output.robust.is_none());
    }
}
