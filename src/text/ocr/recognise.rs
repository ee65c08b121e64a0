//! Text recognition around the PP-OCRv4 recogniser, as rapidocr 1.4.4 does it: each
//! box cut out upright (`get_rotate_crop_image`), batches sorted by aspect ratio and
//! resized to the model's height (`TextRecognizer.resize_norm_img`), and CTC greedy
//! decoding of its output (`CTCLabelDecode`).

use serde::Deserialize;

use super::detect::Pixels;
use super::geometry::{invert3, perspective_transform, Point};
use crate::classify::preprocess::resize_linear;

/// The recognition facts of the manifest's `[ocr.recognise]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecogniseParams {
    pub image_height: u32,
    pub image_width: u32,
    pub batch: usize,
    pub text_score: f32,
    pub character_metadata_key: String,
}

/// The line-orientation facts of the manifest's `[ocr.classify]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyParams {
    pub image_height: u32,
    pub image_width: u32,
    pub batch: usize,
    /// A line is turned when its "180" label's probability is above this.
    pub thresh: f32,
    pub labels: Vec<String>,
}

impl ClassifyParams {
    /// Whether the classifier's output row for one line says to turn it half a turn.
    pub fn upside_down(&self, probs: &[f32]) -> bool {
        let (label, p) = best(probs);
        self.labels.get(label).is_some_and(|l| l == "180") && p > self.thresh
    }
}

/// The most probable class and its probability, the first on a tie (numpy's `argmax`).
fn best(probs: &[f32]) -> (usize, f32) {
    probs.iter().enumerate().fold(
        (0, f32::MIN),
        |(bi, bp), (i, &p)| if p > bp { (i, p) } else { (bi, bp) },
    )
}

/// OpenCV's bicubic kernel (A = -0.75) at fraction `x` of a pixel.
fn cubic_weights(x: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let w0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let w1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let w2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// OpenCV's remap sub-pixel steps (INTER_BITS).
const TAB_SIZE: f64 = 32.0;
/// OpenCV's fixed-point scale of 8-bit remap weights (INTER_REMAP_COEF_BITS).
const COEF_SCALE: f64 = 32768.0;

/// The quadrilateral `quad` (top-left, top-right, bottom-right, bottom-left) of
/// `image` warped to an upright rectangle (`cv2.warpPerspective`, INTER_CUBIC,
/// BORDER_REPLICATE), turned a quarter counter-clockwise when 1.5 or more times taller
/// than wide. `None` for a box with no area.
pub fn crop_line(image: &Pixels, quad: &[Point; 4]) -> Option<Pixels> {
    let width = quad[0].distance(quad[1]).max(quad[2].distance(quad[3])) as usize;
    let height = quad[0].distance(quad[3]).max(quad[1].distance(quad[2])) as usize;
    if width == 0 || height == 0 {
        return None;
    }
    let (w, h) = (width as f64, height as f64);
    let target = [
        Point::new(0.0, 0.0),
        Point::new(w, 0.0),
        Point::new(w, h),
        Point::new(0.0, h),
    ];
    let inverse = invert3(&perspective_transform(quad, &target)?)?;
    let (sw, sh) = (image.width as i64, image.height as i64);
    let mut rgb = vec![0u8; width * height * 3];
    for y in 0..height {
        for x in 0..width {
            let (xf, yf) = (x as f64, y as f64);
            let d = inverse[6] * xf + inverse[7] * yf + inverse[8];
            let d = if d == 0.0 { 0.0 } else { TAB_SIZE / d };
            // Source position in 1/32 pixels, rounded as OpenCV's saturate_cast rounds.
            let sx =
                ((inverse[0] * xf + inverse[1] * yf + inverse[2]) * d).round_ties_even() as i64;
            let sy =
                ((inverse[3] * xf + inverse[4] * yf + inverse[5]) * d).round_ties_even() as i64;
            let (ix, iy) = (sx >> 5, sy >> 5);
            let wx = cubic_weights((sx & 31) as f64 / TAB_SIZE);
            let wy = cubic_weights((sy & 31) as f64 / TAB_SIZE);
            for c in 0..3 {
                let mut sum = 0i64;
                for (i, wyi) in wy.iter().enumerate() {
                    let py = (iy - 1 + i as i64).clamp(0, sh - 1) as usize;
                    for (j, wxj) in wx.iter().enumerate() {
                        let px = (ix - 1 + j as i64).clamp(0, sw - 1) as usize;
                        let weight = (wyi * wxj * COEF_SCALE).round() as i64;
                        sum += weight * image.rgb[(py * image.width + px) * 3 + c] as i64;
                    }
                }
                rgb[(y * width + x) * 3 + c] = ((sum + (1 << 14)) >> 15).clamp(0, 255) as u8;
            }
        }
    }
    let crop = Pixels { width, height, rgb };
    Some(if height as f64 / width as f64 >= 1.5 {
        rotate_counter_clockwise(&crop)
    } else {
        crop
    })
}

/// `np.rot90`: a quarter turn counter-clockwise.
pub(crate) fn rotate_counter_clockwise(p: &Pixels) -> Pixels {
    let (w, h) = (p.height, p.width);
    let mut rgb = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = (p.width - 1 - y, x);
            rgb[(y * w + x) * 3..(y * w + x) * 3 + 3]
                .copy_from_slice(&p.rgb[(sy * p.width + sx) * 3..(sy * p.width + sx) * 3 + 3]);
        }
    }
    Pixels {
        width: w,
        height: h,
        rgb,
    }
}

