//! Words in the artwork: PP-OCRv4 text detection and recognition as rapidocr 1.4.4
//! runs them, on the same ONNX Runtime as the detector. rapidocr's own pipeline on the
//! fixture images in tests/fixtures/ocr is the oracle these steps are held to.
//!
//! One [`OcrEngine`] per worker: `Session::run` takes `&mut self`.

mod avx2;
pub mod detect;
pub mod gate;
#[cfg(test)]
mod gate_recall;
pub mod geometry;
mod models;
#[cfg(test)]
mod parity;
pub mod planes;
pub mod recognise;
pub mod spaced;
pub mod windows;

use std::path::Path;

use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

pub use detect::{DetectParams, LimitType, Pixels, TextBox};
pub use gate::GateParams;
pub use models::{OcrError, OcrModels};
pub use recognise::{ClassifyParams, RecogniseParams};

use crate::classify::preprocess::resize_linear_region;
use crate::provision::{self, OcrProvisioned, OcrSpec};

/// One line of text read in an image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OcrLine {
    /// The line's corners in source pixels: top-left, top-right, bottom-right,
    /// bottom-left, each `[x, y]`.
    #[serde(rename = "box")]
    #[schema(value_type = Vec<Vec<f32>>)]
    pub quad: [[f32; 2]; 4],
    pub text: String,
    /// Mean probability of the line's characters.
    pub score: f32,
    /// The view it was read in (a later frame, a translucent picture over a page
    /// colour); absent for the reference decoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub view: Option<crate::screening::views::ViewId>,
}

/// Which images are read.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// Only images in which the text gate finds rows of glyphs and the detector then
    /// finds text in those rows ([`OcrEngine::read_gated`]).
    Gated(GateParams),
    /// Every image, as rapidocr would.
    EveryImage,
}

/// How much of one image is read: as the engine's [`Reading`] says, or in full whatever
/// the gate finds. The gate lets pass some text the reading reads (a small line set apart
/// from a photo by hue alone, say); where the risk is highest that is not a saving to make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Depth {
    #[default]
    AsConfigured,
    InFull,
}

/// The lines read in one image, and whether it was read in full or the gate let it pass
/// as having no text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Read {
    pub lines: Vec<OcrLine>,
    pub read_in_full: bool,
}

/// The windows of an image at the detector's scale (`width` x `height`) the detector is
/// run on first: each the rectangle it covers at that scale, and its pixels at that
/// scale or, around rows of tall glyphs, halved ([`GateParams::min_shown_height`]).
pub struct GateWindows {
    pub width: usize,
    pub height: usize,
    pub windows: Vec<(windows::Rect, Pixels)>,
}

/// The OCR models with their processing facts.
pub struct OcrEngine {
    id: String,
    models: OcrModels,
    detect: DetectParams,
    classify: ClassifyParams,
    recognise: RecogniseParams,
    reading: Reading,
}

/// The detector's input sides are multiples of this.
const DETECTOR_STRIDE: usize = 32;

/// Runs one model on an NCHW input and hands its first output to `read`, after
/// checking the output's shape: `expected` gives each dimension, `None` for any.
fn run<T>(
    session: &mut ort::session::Session,
    stage: &'static str,
    input: (&[f32], [usize; 4]),
    expected: &[Option<usize>],
    read: impl FnOnce(&[i64], &[f32]) -> T,
) -> Result<T, OcrError> {
    let failed = |e: ort::Error| OcrError::Inference {
        stage,
        detail: e.to_string(),
    };
    let tensor = TensorRef::from_array_view((input.1, input.0)).map_err(failed)?;
    let outputs = session.run(ort::inputs![tensor]).map_err(failed)?;
    let (shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(failed)?;
    let dims: Vec<i64> = shape.iter().copied().collect();
    let fits = dims.len() == expected.len()
        && dims
            .iter()
            .zip(expected)
            .all(|(&d, e)| e.is_none_or(|e| d == e as i64));
    if !fits {
        let wanted: Vec<String> = expected
            .iter()
            .map(|e| e.map_or("any".to_string(), |e| e.to_string()))
            .collect();
        return Err(OcrError::Inference {
            stage,
            detail: format!("output shape {dims:?}, expected [{}]", wanted.join(", ")),
        });
    }
    Ok(read(&dims, data))
}

/// The manifest's processing facts, read into the OCR's own types.
pub struct OcrParams {
    pub detect: DetectParams,
    pub classify: ClassifyParams,
    pub recognise: RecogniseParams,
}

impl OcrParams {
    pub fn from_manifest(spec: &OcrSpec) -> Result<OcrParams, OcrError> {
        fn read<T: serde::de::DeserializeOwned>(
            section: &'static str,
            table: &toml::Table,
        ) -> Result<T, OcrError> {
            toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| OcrError::Manifest {
                    section,
                    detail: e.to_string(),
                })
        }
        Ok(OcrParams {
            detect: read("detect", &spec.detect)?,
            classify: read("classify", &spec.classify)?,
            recognise: read("recognise", &spec.recognise)?,
        })
    }
}

