//! Finding a uniform frame (letterbox, pillarbox, padding of any colour) around a picture,
//! so the picture inside can be hashed on its own: a frame of 10% defeats a whole-image
//! perceptual hash entirely.

/// A rectangle of the image, in pixels.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Largest difference of any channel from the frame's colour that still counts as frame:
/// JPEG noise and dithering in a flat border stay well under it.
const TOLERANCE: u8 = 28;

/// Share of a line's pixels that must be frame-coloured (anti-aliased text or a logo in a
/// border is the rest).
const FRAME_SHARE: f32 = 0.97;

/// Most of one side trimmed: past it the "frame" is the picture's own flat area.
const MAX_SIDE_SHARE: f32 = 0.35;

/// Fewest pixels a trim must remove on some side to be worth its own hash.
const MIN_TRIM: u32 = 2;

/// Share of a side a trim must remove somewhere to be worth its own hash (a PDQ pass):
/// a photo's own dark edge row or two changes its hash by little.
const MIN_TRIM_SHARE: f32 = 0.015;

/// Candidates whose every side is within this share of a kept one's are not hashed again.
const SAME_CROP_SHARE: f32 = 0.01;

/// Smallest picture left after trimming, along either axis.
const MIN_CONTENT: u32 = 32;

/// Pixels looked at per line: enough to tell a border from content, cheap on large images.
const SAMPLES_PER_LINE: u32 = 512;

#[derive(Clone, Copy)]
enum Side {
    Top,
    Bottom,
    Left,
    Right,
}

/// The candidate crops of the picture inside a uniform frame, or none when no side has
/// one. Each side is trimmed on its own, since letterboxes and uneven padding are common;
/// but a picture whose own edge is flat (a dark background, a page margin) would be cut
/// too deep, so the same trim made even all round, and even per axis, are candidates too.
pub fn frame_crops(width: u32, height: u32, rgb: &[u8]) -> Vec<Crop> {
    if width < MIN_CONTENT
        || height < MIN_CONTENT
        || rgb.len() != width as usize * height as usize * 3
    {
        return Vec::new();
    }
    let image = Rgb { width, height, rgb };
    let [top, bottom, left, right] =
        [Side::Top, Side::Bottom, Side::Left, Side::Right].map(|side| image.frame_depth(side));
    let even = top.min(bottom).min(left).min(right);
    let candidates = [
        [top, bottom, left, right],
        [even; 4],
        [
            top.min(bottom),
            top.min(bottom),
            left.min(right),
            left.min(right),
        ],
    ];
    let (min_rows, min_cols) = (
        MIN_TRIM.max((height as f32 * MIN_TRIM_SHARE) as u32),
        MIN_TRIM.max((width as f32 * MIN_TRIM_SHARE) as u32),
    );
    let near = |a: u32, b: u32, len: u32| (a.abs_diff(b) as f32) <= len as f32 * SAME_CROP_SHARE;
    let mut crops: Vec<Crop> = Vec::new();
    for [top, bottom, left, right] in candidates {
        if top.max(bottom) < min_rows && left.max(right) < min_cols {
            continue;
        }
        let crop = Crop {
            x: left,
            y: top,
            width: width - left - right,
            height: height - top - bottom,
        };
        let same = |c: &Crop| {
            near(c.x, crop.x, width)
                && near(c.y, crop.y, height)
                && near(c.width, crop.width, width)
                && near(c.height, crop.height, height)
        };
        if crop.width >= MIN_CONTENT && crop.height >= MIN_CONTENT && !crops.iter().any(same) {
            crops.push(crop);
        }
    }
    crops
}

struct Rgb<'a> {
    width: u32,
    height: u32,
    rgb: &'a [u8],
}

/// Where the samples of one side's lines are: the byte offsets of the outermost line's
/// samples, and how far one line further in is (signed: bottom and right step back).
struct SideLines {
    offsets: Vec<usize>,
    step: isize,
}

impl SideLines {
    fn pixels<'a>(&'a self, rgb: &'a [u8], depth: u32) -> impl Iterator<Item = [u8; 3]> + 'a {
        let shift = self.step * depth as isize;
        self.offsets.iter().map(move |&at| {
            let i = at.wrapping_add_signed(shift);
            [rgb[i], rgb[i + 1], rgb[i + 2]]
        })
    }

