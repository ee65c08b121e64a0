//! PDQ perceptual hash, bit-exact with Meta's reference implementation
//! (ThreatExchange `pdq/cpp`, as called by the `pdqhash` Python binding).
//!
//! Pipeline: RGB -> float luma -> two passes of horizontal + vertical box
//! filters (a tent, "Jarosz" filter) -> decimation to 64x64 -> quality metric
//! from the 64x64 gradients -> 16x16 corner of the 2-D DCT -> one bit per
//! coefficient, set when it exceeds the median coefficient.
//!
//! Every floating-point step keeps the reference's types and order of
//! operations, because hashes of low-contrast images depend on the last bit
//! of the DCT coefficients.
//!
//! Hand-written because no crate is bit-exact with the reference, and kept as one file
//! over 800 lines because its steps share that one numeric contract: split, the order
//! of operations a hash depends on would be spread over files.

use std::fmt;
use std::sync::OnceLock;

use super::{scratch, PdqOutput};

/// Size of a PDQ hash in bytes (256 bits).
pub const PDQ_HASH_BYTES: usize = 32;

/// Images smaller than this along either side get the reference's all-zero
/// hash and quality 0.
const MIN_HASHABLE_DIM: usize = 5;

/// The reference downsamples to 64x64 before the DCT.
pub(crate) const DOWNSAMPLED_DIM: usize = 64;

/// The DCT keeps 16x16 low-frequency coefficients (excluding the DC row/column).
const DCT_DIM: usize = 16;

/// Number of (horizontal, vertical) box-filter pass pairs; two make a tent.
const JAROSZ_PASS_PAIRS: usize = 2;

/// A 256-bit PDQ hash.
///
/// Byte order is the reference serialization: `to_hex` gives the same string
/// as the reference `Hash256::toString` (16-bit word 15 first). Bit `k` of the
/// hash (coefficient row `k / 16`, column `k % 16`) is bit `k % 8` of byte
/// `31 - k / 8`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PdqHash(pub [u8; PDQ_HASH_BYTES]);

/// Why a hex string is not a PDQ hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdqParseError {
    #[error("PDQ hash hex must be 64 characters, got {length}")]
    WrongLength { length: usize },
    #[error("invalid hex character {character:?} at position {index} in PDQ hash")]
    InvalidHexCharacter { character: char, index: usize },
}

/// Why pixels could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdqError {
    #[error("image has a zero dimension ({width}x{height})")]
    ZeroDimension { width: u32, height: u32 },
    #[error("RGB buffer for {width}x{height} must be {expected} bytes, got {actual}")]
    BufferLength {
        width: u32,
        height: u32,
        expected: usize,
        actual: usize,
    },
    #[error("image {width}x{height} is too large to hash on this platform")]
    TooLarge { width: u32, height: u32 },
}

impl PdqHash {
    /// All bits clear: what the reference returns for images under 5 pixels a side.
    pub const ZERO: PdqHash = PdqHash([0; PDQ_HASH_BYTES]);

    /// 64 lowercase hex characters, as the reference prints hashes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<PdqHash, PdqParseError> {
        let length = s.chars().count();
        if length != PDQ_HASH_BYTES * 2 {
            return Err(PdqParseError::WrongLength { length });
        }
        let mut bytes = [0u8; PDQ_HASH_BYTES];
        for (index, character) in s.chars().enumerate() {
            let nibble = character
                .to_digit(16)
                .ok_or(PdqParseError::InvalidHexCharacter { character, index })?;
            // `to_digit(16)` is below 16, so the cast cannot truncate.
            bytes[index / 2] |= (nibble as u8) << if index % 2 == 0 { 4 } else { 0 };
        }
        Ok(PdqHash(bytes))
    }

    /// The 256 bits as four little-endian 64-bit words (the multi-index keeps hashes so).
    pub fn words(&self) -> [u64; 4] {
        let mut words = [0u64; 4];
        for (word, bytes) in words.iter_mut().zip(self.0.chunks_exact(8)) {
            *word = u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
        }
        words
    }

    /// Hamming distance: number of differing bits (0..=256).
    pub fn distance(&self, other: &PdqHash) -> u32 {
        // Four 64-bit popcounts rather than 32 byte-wide ones: bank matching and
        // retroactive scans call this per entry per image.
        let (a, b) = (self.words(), other.words());
        a.iter().zip(&b).map(|(x, y)| (x ^ y).count_ones()).sum()
    }

    fn set_bit(&mut self, k: usize) {
        self.0[PDQ_HASH_BYTES - 1 - k / 8] |= 1 << (k % 8);
    }
}

impl fmt::Display for PdqHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The eight dihedral transforms (rotations and reflections) of an image.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dihedral {
    Original,
    Rot90,
    Rot180,
    Rot270,
    FlipX,
    FlipY,
    FlipPlus1,
    FlipMinus1,
}

impl Dihedral {
    /// In the reference order, which is also the order of `PdqOutput::dihedral`.
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rot90,
        Dihedral::Rot180,
        Dihedral::Rot270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Dihedral::Original => "original",
            Dihedral::Rot90 => "rot90",
            Dihedral::Rot180 => "rot180",
            Dihedral::Rot270 => "rot270",
            Dihedral::FlipX => "flipx",
            Dihedral::FlipY => "flipy",
            Dihedral::FlipPlus1 => "flip_plus1",
            Dihedral::FlipMinus1 => "flip_minus1",
        }
    }

    /// Maps the original image's DCT coefficient (row, col) to where it lands
    /// in the transformed image's DCT, and whether it changes sign. Mirrors
    /// the reference `dct16OriginalTo*` functions: odd-index DCT basis
    /// functions are antisymmetric, so a flip along an axis negates the even
    /// (0-based) rows/columns along it, and a transpose swaps row and column.
    fn map_coefficient(self, row: usize, col: usize) -> (usize, usize, bool) {
        let row_even = row & 1 == 0;
        let col_even = col & 1 == 0;
        match self {
            Dihedral::Original => (row, col, false),
            Dihedral::Rot90 => (col, row, col_even),
            Dihedral::Rot180 => (row, col, (row + col) & 1 == 1),
            Dihedral::Rot270 => (col, row, row_even),
            Dihedral::FlipX => (row, col, row_even),
            Dihedral::FlipY => (row, col, col_even),
            Dihedral::FlipPlus1 => (col, row, false),
            Dihedral::FlipMinus1 => (col, row, (row + col) & 1 == 1),
        }
    }
}

/// Computes the PDQ hash, quality and dihedral hashes of an RGB8 image.
///
/// `rgb` is tightly packed RGB8, row-major, `len == width * height * 3`.
/// Images under 5 pixels on either side get all-zero hashes and quality 0, as
/// in the reference.
pub fn pdq_from_rgb8(width: u32, height: u32, rgb: &[u8]) -> Result<PdqOutput, PdqError> {
    let luma = luma_of_rgb8(width, height, rgb)?;
    Ok(pdq_luma_with_grids(luma, &[]).0)
}