/// What [`OcrEngine::id`] ends with when the engine reads through the gate.
const GATE_MARK: &str = "+gate";

impl OcrEngine {
    /// Loads the models with the manifest's processing facts.
    pub fn load(
        models: &OcrProvisioned,
        runtime_library: &Path,
        intra_threads: usize,
        reading: Reading,
    ) -> Result<OcrEngine, OcrError> {
        let manifest = provision::manifest()?;
        let spec = &manifest.ocr;
        let params = OcrParams::from_manifest(spec)?;
        let wheel = manifest
            .asset(&spec.asset)
            .map_or("unknown", |a| &a.sha256[..12]);
        let gate = match reading {
            Reading::Gated(_) => GATE_MARK,
            Reading::EveryImage => "",
        };
        Ok(OcrEngine {
            id: format!("{}@{wheel}{gate}", spec.asset),
            reading,
            models: OcrModels::load(models, &params, runtime_library, intra_threads)?,
            detect: params.detect,
            classify: params.classify,
            recognise: params.recognise,
        })
    }

    /// Names the models, their wheel and the gate (`rapidocr@971d7d5f223a+gate`):
    /// screenings read by another OCR, or by none, are not reused from the verdict cache.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// [`OcrEngine::id`] of a read at `depth`: without the gate's mark when read in full.
    pub fn id_at(&self, depth: Depth) -> &str {
        match depth {
            Depth::AsConfigured => &self.id,
            Depth::InFull => self.id.strip_suffix(GATE_MARK).unwrap_or(&self.id),
        }
    }

    /// A decoded image read as the engine's [`Reading`] says (every image, at
    /// [`Depth::InFull`]), boxes in the source image's pixels (a reduced-scale decode is
    /// scaled back up).
    pub fn read_view(
        &mut self,
        view: &crate::classify::RgbView<'_>,
        depth: Depth,
    ) -> Result<Read, OcrError> {
        let (rgb, w, h) = (view.rgb, view.width as usize, view.height as usize);
        let reading = match depth {
            Depth::AsConfigured => &self.reading,
            Depth::InFull => &Reading::EveryImage,
        };
        let mut read = match reading {
            Reading::Gated(gate) => {
                let gate = gate.clone();
                self.read_gated(rgb, w, h, &gate)?
            }
            Reading::EveryImage => Read {
                lines: self.read(rgb, w, h)?,
                read_in_full: true,
            },
        };
        let lines = &mut read.lines;
        let sx = view.source_width as f32 / view.width.max(1) as f32;
        let sy = view.source_height as f32 / view.height.max(1) as f32;
        if (sx, sy) != (1.0, 1.0) {
            for line in lines.iter_mut() {
                for p in &mut line.quad {
                    *p = [p[0] * sx, p[1] * sy];
                }
            }
        }
        Ok(read)
    }

    /// [`OcrEngine::read`], but only when the text gate finds a row of glyphs and the
    /// detector, run on those rows alone, finds text in one of them. The image is then
    /// read in full, so what is read is what [`OcrEngine::read`] reads; an image
    /// without text costs the gate and the detector over a small share of its area.
    pub fn read_gated(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
        gate: &GateParams,
    ) -> Result<Read, OcrError> {
        let windows = self.gate_windows(rgb, width, height, gate);
        self.read_through(rgb, width, height, windows.as_ref())
    }