/// The order lines are recognised in: by aspect ratio, narrowest first (numpy's
/// `argsort`), so each batch pads as little as it can.
pub fn batch_order(crops: &[Pixels]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..crops.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = crops[a].width as f64 / crops[a].height as f64;
        let rb = crops[b].width as f64 / crops[b].height as f64;
        ra.total_cmp(&rb)
    });
    order
}

/// `cv2.rotate(ROTATE_180)`.
pub fn rotate_half_turn(p: &Pixels) -> Pixels {
    let mut rgb = Vec::with_capacity(p.rgb.len());
    for px in p.rgb.chunks_exact(3).rev() {
        rgb.extend_from_slice(px);
    }
    Pixels { rgb, ..*p }
}

/// How wide a batch's input is.
#[derive(Clone, Copy, Debug)]
pub enum BatchWidth {
    /// This width, or wider to fit the batch's widest line at full height (recognition).
    AtLeast(usize),
    /// Exactly this width; wider lines are squeezed (orientation).
    Fixed(usize),
}

/// One batch's NCHW input (channels B, G, R, `(v / 255 - 0.5) / 0.5`, zero-padded on
/// the right) at `height`, and its width.
pub fn input_tensor(batch: &[&Pixels], height: usize, width: BatchWidth) -> (Vec<f32>, usize) {
    let width = match width {
        BatchWidth::Fixed(w) => w,
        BatchWidth::AtLeast(w) => {
            let max_ratio = batch
                .iter()
                .map(|c| c.width as f64 / c.height as f64)
                .fold(w as f64 / height as f64, f64::max);
            (height as f64 * max_ratio) as usize
        }
    };
    let plane = width * height;
    let mut out = vec![0f32; batch.len() * 3 * plane];
    for (n, crop) in batch.iter().enumerate() {
        let wanted = (height as f64 * (crop.width as f64 / crop.height as f64)).ceil() as usize;
        let resized_w = wanted.min(width).max(1);
        let resized = resize_linear(&crop.rgb, crop.width, crop.height, resized_w, height);
        for p in 0..3 {
            let c = 2 - p;
            let base = (n * 3 + p) * plane;
            for y in 0..height {
                for x in 0..resized_w {
                    let v = resized[(y * resized_w + x) * 3 + c] as f32 / 255.0;
                    out[base + y * width + x] = (v - 0.5) / 0.5;
                }
            }
        }
    }
    (out, width)
}