/// 64 sample positions along each axis of the filtered image: one 64x64 reading of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    pub rows: [usize; DOWNSAMPLED_DIM],
    pub cols: [usize; DOWNSAMPLED_DIM],
}

/// A 64x64 downsample, as the DCT takes it.
pub(crate) type Downsampled = [[f32; DOWNSAMPLED_DIM]; DOWNSAMPLED_DIM];

/// A luma plane, row-major, as PDQ filters it.
pub(crate) struct Luma {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

/// The luma PDQ hashes an RGB8 image by, or why the buffer cannot be hashed.
pub(crate) fn luma_of_rgb8(width: u32, height: u32, rgb: &[u8]) -> Result<Luma, PdqError> {
    if width == 0 || height == 0 {
        return Err(PdqError::ZeroDimension { width, height });
    }
    let too_large = PdqError::TooLarge { width, height };
    let num_cols = usize::try_from(width).map_err(|_| too_large.clone())?;
    let num_rows = usize::try_from(height).map_err(|_| too_large.clone())?;
    let num_pixels = num_cols.checked_mul(num_rows).ok_or(too_large.clone())?;
    let expected = num_pixels.checked_mul(3).ok_or(too_large)?;
    if rgb.len() != expected {
        return Err(PdqError::BufferLength {
            width,
            height,
            expected,
            actual: rgb.len(),
        });
    }

    Ok(Luma {
        width: num_cols,
        height: num_rows,
        values: luma_from_rgb8(rgb, num_pixels),
    })
}

/// [`pdq_from_rgb8`] of a luma plane (which the filter clobbers), with the reference's
/// filtered image also read at each of `grids` (positions must lie inside the image).
/// The filter runs once: extra readings cost a few more columns in the last passes, not
/// another pass over the image. Images under the minimum size give zero hashes and no
/// readings.
pub(crate) fn pdq_luma_with_grids(
    luma: Luma,
    grids: &[Grid],
) -> (PdqOutput, Vec<Box<Downsampled>>) {
    let Luma {
        width: num_cols,
        height: num_rows,
        values: mut luma,
    } = luma;
    if num_rows < MIN_HASHABLE_DIM || num_cols < MIN_HASHABLE_DIM {
        let zero = PdqOutput {
            hash: PdqHash::ZERO,
            quality: 0,
            dihedral: [PdqHash::ZERO; 8],
            robust: None,
        };
        return (zero, Vec::new());
    }

    let mut downsampled = Box::new([[0f32; DOWNSAMPLED_DIM]; DOWNSAMPLED_DIM]);

    // The reference's plain hash takes a 64x64 input as already downsampled.
    let plain = if num_rows == DOWNSAMPLED_DIM && num_cols == DOWNSAMPLED_DIM {
        for (row, src) in downsampled
            .iter_mut()
            .zip(luma.chunks_exact(DOWNSAMPLED_DIM))
        {
            row.copy_from_slice(src);
        }
        let quality = quality_metric(&downsampled);
        Some((hash_from_dct(&dct_64_to_16(&downsampled)), quality))
    } else {
        None
    };

    let reference = Grid {
        rows: decimation_indices(num_rows),
        cols: decimation_indices(num_cols),
    };
    let mut readings = jarosz_filter_and_read(
        &mut luma,
        num_rows,
        num_cols,
        std::iter::once(&reference).chain(grids),
    );
    scratch::give(luma);
    let extra = readings.split_off(1);
    *downsampled = *readings[0];
    let dct = dct_64_to_16(&downsampled);

    let mut dihedral = [PdqHash::ZERO; 8];
    let mut transformed = [[0f32; DCT_DIM]; DCT_DIM];
    for (slot, transform) in dihedral.iter_mut().zip(Dihedral::ALL) {
        for (row, coefficients) in dct.iter().enumerate() {
            for (col, &value) in coefficients.iter().enumerate() {
                let (to_row, to_col, negate) = transform.map_coefficient(row, col);
                transformed[to_row][to_col] = if negate { -value } else { value };
            }
        }
        *slot = hash_from_dct(&transformed);
    }

    let (hash, quality) = plain.unwrap_or_else(|| (dihedral[0], quality_metric(&downsampled)));
    let output = PdqOutput {
        hash,
        quality,
        dihedral,
        robust: None,
    };
    (output, extra)
}

/// Hash and quality of a 64x64 reading, as the reference computes them from its own.
pub(crate) fn hash_downsampled(image: &Downsampled) -> (PdqHash, u32) {
    (hash_from_dct(&dct_64_to_16(image)), quality_metric(image))
}

/// How far the reference's filtered image is shifted towards higher indices along an
/// axis of `len` pixels: its box window is one pixel longer after the centre than before
/// it when the window is even, and the filter runs twice. Reading a turned image's
/// filtered values off the unturned one has to undo this.
pub(crate) fn filter_shift(len: usize) -> usize {
    let window = jarosz_window_size(len, DOWNSAMPLED_DIM);
    if window.is_multiple_of(2) {
        JAROSZ_PASS_PAIRS
    } else {
        0
    }
}

/// Luma as the `pdqhash` binding computes it, which is what the reference
/// hashes are defined on: numpy evaluates `R*0.299 + G*0.587 + B*0.114` in
/// f64 (left to right) and then rounds to f32. (The C++ `fillFloatLumaFromRGB`
/// would use f32 coefficients instead and can differ in the last bit.) The three
/// products come from tables, which hold exactly the f64 products numpy forms.
fn luma_from_rgb8(rgb: &[u8], num_pixels: usize) -> Vec<f32> {
    static TABLES: OnceLock<[[f64; 256]; 3]> = OnceLock::new();
    let [red, green, blue] = TABLES.get_or_init(|| {
        let table = |coefficient: f64| std::array::from_fn(|v| v as f64 * coefficient);
        [table(0.299), table(0.587), table(0.114)]
    });
    let mut luma = scratch::take(num_pixels);
    luma.extend(rgb.chunks_exact(3).map(|px| {
        (red[usize::from(px[0])] + green[usize::from(px[1])] + blue[usize::from(px[2])]) as f32
    }));
    luma
}

/// Reference `computeJaroszFilterWindowSize`: half of the input pixels per
/// output pixel, rounded up, since two passes are applied.
fn jarosz_window_size(old_dimension: usize, new_dimension: usize) -> usize {
    old_dimension.div_ceil(2 * new_dimension)
}

/// Reference `decimateFloat`'s sample index: the pixel nearest each output cell's
/// centre, computed in f64 as the reference does.
pub(crate) fn decimation_indices(in_len: usize) -> [usize; DOWNSAMPLED_DIM] {
    std::array::from_fn(|out_index| {
        (((out_index as f64 + 0.5) * in_len as f64) / DOWNSAMPLED_DIM as f64) as usize
    })
}

/// Reference `jaroszFilterFloat` followed by `decimateFloat`, read at each grid (the
/// first is the reference's own decimation).
///
/// Every value read goes through exactly the reference's operations, but values no grid
/// reads are not computed: the last row pass copies only the columns read into a compact
/// buffer, and the last column pass runs down that buffer and keeps only the rows read.
/// A column's values do not depend on which other columns are read. The other passes
/// work in place in `luma`, which is clobbered: a second image-sized buffer would cost
/// more in page faults than the filtering itself.
fn jarosz_filter_and_read<'g>(
    luma: &mut [f32],
    num_rows: usize,
    num_cols: usize,
    grids: impl Iterator<Item = &'g Grid> + Clone,
) -> Vec<Box<Downsampled>> {
    let window_along_rows = jarosz_window_size(num_cols, DOWNSAMPLED_DIM);
    let window_along_cols = jarosz_window_size(num_rows, DOWNSAMPLED_DIM);
    let distinct = |positions: &mut dyn Iterator<Item = usize>| {
        let mut all: Vec<usize> = positions.collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let read_rows = distinct(&mut grids.clone().flat_map(|g| g.rows));
    let read_cols = distinct(&mut grids.clone().flat_map(|g| g.cols));
    let mut tiles = RowTiles::new(num_cols);
    let mut columns = ColumnFilter::new(num_cols, window_along_cols);
    for _ in 1..JAROSZ_PASS_PAIRS {
        tiles.filter_rows(luma, num_cols, window_along_rows);
        columns.filter(luma);
    }
    let compact = tiles.filter_rows_keeping(luma, num_cols, window_along_rows, &read_cols);
    let values = box_filter_read_rows(&compact, read_cols.len(), window_along_cols, &read_rows);
    scratch::give(compact);
    let index = |all: &[usize], position: usize| {
        all.binary_search(&position)
            .expect("every grid position was read")
    };
    let readings = grids
        .map(|grid| {
            let cols = grid.cols.map(|c| index(&read_cols, c));
            Box::new(grid.rows.map(|r| {
                let row = &values[index(&read_rows, r) * read_cols.len()..];
                cols.map(|c| row[c])
            }))
        })
        .collect();
    scratch::give(values);
    readings
}

/// Phase lengths of the reference `box1DFloat` running-sum filter over a
/// vector of `len` values with a window of `window` (1 <= window <= len):
/// 1. accumulate without writing, 2. write while the window grows,
/// 3. write with add and subtract, 4. write while the window shrinks.
struct BoxPhases {
    accumulate: usize,
    grow: usize,
    slide: usize,
    shrink: usize,
}

impl BoxPhases {
    fn new(len: usize, window: usize) -> BoxPhases {
        // The window size formula never exceeds the dimension it is derived from.
        debug_assert!(window >= 1 && window <= len);
        let half = (window + 2) / 2;
        BoxPhases {
            accumulate: half - 1,
            grow: window - half + 1,
            slide: len.saturating_sub(window),
            shrink: half - 1,
        }
    }
}

/// Rows are filtered [`LANES`] at a time: a running sum is a chain of dependent
/// additions, so one row at a time waits on every add. Eight rows side by side (one
/// per lane, each with exactly its own sequence of operations) keep the adder busy.
const LANES: usize = 8;

/// Transposed strips of [`LANES`] rows for the row pass, reused across passes.
struct RowTiles {
    input: Vec<[f32; LANES]>,
    output: Vec<[f32; LANES]>,
}

impl RowTiles {
    fn new(num_cols: usize) -> RowTiles {
        RowTiles {
            input: vec![[0.0; LANES]; num_cols],
            output: vec![[0.0; LANES]; num_cols],
        }
    }

    /// Reference `box1DFloat` along every row of `buffer`, in place.
    fn filter_rows(&mut self, buffer: &mut [f32], num_cols: usize, window: usize) {
        self.for_each_strip(buffer, num_cols, window, |rows, output| {
            for (col, cell) in output.iter().enumerate() {
                for (row, &value) in rows.iter_mut().zip(cell) {
                    row[col] = value;
                }
            }
        });
    }

    /// Reference `box1DFloat` along every row of `buffer`, keeping only the columns
    /// `cols`: row-major, `rows x cols.len()`, so that the column pass after it reads
    /// them contiguously.
    fn filter_rows_keeping(
        &mut self,
        buffer: &mut [f32],
        num_cols: usize,
        window: usize,
        cols: &[usize],
    ) -> Vec<f32> {
        let kept = cols.len();
        let mut compact = scratch::zeroed(buffer.len() / num_cols * kept);
        let mut strips = compact.chunks_mut(LANES * kept.max(1));
        self.for_each_strip(buffer, num_cols, window, |rows, output| {
            let strip = strips.next().expect("a compact strip per strip of rows");
            for (j, &col) in cols.iter().enumerate() {
                for (lane, &value) in output[col].iter().enumerate().take(rows.len()) {
                    strip[lane * kept + j] = value;
                }
            }
        });
        compact
    }

    /// Runs the filter over each strip of [`LANES`] rows of `buffer` and hands the
    /// strip's rows and filtered values (one cell of lanes per column) to `store`.
    fn for_each_strip(
        &mut self,
        buffer: &mut [f32],
        num_cols: usize,
        window: usize,
        mut store: impl FnMut(&mut [&mut [f32]], &[[f32; LANES]]),
    ) {
        for strip in buffer.chunks_mut(LANES * num_cols) {
            // A last, partial strip leaves its unused lanes at zero; they are not stored.
            let mut rows: Vec<&mut [f32]> = strip.chunks_exact_mut(num_cols).collect();
            // Column by column: one read from each row, one contiguous write.
            for (col, cell) in self.input.iter_mut().enumerate() {
                *cell = std::array::from_fn(|lane| rows.get(lane).map_or(0.0, |row| row[col]));
            }
            box_filter(&self.input, &mut self.output, window);
            store(&mut rows, &self.output);
        }
    }
}

/// Reference `box1DFloat` along a sequence of `N`-lane values, each lane on its own.
/// The running sum's rounding (add the entering value, then subtract the leaving
/// one) is part of the reference output, so it is kept as is rather than
/// recomputed per window.
fn box_filter<const N: usize>(src: &[[f32; N]], dst: &mut [[f32; N]], window: usize) {
    let phases = BoxPhases::new(src.len(), window);
    let add = |sum: &mut [f32; N], values: &[f32; N]| {
        for (s, v) in sum.iter_mut().zip(values) {
            *s += v;
        }
    };
    let subtract = |sum: &mut [f32; N], values: &[f32; N]| {
        for (s, v) in sum.iter_mut().zip(values) {
            *s -= v;
        }
    };
    let divide = |sum: &[f32; N], divisor: f32| sum.map(|s| s / divisor);
    let mut sum = [0f32; N];
    let mut count = 0usize;
    let mut right = 0usize;
    let mut out = 0usize;
    for _ in 0..phases.accumulate {
        add(&mut sum, &src[right]);
        count += 1;
        right += 1;
    }
    for _ in 0..phases.grow {
        add(&mut sum, &src[right]);
        count += 1;
        dst[out] = divide(&sum, count as f32);
        right += 1;
        out += 1;
    }
    let mut left = 0usize;
    let divisor = count as f32;
    for _ in 0..phases.slide {
        add(&mut sum, &src[right]);
        subtract(&mut sum, &src[left]);
        dst[out] = divide(&sum, divisor);
        left += 1;
        right += 1;
        out += 1;
    }
    for _ in 0..phases.shrink {
        subtract(&mut sum, &src[left]);
        count -= 1;
        dst[out] = divide(&sum, count as f32);
        left += 1;
        out += 1;
    }
}

/// The last column pass: reference `box1DFloat` down every column of `src` (row-major,
/// `num_cols` wide), keeping only the rows `rows` (ascending, distinct): row-major,
/// `rows.len() x num_cols`.
fn box_filter_read_rows(src: &[f32], num_cols: usize, window: usize, rows: &[usize]) -> Vec<f32> {
    let num_rows = src.len() / num_cols.max(1);
    let phases = BoxPhases::new(num_rows, window);
    let mut sums = vec![0f32; num_cols];
    let mut out = scratch::take(rows.len() * num_cols);
    let row_at = |row: usize| &src[row * num_cols..(row + 1) * num_cols];
    let add = |sums: &mut [f32], row: usize| {
        for (s, &v) in sums.iter_mut().zip(row_at(row)) {
            *s += v;
        }
    };
    let subtract = |sums: &mut [f32], row: usize| {
        for (s, &v) in sums.iter_mut().zip(row_at(row)) {
            *s -= v;
        }
    };
    let mut next = 0usize;
    let mut emit = |sums: &[f32], row: usize, divisor: f32| {
        if next < rows.len() && rows[next] == row {
            out.extend(sums.iter().map(|s| s / divisor));
            next += 1;
        }
    };
    let mut count = 0usize;
    let mut right = 0usize;
    let mut row = 0usize;
    for _ in 0..phases.accumulate {
        add(&mut sums, right);
        count += 1;
        right += 1;
    }
    for _ in 0..phases.grow {
        add(&mut sums, right);
        count += 1;
        emit(&sums, row, count as f32);
        right += 1;
        row += 1;
    }
    let mut left = 0usize;
    let divisor = count as f32;
    for _ in 0..phases.slide {
        add(&mut sums, right);
        subtract(&mut sums, left);
        emit(&sums, row, divisor);
        left += 1;
        right += 1;
        row += 1;
    }
    for _ in 0..phases.shrink {
        subtract(&mut sums, left);
        count -= 1;
        emit(&sums, row, count as f32);
        left += 1;
        row += 1;
    }
    out
}

/// Reference `box1DFloat` down every column, in place. All columns advance together
/// row by row (one running sum per column) so memory is read in order; each column
/// sees exactly the reference's sequence of operations. A row's output overwrites it
/// before the window has left it, so the original of each overwritten row is kept in
/// a ring of `window + 1` rows until it leaves the window.
struct ColumnFilter {
    num_cols: usize,
    window: usize,
    sums: Vec<f32>,
    ring: Vec<f32>,
}

impl ColumnFilter {
    fn new(num_cols: usize, window: usize) -> ColumnFilter {
        ColumnFilter {
            num_cols,
            window,
            sums: vec![0.0; num_cols],
            ring: vec![0.0; (window + 1) * num_cols],
        }
    }

    // Compiled on its own: inlined into the filter's caller, which grew with the robust
    // readings, this loop lost its vectorisation and PDQ took 25% longer at 640 px.
    #[inline(never)]
    fn filter(&mut self, buffer: &mut [f32]) {
        let num_cols = self.num_cols;
        let num_rows = buffer.len() / num_cols;
        let slots = self.window + 1;
        let phases = BoxPhases::new(num_rows, self.window);
        let sums = &mut self.sums[..];
        let ring = &mut self.ring[..];
        let slot = |row: usize| (row % slots) * num_cols..(row % slots + 1) * num_cols;
        sums.fill(0.0);
        let mut count = 0usize;
        let mut right = 0usize;
        let mut out = 0usize;
        for _ in 0..phases.accumulate {
            for (sum, &value) in sums.iter_mut().zip(&buffer[right * num_cols..][..num_cols]) {
                *sum += value;
            }
            count += 1;
            right += 1;
        }
        for _ in 0..phases.grow {
            count += 1;
            let divisor = count as f32;
            ring[slot(out)].copy_from_slice(&buffer[out * num_cols..(out + 1) * num_cols]);
            let (entering, row) =
                entering_and_output(buffer, ring, num_cols, right, out, slot(out));
            for ((sum, &value), d) in sums.iter_mut().zip(entering).zip(row) {
                *sum += value;
                *d = *sum / divisor;
            }
            right += 1;
            out += 1;
        }
        let mut left = 0usize;
        let divisor = count as f32;
        for _ in 0..phases.slide {
            // The leaving row (`left` < `out`) was overwritten: its original is in the
            // ring. `out - left <= window`, so `out`'s original, saved now, takes
            // another slot than the leaving row's.
            ring[slot(out)].copy_from_slice(&buffer[out * num_cols..(out + 1) * num_cols]);
            let (entering, row) =
                entering_and_output(buffer, ring, num_cols, right, out, slot(out));
            for (((sum, &entering), &leaving), d) in sums
                .iter_mut()
                .zip(entering)
                .zip(&ring[slot(left)])
                .zip(row.iter_mut())
            {
                *sum += entering;
                *sum -= leaving;
                *d = *sum / divisor;
            }
            left += 1;
            right += 1;
            out += 1;
        }
        for _ in 0..phases.shrink {
            count -= 1;
            let divisor = count as f32;
            let row = &mut buffer[out * num_cols..(out + 1) * num_cols];
            ring[slot(out)].copy_from_slice(row);
            for ((sum, &leaving), d) in sums.iter_mut().zip(&ring[slot(left)]).zip(row) {
                *sum -= leaving;
                *d = *sum / divisor;
            }
            left += 1;
            out += 1;
        }
    }
}

/// For an in-place column pass step: the entering row `right` and the output row `out`
/// (whose original the caller has just saved in `ring[out_slot]`). They are the same
/// row when the window is 1; the entering values are then that saved original.
fn entering_and_output<'a>(
    buffer: &'a mut [f32],
    ring: &'a [f32],
    num_cols: usize,
    right: usize,
    out: usize,
    out_slot: std::ops::Range<usize>,
) -> (&'a [f32], &'a mut [f32]) {
    let out_row = out * num_cols..(out + 1) * num_cols;
    if right == out {
        (&ring[out_slot], &mut buffer[out_row])
    } else {
        // `out` < `right` always: the output trails the window's leading edge.
        let (done, rest) = buffer.split_at_mut(right * num_cols);
        (&rest[..num_cols], &mut done[out_row])
    }
}