    /// The second half of [`OcrEngine::read_gated`], on windows [`OcrEngine::gate_windows`]
    /// made of this image: the image read in full when the detector finds text in one
    /// of them, or when there are none to look in because the image is too flat to
    /// scale (`None`).
    pub fn read_through(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
        windows: Option<&GateWindows>,
    ) -> Result<Read, OcrError> {
        if let Some(windows) = windows {
            let mut confirmed = false;
            for (_, crop) in &windows.windows {
                if !self.detect_boxes(crop)?.is_empty() {
                    confirmed = true;
                    break;
                }
            }
            if !confirmed {
                return Ok(Read::default());
            }
        }
        Ok(Read {
            lines: self.read(rgb, width, height)?,
            read_in_full: true,
        })
    }

    /// The lines read in an RGB8 image whose score reaches the manifest's
    /// `text_score`, top to bottom and left to right.
    pub fn read(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<Vec<OcrLine>, OcrError> {
        let Some(prepared) = detect::prepare(rgb, width, height, &self.detect) else {
            return Ok(Vec::new());
        };
        let boxes = self.detect_boxes(&prepared.pixels)?;
        let crops: Vec<(TextBox, Pixels)> = boxes
            .into_iter()
            .filter_map(|b| recognise::crop_line(&prepared.pixels, &b.quad).map(|c| (b, c)))
            .collect();
        let (boxes, mut crops): (Vec<TextBox>, Vec<Pixels>) = crops.into_iter().unzip();
        self.turn_upside_down_lines(&mut crops)?;
        let read = self.recognise_lines(&crops)?;
        Ok(boxes
            .iter()
            .zip(read)
            .filter(|(_, (_, score))| *score >= self.recognise.text_score)
            .map(|(b, (text, score))| OcrLine {
                quad: b.quad.map(|p| {
                    let s = prepared.to_source(p);
                    [s.x as f32, s.y as f32]
                }),
                text,
                score,
                view: None,
            })
            .collect())
    }

    /// The image at the detector's scale and the windows of it where the gate found rows
    /// of glyphs, grown to the detector's stride; `None` when a side scales to nothing
    /// (an empty image, or one so flat that only the letterbox gives it a height).
    pub fn gate_windows(
        &self,
        rgb: &[u8],
        width: usize,
        height: usize,
        gate: &GateParams,
    ) -> Option<GateWindows> {
        let (w, h) = detect::detector_size(width, height, &self.detect)?;
        let seeds = gate::seeds_in_colour(rgb, width, height, (w, h), gate);
        let min_side = 2 * DETECTOR_STRIDE;
        let mut windows = Vec::new();
        for k in 0..=gate::MAX_HALVINGS {
            let at_k = seeds
                .iter()
                .filter(|s| s.halvings(gate.min_shown_height, w.min(h), min_side) == k);
            let (kw, kh) = (w.div_ceil(1 << k), h.div_ceil(1 << k));
            let mut rows = Vec::new();
            for seed in at_k {
                let rect = seed.rect.halved(k);
                match &seed.spaced {
                    Some(spaced) => {
                        let gap = (gate.spaced_gap * seed.glyph_height / f64::from(1u32 << k))
                            .ceil() as usize;
                        let (region, pixels) = spaced::window(
                            rgb,
                            width,
                            height,
                            (kw, kh),
                            rect,
                            &spaced.halved(k),
                            gap,
                        );
                        windows.push((region.doubled(k, w, h), pixels));
                    }
                    None => rows.push(rect),
                }
            }
            if rows.is_empty() {
                continue;
            }
            // The detector's own (OpenCV-exact) input, only where it will run.
            for r in windows::detector_windows(&rows, kw, kh, DETECTOR_STRIDE) {
                let region = (r.x0..r.x1, r.y0..r.y1);
                let pixels = Pixels {
                    width: r.width(),
                    height: r.height(),
                    rgb: resize_linear_region(rgb, width, height, (kw, kh), region),
                };
                windows.push((r.doubled(k, w, h), pixels));
            }
        }
        Some(GateWindows {
            windows,
            width: w,
            height: h,
        })
    }

    /// The text boxes in an image prepared by [`detect::prepare`], in its coordinates.
    pub fn detect_boxes(&mut self, pixels: &Pixels) -> Result<Vec<TextBox>, OcrError> {
        let Some((w, h)) = detect::input_size(
            pixels.width,
            pixels.height,
            self.detect.limit_side_len,
            self.detect.limit_type,
        ) else {
            return Ok(Vec::new());
        };
        let input = detect::input_tensor(pixels, (w, h), &self.detect);
        let (detect, dest) = (&self.detect, (pixels.width, pixels.height));
        run(
            &mut self.models.detector,
            "detection",
            (&input, [1, 3, h, w]),
            &[Some(1), Some(1), Some(h), Some(w)],
            |_, pred| detect::boxes(pred, w, h, dest.0, dest.1, detect),
        )
    }

    /// Turns half a turn each cropped line the classifier is sure reads upside down.
    pub fn turn_upside_down_lines(&mut self, crops: &mut [Pixels]) -> Result<(), OcrError> {
        let order = recognise::batch_order(crops);
        let height = self.classify.image_height as usize;
        let width = recognise::BatchWidth::Fixed(self.classify.image_width as usize);
        for chunk in order.chunks(self.classify.batch.max(1)) {
            let batch: Vec<&Pixels> = chunk.iter().map(|&i| &crops[i]).collect();
            let (input, width) = recognise::input_tensor(&batch, height, width);
            let labels = self.classify.labels.len();
            let classify = &self.classify;
            let turn: Vec<bool> = run(
                &mut self.models.classifier,
                "orientation",
                (&input, [batch.len(), 3, height, width]),
                &[Some(batch.len()), Some(labels)],
                |_, probs| {
                    probs
                        .chunks_exact(labels)
                        .map(|row| classify.upside_down(row))
                        .collect()
                },
            )?;
            for (&i, turn) in chunk.iter().zip(turn) {
                if turn {
                    crops[i] = recognise::rotate_half_turn(&crops[i]);
                }
            }
        }
        Ok(())
    }

    /// Each cropped line's text and score, in the order given.
    pub fn recognise_lines(&mut self, crops: &[Pixels]) -> Result<Vec<(String, f32)>, OcrError> {
        let order = recognise::batch_order(crops);
        let mut read = vec![(String::new(), 0.0f32); crops.len()];
        let height = self.recognise.image_height as usize;
        let width = recognise::BatchWidth::AtLeast(self.recognise.image_width as usize);
        for chunk in order.chunks(self.recognise.batch.max(1)) {
            let batch: Vec<&Pixels> = chunk.iter().map(|&i| &crops[i]).collect();
            let (input, width) = recognise::input_tensor(&batch, height, width);
            let classes = &self.models.classes;
            let lines = run(
                &mut self.models.recogniser,
                "recognition",
                (&input, [batch.len(), 3, height, width]),
                &[Some(batch.len()), None, Some(classes.len())],
                |dims, probs| {
                    let per_line = dims[1] as usize * classes.len();
                    probs
                        .chunks_exact(per_line.max(1))
                        .map(|line| recognise::ctc_decode(line, classes))
                        .collect::<Vec<_>>()
                },
            )?;
            for (&i, line) in chunk.iter().zip(lines) {
                read[i] = line;
            }
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_manifest_reads_into_the_ocr_params() {
        let params = OcrParams::from_manifest(&provision::manifest().unwrap().ocr).unwrap();
        assert!(params.detect.limit_side_len > 0);
        assert!(!params.classify.labels.is_empty());
        assert!(!params.recognise.character_metadata_key.is_empty());
    }

    #[test]
    fn a_processing_fact_that_does_not_read_is_a_typed_error_naming_its_section() {
        let mut spec = provision::manifest().unwrap().ocr.clone();
        spec.detect
            .insert("thresh".into(), toml::Value::String("high".into()));
        match OcrParams::from_manifest(&spec) {
            Err(OcrError::Manifest { section, detail }) => {
                assert_eq!(section, "detect");
                assert!(detail.contains("thresh"), "{detail}");
            }
            other => panic!("expected a manifest error, got {:?}", other.map(|_| ())),
        }
        let mut spec = provision::manifest().unwrap().ocr.clone();
        spec.recognise
            .insert("not_a_fact".into(), toml::Value::Integer(1));
        assert!(matches!(
            OcrParams::from_manifest(&spec),
            Err(OcrError::Manifest {
                section: "recognise",
                ..
            })
        ));
    }
}
