//! Hash stage: exact hashes of the bytes, PDQ and pHash of the pixels.
//!
//! Industry hash lists use MD5 and PDQ; SHA-256 is what the store keys on.

pub mod pdq;
pub mod pdq_index;

use md5::Md5;
use sha2::{Digest, Sha256};

pub use pdq::{Dihedral, PdqHash, PdqOutput};

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

/// 64-bit pHash (image_hasher: the 8x8 lowest DCT frequencies of a 16x16 resize,
/// each compared with their median), as 16 hex digits. A mean threshold is
/// useless here: the DC term dominates it and nearly every image hashes alike. Kept for near-duplicate grouping in
/// review; hash-bank matching uses PDQ, which industry lists exchange.
pub fn phash(width: u32, height: u32, rgb: &[u8]) -> Option<String> {
    let image = image::RgbImage::from_raw(width, height, rgb.to_vec())?;
    let hasher = image_hasher::HasherConfig::new()
        .hash_alg(image_hasher::HashAlg::Median)
        .preproc_dct()
        .to_hasher();
    Some(hex::encode(hasher.hash_image(&image).as_bytes()))
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
}