/// Reference `pdqImageDomainQualityMetric`: counts significant vertical and
/// horizontal gradients of the 64x64 image, in percent of full scale.
pub(crate) fn quality_metric(image: &[[f32; DOWNSAMPLED_DIM]; DOWNSAMPLED_DIM]) -> u32 {
    let step = |u: f32, v: f32| -> u32 {
        // Truncating float-to-int conversion, as C's `int d = ...`.
        let d = (((u - v) * 100.0f32) / 255.0f32) as i32;
        d.unsigned_abs()
    };
    let mut gradient_sum = 0u32;
    for pair in image.windows(2) {
        for (&u, &v) in pair[0].iter().zip(pair[1].iter()) {
            gradient_sum += step(u, v);
        }
    }
    for row in image.iter() {
        for pair in row.windows(2) {
            gradient_sum += step(pair[0], pair[1]);
        }
    }
    (gradient_sum / 90).min(100)
}

/// Rows 1..=16 of the 64-point DCT-II matrix, as f32, computed as the
/// reference does (f32 scale times f64 cosine, rounded to f32). Every entry is
/// millions of f64 ulps away from an f32 rounding boundary, so any libm's
/// cosine gives the same table.
fn dct_matrix() -> &'static [[f32; DOWNSAMPLED_DIM]; DCT_DIM] {
    static MATRIX: OnceLock<[[f32; DOWNSAMPLED_DIM]; DCT_DIM]> = OnceLock::new();
    MATRIX.get_or_init(|| {
        let scale = (2.0f64 / DOWNSAMPLED_DIM as f64).sqrt() as f32;
        let mut matrix = [[0f32; DOWNSAMPLED_DIM]; DCT_DIM];
        for (i, row) in matrix.iter_mut().enumerate() {
            for (j, entry) in row.iter_mut().enumerate() {
                let angle = (std::f64::consts::PI / 2.0 / DOWNSAMPLED_DIM as f64)
                    * (i + 1) as f64
                    * (2 * j + 1) as f64;
                *entry = (f64::from(scale) * angle.cos()) as f32;
            }
        }
        matrix
    })
}