/// CTC greedy decoding of one line's `[steps, classes]` probabilities: the best class
/// per step, repeats merged, blanks (class 0) dropped; the score is the mean
/// probability of the kept steps (0 when none is kept).
pub fn ctc_decode(probs: &[f32], classes: &[String]) -> (String, f32) {
    let n = classes.len();
    let (mut text, mut kept, mut sum) = (String::new(), 0usize, 0f64);
    let mut previous = None;
    for step in probs.chunks_exact(n) {
        let (class, p) = best(step);
        if class != 0 && previous != Some(class) {
            text.push_str(&classes[class]);
            kept += 1;
            sum += p as f64;
        }
        previous = Some(class);
    }
    let score = if kept == 0 {
        0.0
    } else {
        (sum / kept as f64) as f32
    };
    (text, score)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        ["", "a", "b", " "].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        // Steps: a a blank a b b -> "aab"; scores of the kept steps 0.9, 0.7, 0.6.
        let steps: [[f32; 4]; 6] = [
            [0.0, 0.9, 0.1, 0.0],
            [0.1, 0.8, 0.1, 0.0],
            [0.9, 0.05, 0.05, 0.0],
            [0.3, 0.7, 0.0, 0.0],
            [0.2, 0.2, 0.6, 0.0],
            [0.1, 0.0, 0.9, 0.0],
        ];
        let flat: Vec<f32> = steps.iter().flatten().copied().collect();
        let (text, score) = ctc_decode(&flat, &classes());
        assert_eq!(text, "aab");
        assert!((score - (0.9 + 0.7 + 0.6) / 3.0).abs() < 1e-6);
        assert_eq!(
            ctc_decode(&[1.0, 0.0, 0.0, 0.0], &classes()),
            (String::new(), 0.0)
        );
    }

    #[test]
    fn an_upright_box_crops_the_pixels_inside_it() {
        let (w, h) = (40usize, 20usize);
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [x as u8 * 5, y as u8 * 10, 7]))
            .collect();
        let image = Pixels {
            width: w,
            height: h,
            rgb,
        };
        let quad = [
            Point::new(10.0, 5.0),
            Point::new(30.0, 5.0),
            Point::new(30.0, 15.0),
            Point::new(10.0, 15.0),
        ];
        let crop = crop_line(&image, &quad).unwrap();
        assert_eq!((crop.width, crop.height), (20, 10));
        // An integer shift: cubic weights are (0, 1, 0, 0), the pixel itself.
        for (y, x) in [(0, 0), (3, 7), (9, 19)] {
            let i = (y * 20 + x) * 3;
            assert_eq!(
                &crop.rgb[i..i + 3],
                &[(x + 10) as u8 * 5, (y + 5) as u8 * 10, 7]
            );
        }
    }

    #[test]
    fn a_line_is_turned_only_when_the_classifier_is_sure_it_is_upside_down() {
        let params = ClassifyParams {
            image_height: 48,
            image_width: 192,
            batch: 6,
            thresh: 0.9,
            labels: vec!["0".into(), "180".into()],
        };
        assert!(params.upside_down(&[0.05, 0.95]));
        assert!(!params.upside_down(&[0.15, 0.85]));
        assert!(!params.upside_down(&[0.99, 0.01]));
        let p = Pixels {
            width: 2,
            height: 1,
            rgb: vec![1, 2, 3, 4, 5, 6],
        };
        assert_eq!(rotate_half_turn(&p).rgb, vec![4, 5, 6, 1, 2, 3]);
    }

    #[test]
    fn a_tall_box_is_turned_to_read_sideways() {
        let image = Pixels {
            width: 10,
            height: 30,
            rgb: (0..30)
                .flat_map(|y| (0..10).flat_map(move |x| [x as u8, y as u8, 0]))
                .collect(),
        };
        let quad = [
            Point::new(0.0, 0.0),
            Point::new(6.0, 0.0),
            Point::new(6.0, 24.0),
            Point::new(0.0, 24.0),
        ];
        let crop = crop_line(&image, &quad).unwrap();
        assert_eq!((crop.width, crop.height), (24, 6));
        // Counter-clockwise: the top-right source pixel (5, 0) lands top-left.
        assert_eq!(&crop.rgb[..2], &[5, 0]);
        assert_eq!(&crop.rgb[(5 * 24) * 3..(5 * 24) * 3 + 2], &[0, 0]);
        assert!(crop_line(&image, &[Point::new(3.0, 3.0); 4]).is_none());
    }

    #[test]
    fn a_batch_is_as_wide_as_its_widest_line_and_padded_with_zero() {
        let params = RecogniseParams {
            image_height: 48,
            image_width: 320,
            batch: 6,
            text_score: 0.5,
            character_metadata_key: "character".into(),
        };
        let short = Pixels {
            width: 24,
            height: 24,
            rgb: vec![255; 24 * 24 * 3],
        };
        let long = Pixels {
            width: 240,
            height: 24,
            rgb: vec![0; 240 * 24 * 3],
        };
        let height = params.image_height as usize;
        let (tensor, width) = input_tensor(&[&short, &long], height, BatchWidth::AtLeast(320));
        assert_eq!(width, 480);
        // At a fixed width the long line is squeezed into it.
        let (squeezed, fixed) = input_tensor(&[&long], height, BatchWidth::Fixed(192));
        assert_eq!((fixed, squeezed.len()), (192, 3 * 48 * 192));
        assert!(squeezed.iter().all(|&v| v == -1.0));
        assert_eq!(tensor.len(), 2 * 3 * 48 * 480);
        // The square line fills 48 columns with white (1.0) and the rest is padding.
        assert_eq!(tensor[0], 1.0);
        assert_eq!(tensor[47], 1.0);
        assert_eq!(tensor[48], 0.0);
        // The long one fills its row with black (-1.0).
        assert_eq!(tensor[3 * 48 * 480 + 479], -1.0);
        assert_eq!(batch_order(&[long.clone(), short.clone()]), vec![1, 0]);
    }
}
