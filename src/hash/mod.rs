//! Hash stage: exact hashes of the bytes, PDQ and pHash of the pixels.
//!
//! Industry hash lists use MD5 and PDQ; SHA-256 is what the store keys on.

pub mod pdq;
pub mod pdq_index;
pub mod robust;
pub(crate) mod scratch;
#[cfg(test)]
pub(crate) mod test_images;
pub mod trim;

use md5::Md5;
use sha2::{Digest, Sha256};

pub use pdq::{Dihedral, PdqHash};

/// Hex digests of the exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactHashes {
    pub sha256: String,
    pub md5: String,
}

pub fn exact_hashes(bytes: &[u8]) -> ExactHashes {
    ExactHashes {
        sha256: hex::encode(Sha256::digest(bytes)),
        md5: hex::encode(Md5::digest(bytes)),
    }
}

/// Longest side pHash is computed from. Its DCT looks at a 16x16 resize, so detail beyond
/// this is averaged away anyway; resizing a 3000 px photo with image_hasher's Lanczos filter
/// took longer than PDQ and the model together.
pub const PHASH_SOURCE_SIDE: u32 = 128;

/// 64-bit pHash (image_hasher: the 8x8 lowest DCT frequencies of a 16x16 resize,
/// each compared with their median), as 16 hex digits. A mean threshold is
/// useless here: the DC term dominates it and nearly every image hashes alike. Kept for
/// near-duplicate grouping in review; hash-bank matching uses PDQ, which industry lists
/// exchange. Larger images are first box-averaged to at most [`PHASH_SOURCE_SIDE`].
pub fn phash(width: u32, height: u32, rgb: &[u8]) -> Option<String> {
    if width == 0 || height == 0 || rgb.len() != width as usize * height as usize * 3 {
        return None;
    }
    let (w, h, small) = box_downsample(width, height, rgb, PHASH_SOURCE_SIDE);
    let image = image::RgbImage::from_raw(w, h, small)?;
    let hasher = image_hasher::HasherConfig::new()
        .hash_alg(image_hasher::HashAlg::Median)
        .preproc_dct()
        .to_hasher();
    Some(hex::encode(hasher.hash_image(&image).as_bytes()))
}

/// Averages `factor` x `factor` blocks (the smallest factor that brings the longest side to
/// `max_side` or under); edge blocks average the pixels they have. Small images are copied.
pub(crate) fn box_downsample(
    width: u32,
    height: u32,
    rgb: &[u8],
    max_side: u32,
) -> (u32, u32, Vec<u8>) {
    let factor = width.max(height).div_ceil(max_side).max(1) as usize;
    if factor == 1 {
        return (width, height, rgb.to_vec());
    }
    let (w, h) = (width as usize, height as usize);
    let (out_w, out_h) = (w.div_ceil(factor), h.div_ceil(factor));
    let mut sums = vec![0u32; out_w * out_h * 3];
    for (y, row) in rgb.chunks_exact(w * 3).enumerate() {
        let out_row = &mut sums[(y / factor) * out_w * 3..(y / factor + 1) * out_w * 3];
        // Block by block along the row: no division per pixel.
        for (block, sum) in row.chunks(factor * 3).zip(out_row.chunks_exact_mut(3)) {
            for px in block.chunks_exact(3) {
                sum[0] += u32::from(px[0]);
                sum[1] += u32::from(px[1]);
                sum[2] += u32::from(px[2]);
            }
        }
    }
    let mut out = Vec::with_capacity(sums.len());
    for oy in 0..out_h {
        let rows = (h - oy * factor).min(factor) as u32;
        for ox in 0..out_w {
            let count = rows * (w - ox * factor).min(factor) as u32;
            for c in 0..3 {
                let sum = sums[(oy * out_w + ox) * 3 + c];
                out.push(((sum + count / 2) / count) as u8);
            }
        }
    }
    (out_w as u32, out_h as u32, out)
}

/// Hash, quality and the hashes of all eight dihedral transforms.
#[derive(Clone, Debug, PartialEq)]
pub struct PdqOutput {
    /// The reference `pdqHash256FromFloatLuma` hash (binding: `compute`).
    pub hash: PdqHash,
    /// 0..=100: how many significant gradients the 64x64 downsample has;
    /// low values mean a featureless image whose hash is mostly noise.
    pub quality: u32,
    /// The reference `pdqDihedralHash256esFromFloatLuma` hashes (binding:
    /// `compute_dihedral`), in `Dihedral::ALL` order. `dihedral[0] == hash`
    /// for every image size except exactly 64x64, where the reference's plain
    /// hash skips the blur but its dihedral hashes do not (a window-1 box
    /// filter whose running sums round). When many coefficients sit near the
    /// median (ramps, flat areas, checkerboards) the two differ, by up to 89
    /// bits in our tests; both are reproduced as the reference computes them.
    pub dihedral: [PdqHash; 8],
    /// Signals beyond the reference, for edited copies (turned pixels, a trimmed frame,
    /// regions); `None` when not computed or the image is under the minimum size.
    pub robust: Option<robust::RobustPdq>,
}

impl PdqOutput {
    /// The hash of the image after the given transform.
    pub fn dihedral_hash(&self, transform: Dihedral) -> PdqHash {
        self.dihedral[transform as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_hashes_of_known_input() {
        let h = exact_hashes(b"abc");
        assert_eq!(h.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            h.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// Deterministic 2-D texture (a small LCG), so the DCT has content on both axes.
    fn texture(seed: u32) -> Vec<u8> {
        let mut state = seed;
        (0..64 * 64)
            .flat_map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let v = (state >> 24) as u8;
                [v, v / 2, 255 - v]
            })
            .collect()
    }

    fn bit_distance(a: &str, b: &str) -> u32 {
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        (a ^ b).count_ones()
    }

    #[test]
    fn phash_is_stable_under_small_changes_and_differs_across_images() {
        let a = texture(1);
        let mut brighter = a.clone();
        brighter.iter_mut().for_each(|v| *v = v.saturating_add(3));
        let ha = phash(64, 64, &a).unwrap();
        assert_eq!(ha.len(), 16);
        assert!(bit_distance(&ha, &phash(64, 64, &brighter).unwrap()) <= 2);
        assert!(bit_distance(&ha, &phash(64, 64, &texture(2)).unwrap()) >= 10);
        assert!(phash(64, 64, &a[..10]).is_none());
    }

    #[test]
    fn large_images_hash_like_their_small_versions() {
        // The texture blown up 10x by pixel repetition (640 px) is averaged back to 64 px.
        let small = texture(3);
        let mut large = Vec::with_capacity(640 * 640 * 3);
        for y in 0..640 {
            for x in 0..640 {
                let i = ((y / 10) * 64 + x / 10) * 3;
                large.extend_from_slice(&small[i..i + 3]);
            }
        }
        // Down to 64 px, the 10x10 blocks average back to the texture exactly.
        assert!(box_downsample(640, 640, &large, 64) == (64, 64, small.clone()));
        // pHash works from 128 px (5x5 blocks) and sees nearly the same picture.
        let large_hash = phash(640, 640, &large).unwrap();
        let small_hash = phash(64, 64, &small).unwrap();
        assert!(
            bit_distance(&large_hash, &small_hash) <= 4,
            "{large_hash} vs {small_hash}"
        );
        // Edge blocks average only the pixels they have.
        let (w, h, out) = box_downsample(
            5,
            1,
            &[0, 0, 0, 10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40],
            2,
        );
        assert_eq!((w, h), (2, 1));
        assert_eq!(out, [10, 10, 10, 35, 35, 35]);
    }
}