/// Reference `dct64To16`: B = D A Dᵀ with f32 accumulation in increasing k,
/// first T = D A, then B = T Dᵀ.
pub(crate) fn dct_64_to_16(
    image: &[[f32; DOWNSAMPLED_DIM]; DOWNSAMPLED_DIM],
) -> [[f32; DCT_DIM]; DCT_DIM] {
    let matrix = dct_matrix();
    let mut partial = [[0f32; DOWNSAMPLED_DIM]; DCT_DIM];
    for (t_row, d_row) in partial.iter_mut().zip(matrix.iter()) {
        // Loop order k-then-j keeps each T[i][j]'s sum in increasing k while
        // letting the j loop vectorise.
        for (&d, a_row) in d_row.iter().zip(image.iter()) {
            for (t, &a) in t_row.iter_mut().zip(a_row.iter()) {
                *t += d * a;
            }
        }
    }
    // B[i][j] = sum over k of T[i][k] D[j][k], again in increasing k (from 0.0, as the
    // reference's sum starts) but k-then-j over Dᵀ, so the j loop vectorises too.
    let transposed = dct_matrix_transposed();
    let mut out = [[0f32; DCT_DIM]; DCT_DIM];
    for (out_row, t_row) in out.iter_mut().zip(partial.iter()) {
        for (&t, dt_row) in t_row.iter().zip(transposed.iter()) {
            for (value, &d) in out_row.iter_mut().zip(dt_row.iter()) {
                *value += t * d;
            }
        }
    }
    out
}

