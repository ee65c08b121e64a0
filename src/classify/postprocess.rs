//! Detector output to detections, as NudeNet 3.4.2 `_postprocess` does it.
//!
//! The raw output is `[4 + labels, anchors]`: box centre/size in model-input
//! pixels, then one score per label. Arithmetic stays in f32 where NumPy keeps
//! float32, and the NMS is OpenCV's `NMSBoxes` (class-agnostic, strict score
//! threshold, stable descending sort, IoU of double-precision rectangles).

use serde::{Deserialize, Serialize};

/// One detection, with its box in original-image pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Detection {
    pub label: String,
    pub score: f32,
    /// `[x, y, width, height]`.
    #[serde(rename = "box")]
    pub bbox: [i64; 4],
}

/// Thresholds from the model manifest.
#[derive(Clone, Copy, Debug)]
pub struct PostprocessParams {
    pub score_floor: f32,
    pub nms_score: f32,
    pub nms_iou: f32,
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    label: usize,
    score: f32,
    // f32 as NumPy computes them; widened to f64 for NMS as OpenCV's Rect2d.
    x: f32,
    y: f32,
    w: f32,
    h: f32,
}

/// Turn one image's raw output (`[4 + labels.len(), anchors]`, row-major) into
/// detections, in the reference's order (descending score).
pub fn detections(
    output: &[f32],
    anchors: usize,
    labels: &[String],
    original_width: u32,
    original_height: u32,
    input_size: u32,
    params: &PostprocessParams,
) -> Vec<Detection> {
    let rows = 4 + labels.len();
    debug_assert_eq!(output.len(), rows * anchors);
    let at = |row: usize, anchor: usize| output[row * anchors + anchor];
    let side = original_width.max(original_height) as f32;
    let (ow, oh) = (original_width as f32, original_height as f32);
    let model = input_size as f32;

    let mut candidates = Vec::new();
    for i in 0..anchors {
        // np.argmax: the first maximum.
        let (mut label, mut score) = (0usize, at(4, i));
        for k in 1..labels.len() {
            let s = at(4 + k, i);
            if s > score {
                label = k;
                score = s;
            }
        }
        // Written so that a NaN score is dropped, as NumPy's `>=` drops it.
        let above_floor = score >= params.score_floor;
        if !above_floor {
            continue;
        }
        let (cx, cy, w, h) = (at(0, i), at(1, i), at(2, i), at(3, i));
        // (w + pad) == side for both axes: the square the model saw.
        let x = (cx - w / 2.0) * side / model;
        let y = (cy - h / 2.0) * side / model;
        let w = w * side / model;
        let h = h * side / model;
        let x = x.min(ow).max(0.0);
        let y = y.min(oh).max(0.0);
        let w = w.min(ow - x);
        let h = h.min(oh - y);
        candidates.push(Candidate {
            label,
            score,
            x,
            y,
            w,
            h,
        });
    }

    nms(&candidates, params.nms_score, params.nms_iou)
        .into_iter()
        .map(|i| {
            let c = &candidates[i];
            Detection {
                label: labels[c.label].clone(),
                score: c.score,
                // Python int(): truncation toward zero.
                bbox: [
                    c.x.trunc() as i64,
                    c.y.trunc() as i64,
                    c.w.trunc() as i64,
                    c.h.trunc() as i64,
                ],
            }
        })
        .collect()
}

/// OpenCV `dnn::NMSBoxes` with eta = 1 and no top-k: indices of kept candidates.
fn nms(candidates: &[Candidate], score_threshold: f32, iou_threshold: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].score > score_threshold)
        .collect();
    // Stable sort, descending score, as std::stable_sort with SortScorePairDescend.
    order.sort_by(|&a, &b| candidates[b].score.total_cmp(&candidates[a].score));
    let mut kept: Vec<usize> = Vec::new();
    for idx in order {
        let keep = kept
            .iter()
            .all(|&k| overlap(&candidates[idx], &candidates[k]) <= iou_threshold);
        if keep {
            kept.push(idx);
        }
    }
    kept
}

/// `1 - jaccardDistance` of two Rect2d, as float.
fn overlap(a: &Candidate, b: &Candidate) -> f32 {
    let (ax, ay, aw, ah) = (a.x as f64, a.y as f64, a.w as f64, a.h as f64);
    let (bx, by, bw, bh) = (b.x as f64, b.y as f64, b.w as f64, b.h as f64);
    let area_a = aw * ah;
    let area_b = bw * bh;
    if area_a + area_b <= f64::EPSILON {
        return 1.0;
    }
    let x1 = ax.max(bx);
    let y1 = ay.max(by);
    let iw = (ax + aw).min(bx + bw) - x1;
    let ih = (ay + ah).min(by + bh) - y1;
    let inter = if iw <= 0.0 || ih <= 0.0 { 0.0 } else { iw * ih };
    let distance = 1.0 - inter / (area_a + area_b - inter);
    1.0 - distance as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["A".into(), "B".into()]
    }

    /// Build a raw output with the given anchors: (cx, cy, w, h, score_a, score_b).
    fn raw(anchors: &[[f32; 6]]) -> Vec<f32> {
        let n = anchors.len();
        let mut out = vec![0f32; 6 * n];
        for (i, a) in anchors.iter().enumerate() {
            for r in 0..6 {
                out[r * n + i] = a[r];
            }
        }
        out
    }

    const PARAMS: PostprocessParams = PostprocessParams {
        score_floor: 0.2,
        nms_score: 0.25,
        nms_iou: 0.45,
    };

    #[test]
    fn overlapping_boxes_keep_the_best_across_labels() {
        let out = raw(&[
            [100.0, 100.0, 40.0, 40.0, 0.6, 0.1],
            [101.0, 101.0, 40.0, 40.0, 0.1, 0.9], // other label, same place: NMS is class-agnostic
            [250.0, 250.0, 20.0, 20.0, 0.3, 0.0],
            [10.0, 10.0, 10.0, 10.0, 0.22, 0.0], // above the floor, below the NMS threshold
        ]);
        let d = detections(&out, 4, &labels(), 640, 320, 320, &PARAMS);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].label, "B");
        assert_eq!(d[1].label, "A");
        // 640x320 pads to 640: factor 2; x = (250 - 10) * 2 = 480.
        assert_eq!(d[1].bbox, [480, 320, 40, 0]);
    }

    #[test]
    fn boxes_are_clipped_to_the_image() {
        let out = raw(&[[5.0, 5.0, 20.0, 20.0, 0.9, 0.0]]);
        let d = detections(&out, 1, &labels(), 320, 320, 320, &PARAMS);
        assert_eq!(d[0].bbox, [0, 0, 20, 20]);
    }
}