    /// Whether at least [`FRAME_SHARE`] of line `depth`'s samples are near `colour`; stops
    /// at the first miss that rules it out (a picture's line fails within a few samples).
    fn is_frame(&self, rgb: &[u8], depth: u32, colour: [u8; 3]) -> bool {
        let total = self.offsets.len();
        let needed = total as f32 * FRAME_SHARE;
        let mut misses = 0usize;
        for px in self.pixels(rgb, depth) {
            let near = px
                .iter()
                .zip(colour)
                .all(|(&v, c)| v.abs_diff(c) <= TOLERANCE);
            if !near {
                misses += 1;
                if ((total - misses) as f32) < needed {
                    return false;
                }
            }
        }
        true
    }
}

impl Rgb<'_> {
    /// The lines from `side` inwards (rows for top and bottom, columns for left and
    /// right), each sampled at the same at most [`SAMPLES_PER_LINE`] evenly spread places.
    fn lines(&self, side: Side) -> SideLines {
        let (w, h) = (self.width as usize, self.height as usize);
        let along = match side {
            Side::Top | Side::Bottom => w,
            Side::Left | Side::Right => h,
        };
        let count = along.min(SAMPLES_PER_LINE as usize);
        let offsets = (0..count)
            .map(|k| {
                let t = k * along / count;
                let (x, y) = match side {
                    Side::Top => (t, 0),
                    Side::Bottom => (t, h - 1),
                    Side::Left => (0, t),
                    Side::Right => (w - 1, t),
                };
                (y * w + x) * 3
            })
            .collect();
        let row = (w * 3) as isize;
        let step = match side {
            Side::Top => row,
            Side::Bottom => -row,
            Side::Left => 3,
            Side::Right => -3,
        };
        SideLines { offsets, step }
    }

    /// How many lines from `side` inwards are frame: near the colour of the outermost line
    /// (its per-channel median), which must itself be uniform.
    fn frame_depth(&self, side: Side) -> u32 {
        let across = match side {
            Side::Top | Side::Bottom => self.height,
            Side::Left | Side::Right => self.width,
        };
        let lines = self.lines(side);
        let colour = median_colour(lines.pixels(self.rgb, 0));
        let limit = (across as f32 * MAX_SIDE_SHARE) as u32;
        let mut depth = 0;
        while depth < limit && lines.is_frame(self.rgb, depth, colour) {
            depth += 1;
        }
        depth
    }
}