/// [`dct_matrix`] transposed.
fn dct_matrix_transposed() -> &'static [[f32; DCT_DIM]; DOWNSAMPLED_DIM] {
    static TRANSPOSED: OnceLock<[[f32; DCT_DIM]; DOWNSAMPLED_DIM]> = OnceLock::new();
    TRANSPOSED.get_or_init(|| {
        let matrix = dct_matrix();
        std::array::from_fn(|k| std::array::from_fn(|j| matrix[j][k]))
    })
}

/// Reference `pdqBuffer16x16ToBits`: bit i*16+j is set when coefficient
/// (i, j) is strictly greater than the Torben median of all 256.
pub(crate) fn hash_from_dct(dct: &[[f32; DCT_DIM]; DCT_DIM]) -> PdqHash {
    let flat = dct.as_flattened();
    let median = lower_median(flat);
    let mut hash = PdqHash::ZERO;
    for (k, &value) in flat.iter().enumerate() {
        if value > median {
            hash.set_bit(k);
        }
    }
    hash
}

/// The value the reference's `torben` median returns: the lower median, the element of
/// rank ceil(n/2). Torben's bisection on the value range returns exactly that element, so
/// a selection finds it in one partitioning instead of a dozen passes.
fn lower_median(values: &[f32]) -> f32 {
    let mut copy = [0f32; DCT_DIM * DCT_DIM];
    let copy = &mut copy[..values.len()];
    copy.copy_from_slice(values);
    let rank = values.len().div_ceil(2) - 1;
    *copy
        .select_nth_unstable_by(rank, |a, b| {
            a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
        })
        .1
}