/// The per-channel median (the upper one of an even count), counted in a histogram: the
/// values are bytes, so counting beats sorting a few hundred of them twelve times.
fn median_colour(pixels: impl Iterator<Item = [u8; 3]>) -> [u8; 3] {
    let mut counts = [[0u32; 256]; 3];
    let mut total = 0usize;
    for px in pixels {
        for (channel, v) in counts.iter_mut().zip(px) {
            channel[usize::from(v)] += 1;
        }
        total += 1;
    }
    if total == 0 {
        return [0; 3];
    }
    // The value at sorted index total / 2.
    let rank = total / 2;
    counts.map(|channel| {
        let mut seen = 0usize;
        channel
            .iter()
            .position(|&count| {
                seen += count as usize;
                seen > rank
            })
            .map_or(0, |v| v as u8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_colour_is_the_sorted_middle_value_of_each_channel() {
        let mut seed = 0x2545_f491_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for len in [1usize, 2, 3, 4, 7, 100, 511, 512] {
            let pixels: Vec<[u8; 3]> = (0..len)
                .map(|_| {
                    let v = next();
                    // Skewed and clustered values, where an off-by-one in the rank shows.
                    [(v % 7) as u8 * 40, (v >> 8) as u8, ((v >> 16) % 3) as u8]
                })
                .collect();
            let sorted_middle = std::array::from_fn(|c| {
                let mut values: Vec<u8> = pixels.iter().map(|p| p[c]).collect();
                values.sort_unstable();
                values[len / 2]
            });
            assert_eq!(
                median_colour(pixels.iter().copied()),
                sorted_middle,
                "{len}"
            );
        }
        assert_eq!(median_colour(std::iter::empty()), [0; 3]);
    }

    /// A textured picture of `w` x `h` inside a frame of `colour`, `t`/`b`/`l`/`r` thick.
    fn framed(w: u32, h: u32, [t, b, l, r]: [u32; 4], colour: [u8; 3]) -> (u32, u32, Vec<u8>) {
        let (width, height) = (w + l + r, h + t + b);
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                let inside = x >= l && x < l + w && y >= t && y < t + h;
                if inside {
                    let v = ((x * 37 + y * 91) ^ (x * y)) as u8;
                    rgb.extend_from_slice(&[v, v.wrapping_mul(3), 255 - v]);
                } else {
                    rgb.extend_from_slice(&colour);
                }
            }
        }
        (width, height, rgb)
    }

    #[test]
    fn frames_of_any_colour_are_trimmed_to_the_picture() {
        for colour in [[0, 0, 0], [255, 255, 255], [128, 128, 128], [200, 30, 60]] {
            let (w, h, rgb) = framed(200, 150, [20, 20, 25, 25], colour);
            let crops = frame_crops(w, h, &rgb);
            assert_eq!(
                crops[0],
                Crop {
                    x: 25,
                    y: 20,
                    width: 200,
                    height: 150
                },
                "{colour:?}"
            );
        }
    }

    #[test]
    fn a_letterbox_is_trimmed_top_and_bottom_only() {
        let (w, h, rgb) = framed(300, 120, [40, 40, 0, 0], [0, 0, 0]);
        assert_eq!(
            frame_crops(w, h, &rgb),
            vec![Crop {
                x: 0,
                y: 40,
                width: 300,
                height: 120
            }]
        );
    }

    #[test]
    fn an_unframed_picture_and_a_flat_image_give_no_crop() {
        let (w, h, rgb) = framed(200, 200, [0; 4], [0, 0, 0]);
        assert!(frame_crops(w, h, &rgb).is_empty());
        let flat = vec![90u8; 100 * 100 * 3];
        // Every side is "frame" up to its limit: what is left is no picture of its own.
        for crop in frame_crops(100, 100, &flat) {
            assert!(crop.width >= MIN_CONTENT && crop.height >= MIN_CONTENT);
        }
        assert!(frame_crops(10, 10, &[0; 300]).is_empty());
        assert!(frame_crops(100, 100, &[0; 5]).is_empty(), "short buffer");
    }

    #[test]
    fn noise_in_the_border_still_counts_as_frame() {
        let (w, h, mut rgb) = framed(160, 160, [16; 4], [20, 20, 20]);
        let mut state = 7u32;
        for (i, v) in rgb.iter_mut().enumerate() {
            let (x, y) = ((i / 3) as u32 % w, (i / 3) as u32 / w);
            let border = x < 16 || y < 16 || x >= 176 || y >= 176;
            if border {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                *v = 20u8
                    .wrapping_add(((state >> 16) % 21) as u8)
                    .wrapping_sub(10);
            }
        }
        assert_eq!(
            frame_crops(w, h, &rgb)[0],
            Crop {
                x: 16,
                y: 16,
                width: 160,
                height: 160
            }
        );
    }

    #[test]
    fn a_picture_with_a_flat_edge_of_the_frame_colour_also_gets_the_even_trim() {
        // A picture whose own left part is black, in a 10 px black frame: the left side
        // trims into the picture, the even candidate stops at the frame.
        let (w, h, mut rgb) = framed(200, 200, [10; 4], [0, 0, 0]);
        for y in 10..210 {
            for x in 10..60 {
                let i = ((y * w + x) * 3) as usize;
                rgb[i..i + 3].copy_from_slice(&[0, 0, 0]);
            }
        }
        let crops = frame_crops(w, h, &rgb);
        assert_eq!(
            crops[0],
            Crop {
                x: 60,
                y: 10,
                width: 150,
                height: 200
            }
        );
        assert!(
            crops.contains(&Crop {
                x: 10,
                y: 10,
                width: 200,
                height: 200
            }),
            "{crops:?}"
        );
    }
}