/// Torben Mogensen's median by bisection on value range, which for an even
/// count returns the lower median. Written to return exactly what the
/// reference `torben` returns, including its f32 midpoint guesses: the oracle
/// [`lower_median`] is checked against.
#[cfg(test)]
fn torben_median(values: &[f32]) -> f32 {
    let half = values.len().div_ceil(2);
    let mut min = values[0];
    let mut max = values[0];
    for &v in &values[1..] {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    loop {
        let guess = (min + max) / 2.0;
        let mut less = 0usize;
        let mut greater = 0usize;
        let mut equal = 0usize;
        let mut max_less = min;
        let mut min_greater = max;
        for &v in values {
            if v < guess {
                less += 1;
                if v > max_less {
                    max_less = v;
                }
            } else if v > guess {
                greater += 1;
                if v < min_greater {
                    min_greater = v;
                }
            } else {
                equal += 1;
            }
        }
        if less <= half && greater <= half {
            return if less >= half {
                max_less
            } else if less + equal >= half {
                guess
            } else {
                min_greater
            };
        } else if less > greater {
            max = max_less;
        } else {
            min = min_greater;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tightly packed RGB8 image from a per-pixel formula.
    fn image(width: u32, height: u32, pixel: impl Fn(u64, u64) -> [u8; 3]) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..u64::from(height) {
            for x in 0..u64::from(width) {
                rgb.extend_from_slice(&pixel(x, y));
            }
        }
        rgb
    }

    // Expected values below come from the `pdqhash` 0.2.8 Python binding
    // (`compute` for hash and quality, `compute_dihedral` for the eight
    // transforms) run on the same pixels, generated in numpy by the same
    // formulas as these functions.

    /// Hash-like noise: ((x*73856093) ^ (y*19349663) ^ (c*83492791)) mod 2^32, bits 11..19.
    fn noise(width: u32, height: u32) -> Vec<u8> {
        image(width, height, |x, y| {
            let channel = |c: u64| {
                let v = ((x * 73_856_093) ^ (y * 19_349_663) ^ (c * 83_492_791)) & 0xFFFF_FFFF;
                ((v >> 11) & 255) as u8
            };
            [channel(0), channel(1), channel(2)]
        })
    }

    /// ((7x + 3y) mod 256, (x² + y) mod 256, (x xor y) mod 256).
    fn pattern(width: u32, height: u32) -> Vec<u8> {
        image(width, height, |x, y| {
            [
                ((x * 7 + y * 3) % 256) as u8,
                ((x * x + y) % 256) as u8,
                ((x ^ y) % 256) as u8,
            ]
        })
    }

    /// Linear ramps: (255x/(w-1), 255y/(h-1), 127(x+y)/(w+h-2)), integer division.
    fn smooth(width: u32, height: u32) -> Vec<u8> {
        let (w, h) = (u64::from(width), u64::from(height));
        image(width, height, |x, y| {
            [
                (x * 255 / (w - 1)) as u8,
                (y * 255 / (h - 1)) as u8,
                ((x + y) * 127 / (w + h - 2)) as u8,
            ]
        })
    }

    /// 8x8 checkerboard of (v, 255-v, v/2) with v in {0, 255}.
    fn blocks(width: u32, height: u32) -> Vec<u8> {
        let (w, h) = (u64::from(width), u64::from(height));
        image(width, height, |x, y| {
            let v = ((x / (w / 8) + y / (h / 8)) % 2 * 255) as u8;
            [v, 255 - v, v / 2]
        })
    }

    fn check(width: u32, height: u32, rgb: &[u8], hash: &str, quality: u32, dihedral: [&str; 8]) {
        let out = pdq_from_rgb8(width, height, rgb).unwrap();
        assert_eq!(out.hash.to_hex(), hash, "hash of {width}x{height}");
        assert_eq!(out.quality, quality, "quality of {width}x{height}");
        for (transform, expected) in Dihedral::ALL.into_iter().zip(dihedral) {
            assert_eq!(
                out.dihedral_hash(transform).to_hex(),
                expected,
                "{} of {width}x{height}",
                transform.as_str()
            );
        }
    }

    /// The reference filter as written: `box1DFloat` along each row, then down each column,
    /// on copies, `JAROSZ_PASS_PAIRS` times.
    fn filtered_by_the_book(luma: &[f32], num_rows: usize, num_cols: usize) -> Vec<f32> {
        let along_rows = jarosz_window_size(num_cols, DOWNSAMPLED_DIM);
        let along_cols = jarosz_window_size(num_rows, DOWNSAMPLED_DIM);
        let one_d = |values: Vec<[f32; 1]>, window: usize| {
            let mut out = vec![[0f32]; values.len()];
            box_filter(&values, &mut out, window);
            out
        };
        let mut image = luma.to_vec();
        for _ in 0..JAROSZ_PASS_PAIRS {
            for row in image.chunks_exact_mut(num_cols) {
                let out = one_d(row.iter().map(|&v| [v]).collect(), along_rows);
                row.iter_mut().zip(out).for_each(|(v, [o])| *v = o);
            }
            for col in 0..num_cols {
                let column = (0..num_rows).map(|r| [image[r * num_cols + col]]).collect();
                for (r, [o]) in one_d(column, along_cols).into_iter().enumerate() {
                    image[r * num_cols + col] = o;
                }
            }
        }
        image
    }

    #[test]
    fn every_grid_reads_the_reference_filtered_image_bit_for_bit() {
        let mut seed = 0x9e37_79b9_u32;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize % bound
        };
        // Windows of 1 to 5 along each axis, partial strips of rows, square and not.
        for (w, h) in [(5, 5), (37, 23), (300, 130), (640, 427), (131, 517)] {
            let rgb = noise(w, h);
            let luma = luma_of_rgb8(w, h, &rgb).unwrap();
            let (rows, cols) = (h as usize, w as usize);
            let expected = filtered_by_the_book(&luma.values, rows, cols);
            let grids: Vec<Grid> = (0..4)
                .map(|_| Grid {
                    rows: std::array::from_fn(|_| next(rows)),
                    cols: std::array::from_fn(|_| next(cols)),
                })
                .collect();
            let mut values = luma.values;
            let readings = jarosz_filter_and_read(&mut values, rows, cols, grids.iter());
            for (grid, reading) in grids.iter().zip(readings) {
                for (i, &r) in grid.rows.iter().enumerate() {
                    for (j, &c) in grid.cols.iter().enumerate() {
                        let (got, want) = (reading[i][j], expected[r * cols + c]);
                        assert_eq!(got.to_bits(), want.to_bits(), "{w}x{h} at ({r}, {c})");
                    }
                }
            }
        }
    }

    #[test]
    fn hex_round_trip() {
        let text = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
        let hash = PdqHash::from_hex(text).unwrap();
        assert_eq!(hash.to_hex(), text);
        assert_eq!(hash.to_string(), text);
        assert_eq!(hash.0[0], 0xf8);
        assert_eq!(hash.0[31], 0x22);
        assert_eq!(PdqHash::from_hex(&text.to_uppercase()).unwrap(), hash);
    }

    #[test]
    fn hex_errors() {
        assert_eq!(
            PdqHash::from_hex("abc"),
            Err(PdqParseError::WrongLength { length: 3 })
        );
        assert_eq!(
            PdqHash::from_hex(&"0".repeat(65)),
            Err(PdqParseError::WrongLength { length: 65 })
        );
        assert_eq!(
            PdqHash::from_hex(""),
            Err(PdqParseError::WrongLength { length: 0 })
        );
        let mut bad = "0".repeat(64);
        bad.replace_range(10..11, "g");
        assert_eq!(
            PdqHash::from_hex(&bad),
            Err(PdqParseError::InvalidHexCharacter {
                character: 'g',
                index: 10
            })
        );
        // 64 characters but not 64 bytes: reported as a bad character, not a bad length.
        let accented = format!("é{}", "0".repeat(63));
        assert_eq!(
            PdqHash::from_hex(&accented),
            Err(PdqParseError::InvalidHexCharacter {
                character: 'é',
                index: 0
            })
        );
    }

    #[test]
    fn hamming_distance() {
        let zero = PdqHash::ZERO;
        let ones = PdqHash([0xff; PDQ_HASH_BYTES]);
        assert_eq!(zero.distance(&zero), 0);
        assert_eq!(zero.distance(&ones), 256);
        let mut one_bit = PdqHash::ZERO;
        one_bit.set_bit(255);
        assert_eq!(one_bit.to_hex(), format!("80{}", "0".repeat(62)));
        assert_eq!(one_bit.distance(&zero), 1);
        let a = PdqHash::from_hex(&format!("0f{}", "0".repeat(62))).unwrap();
        let b = PdqHash::from_hex(&format!("{}f1", "0".repeat(62))).unwrap();
        assert_eq!(a.distance(&b), 9);
        assert_eq!(b.distance(&a), 9);
    }

    #[test]
    fn dihedral_names_and_order() {
        let names: Vec<_> = Dihedral::ALL.iter().map(Dihedral::as_str).collect();
        assert_eq!(
            names,
            [
                "original",
                "rot90",
                "rot180",
                "rot270",
                "flipx",
                "flipy",
                "flip_plus1",
                "flip_minus1"
            ]
        );
    }

    #[test]
    fn input_errors() {
        assert_eq!(
            pdq_from_rgb8(0, 5, &[]),
            Err(PdqError::ZeroDimension {
                width: 0,
                height: 5
            })
        );
        assert_eq!(
            pdq_from_rgb8(5, 0, &[]),
            Err(PdqError::ZeroDimension {
                width: 5,
                height: 0
            })
        );
        assert_eq!(
            pdq_from_rgb8(2, 2, &[0; 11]),
            Err(PdqError::BufferLength {
                width: 2,
                height: 2,
                expected: 12,
                actual: 11
            })
        );
        assert!(pdq_from_rgb8(u32::MAX, u32::MAX, &[]).is_err());
    }

    #[test]
    fn below_minimum_size_gives_zero_hash() {
        // The reference returns an all-zero hash and quality 0 under 5 pixels a side.
        for (w, h) in [(1, 1), (2, 3), (4, 4), (4, 100), (100, 4)] {
            let out = pdq_from_rgb8(w, h, &noise(w, h)).unwrap();
            assert_eq!(out.hash, PdqHash::ZERO);
            assert_eq!(out.quality, 0);
            assert_eq!(out.dihedral, [PdqHash::ZERO; 8]);
        }
    }

    #[test]
    fn smallest_hashable_noise_5x5() {
        check(
            5,
            5,
            &noise(5, 5),
            "6b5a3e0f94a5c1f0c1f094a5c3f06b5a3e0f3e0f6b5a3f0f94a5c1f0c1f094a5",
            100,
            [
                "6b5a3e0f94a5c1f0c1f094a5c3f06b5a3e0f3e0f6b5a3f0f94a5c1f0c1f094a5",
                "3e0f64d9c1f09b26c1f09b26c3f06cd93e0f64d93e0f64d9c1f09b26c1f09b26",
                "3e0f96a5c1f06b5a94a53e0f94a5c1f06b5a94a53e0f96a5c1f06b5a94a53e0f",
                "6b5ace7394a5318c94a5318cd4b5ce736b5ace736b5ace7394a5318c94a5318c",
                "6b5ac3f094a53e0fc1f06b5ac1f094a53e0fc1f06b5ac3f094a53e0fc1f06b5a",
                "3e0f6b5ac1f094a595a5c1f096a53e0f6b5a6b5a3e0f6b5ac1f094a594a5c1f0",
                "3e0f9b26c1f064d9c1f064d9c3f09b363e0f9b263e0f9b26c1f064d9c1f064d9",
                "6b5a318c94a5ce7394a5ce73d4b5318c6b5a318c6b5a318c94a5ce7394a5ce73",
            ],
        );
    }

    #[test]
    fn pattern_37x23() {
        check(
            37,
            23,
            &pattern(37, 23),
            "55166955b695ad55b554556b94aa2b5acaa3a4a9aa5aaeaa2aab5aa6b52a5552",
            100,
            [
                "55166955b695ad55b554556b94aa2b5acaa3a4a9aa5aaeaa2aab5aa6b52a5552",
                "3af23b7a597a517851ac41ac21bc20fc22dc02de06de06de077a07fb07bf0b37",
                "0042c1f7c38003ffe001ff81c0ff81e08ff60e03ff0f04007ffef00ce07ffff8",
                "6fa791d02c2ffb5204f9fb0674e9885677890874538bac74522fad51d2ea219d",
                "551696aab69556aab554aa9494aad4a5caa35b56aa5a59552aaba559b52aaaad",
                "00003c00c380f800e001003ec0ff7e0f8ff6f1fcff0ff3ff7ffe0ff3e07f0007",
                "3af2c485797aae0751bcbe5321bcdd0322dc5d2106def921077af80487bf74c8",
                "6fa76e2f0c2f042d04e904f934e975a97789d38b538b528b122f52aed2ea5e62",
            ],
        );
    }

    #[test]
    fn noise_300x130_uses_wider_box_windows() {
        // Box windows 3 (along rows) and 2 (along columns).
        check(
            300,
            130,
            &noise(300, 130),
            "0068ac29fe8bec0911f4ee8bac29fe9711f6ee09ee09ee09ac09ee8bdc09ee0b",
            100,
            [
                "0068ac29fe8bec0911f4ee8bac29fe9711f6ee09ee09ee09ac09ee8bdc09ee0b",
                "767dc880342cd674777f88802504f67f2180777fc880f67ff67ff67f25008880",
                "553d2683abde46a344a144a1f97df43d46a346a3bb5c66a3f95c44a1b95c46a3",
                "232a6026233a7cd7222a222a70f15dd57cd5ddd59fd55dd5a32a5dd570d1222a",
                "006853d6fe8b13f611f411f4ac29a17c13f613f6ee0933f6ac0951f4fc0913f6",
                "553dd97cabdeb95c4421bb5e995c0ac244a1995cb95c995ca95cbb5c095c895c",
                "777f3577777d2982777f777f257508802d848880ca800980f67f09802585777f",
                "232a9fdd633a832a222addd570f1a22a7cd5222a9fd5a32aa32aa32a70d1dfd5",
            ],
        );
    }

    #[test]
    fn smooth_64x64_plain_hash_skips_the_blur() {
        // The reference's plain hash uses a 64x64 input as is, its dihedral
        // hashes blur it first: the two "original" hashes differ in 2 bits.
        check(
            64,
            64,
            &smooth(64, 64),
            "aaaa5555aaaa5555aaaa5555aaaa5555aaaa5555aaaa5555aaaa5555aaaa5555",
            2,
            [
                "aaaa5555aaaa5555aaaa5555aaaa5555aaaa5555aaaa5555aaaa5555aaab5554",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa9",
                "00060000000d006f016e036e01fe07ff07ff0fff13fe1bec1febcffba6fa3fa8",
                "7fff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0001",
                "2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
                "ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000ffff0000fffe0001",
                "aaaa5555aaaa5555aaaa5555aaaa5555aaaa5555aaaa5555aaaa5555aaaa5556",
                "0006000400030039005d01cf05ff0ffd03ff1ffe1fff03e63fffbff09fee31cc",
            ],
        );
    }

    #[test]
    fn blocks_64x64_plain_hash_skips_the_blur() {
        check(
            64,
            64,
            &blocks(64, 64),
            "2c4b7f20205f57a05d0877282af57f00027708ff5f880ad780d7005555000a57",
            100,
            [
                "d580d5802faad78a55807f2a2f2a7f80ff2f02fdd58000f72aff00d52faaa0dd",
                "d0a12a5f078b225f078a005d16ca005df97effa206daffa216cbff22069aff22",
                "80d57f2a40d57d2000d5d5806a7fd52aaa7aa85780d5a05d55aaaa7f7aff0277",
                "85f480f552de88f552dfaaf7429faaf7ac2a5508538f5508439e558853cf5588",
                "d5802a7f05802877158080d52f2a807fff2ffd02d580ff082affff2a2faa5f22",
                "80d580d550d582dd40d52a7f7a7f28d5aa7a57a880d555a27faa55807afff508",
                "d0a1dda0278bdda0278affa237caffa2f97f005d26da005d36cb00dd369a00dd",
                "85f4770a52d6550a52c6550842875508ac2aaaf7538faaf7439eaa7743cfaa77",
            ],
        );
    }

    #[test]
    fn extreme_aspect_ratios() {
        check(
            5000,
            20,
            &pattern(5000, 20),
            "bc2ab9147c2afd158c02e9609ca847ea7d955515f46aa8aaaeea6d6a55955555",
            100,
            [
                "bc2ab9147c2afd158c02e9609ca847ea7d955515f46aa8aaaeea6d6a55955555",
                "de18da18f4bc4d1cfe9c44100108ef38031afad2a73caf3ca33caf3ca13cef3c",
                "e97f02ba217713bfd15502cac9fde8402040ffbf213f0200fb3fc3c000c0ffff",
                "8b4d70b2a1e9e7b6a349eeba545d4592564f5078f2690596f6690596f4694596",
                "bc2a57eb7c2a42ea8400179f9ca8b9157515aaea746a5755aeea92955595aaaa",
                "e97ffd41297fe840d955bd35c9fd13bf28400040213ffdfffbbf383f00c00000",
                "de3835e7f4bcf2e3fe9cbbef010855c7039a052da73c50c3a33c50c3a93c10c3",
                "8b4d8b4da1e9184983490041545dba6d5647af87f269fa69d669ba69f469ba69",
            ],
        );
        check(
            20,
            3000,
            &smooth(20, 3000),
            "1b2040d83f3de0685c5cedb6a6a85bfa3e27d4e9ab5266a5b5016a7a1da5ca45",
            52,
            [
                "1b2040d83f3de0685c5cedb6a6a85bfa3e27d4e9ab5266a5b5016a7a1da5ca45",
                "1669a2aa32ac5635ada7d125a3b15ad54712a69ab7d692db7b44d36c05a4df24",
                "4e75ea726a684ac20909471cf7fdf1506b727e43fe07ec0fe454c2d048f060ef",
                "433c080063f9fcdff8f27b9ff6e4f07f12070c30e28338712e1179c650f1758e",
                "1b20bf273f3d1f975c5c1249a6a8a4053e273b16ab52bd5ab50197851da535ba",
                "4e75158d6a68b53d090998e3f3fd0eaf6b72813cfe0713f0e0543d2f48f09f10",
                "16695d5536bca9caada72edaa3b5a52a47525965b7d66d247b442c9305a420db",
                "433cf7ff63f90360f8f28678f6e40f801207f3cfe283c78e2e11863950f18a71",
            ],
        );
        // Thinnest hashable strips and a very long one must not panic.
        for (w, h) in [(5, 3000), (3000, 5), (100_000, 5), (5, 100_000)] {
            let out = pdq_from_rgb8(w, h, &noise(w, h)).unwrap();
            assert!(out.quality <= 100);
        }
    }

    #[test]
    fn flat_grey_80x90_hashes_rounding_noise_with_quality_zero() {
        // A flat image has no signal: its DCT is float rounding noise, which
        // the reference still thresholds into a non-zero hash. Quality 0 is
        // what tells callers to ignore it. Expected values: pdqhash binding
        // on 80x90 pixels of (128, 128, 128).
        let grey = vec![128u8; 80 * 90 * 3];
        check(
            80,
            90,
            &grey,
            "000000002c4b11342c4b2c4b0000554b00002c4b113411342c4b585e2c4b017e",
            0,
            [
                "000000002c4b11342c4b2c4b0000554b00002c4b113411342c4b585e2c4b017e",
                "000000012c4a2c4b2c4e103500002c4e0000103010312c4a2d4f2c4a2d4f1035",
                "00000000391e391e391e04610000d741000004610461391e391ef2f4391e0b54",
                "01040001381e0461381b381f010504640004381a04640460381a0460381a381f",
                "000000002c4b2c4b2c4b1134000082000000113411342c4b2c4ba7a12c4b5e01",
                "00000000391e0461391e391e0000000a0000391e04610461391e0d0b391e542b",
                "000001042c4a11342c4e2d4a0000113100002d4f103110352d4f10352d4f2d4a",
                "01040104381e391e381b05600105391b000405650464381f381a381f381a0560",
            ],
        );
    }

    #[test]
    fn the_lower_median_is_what_torben_returns() {
        // DCT-like values, and sets full of ties, negative zeros and repeated extremes,
        // where a bisection's midpoint guesses land on elements.
        let mut state = 99u32;
        let mut next = || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            state >> 8
        };
        for case in 0..400 {
            let values: Vec<f32> = (0..256)
                .map(|_| match case % 4 {
                    0 => (next() as f32 / 65536.0 - 128.0) * 3.7,
                    1 => (next() % 7) as f32 - 3.0,
                    2 => [0.0, -0.0, 1.5, -1.5][next() as usize % 4],
                    _ => {
                        f32::from_bits(next() | 0x3f00_0000)
                            * if next() % 2 == 0 { 1.0 } else { -1.0 }
                    }
                })
                .collect();
            let (ours, theirs) = (lower_median(&values), torben_median(&values));
            // -0.0 and 0.0 are the same threshold for `value > median`.
            assert!(ours == theirs, "case {case}: {ours} vs {theirs}");
        }
        assert_eq!(lower_median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(lower_median(&[4.0, 1.0, 3.0, 2.0]), 2.0);
    }
}
