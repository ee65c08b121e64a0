//! The OCR models (PP-OCRv4 text detection and recognition, as rapidocr ships them)
//! loaded on the same ONNX Runtime as the detector, with the recogniser's classes.
//! Each worker holds its own [`OcrModels`]: `Session::run` takes `&mut self`.

use std::path::{Path, PathBuf};

use ort::session::{builder::GraphOptimizationLevel, Session};

use super::OcrParams;
use crate::classify::{environment, ClassifyError};
use crate::provision::{self, OcrProvisioned};

#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error(transparent)]
    Runtime(#[from] ClassifyError),
    #[error(transparent)]
    Provision(#[from] provision::ProvisionError),
    #[error("cannot build an inference session for {path}: {detail}")]
    Session { path: PathBuf, detail: String },
    #[error("the manifest's [ocr.{section}] does not read: {detail}")]
    Manifest {
        section: &'static str,
        detail: String,
    },
    #[error("OCR model {path} is not what the manifest describes: {detail}")]
    ModelShape { path: PathBuf, detail: String },
    #[error("OCR {stage} failed: {detail}")]
    Inference { stage: &'static str, detail: String },
}

/// The three sessions and the recogniser's classes.
pub struct OcrModels {
    pub detector: Session,
    pub recogniser: Session,
    /// Which way up a line reads.
    pub classifier: Session,
    /// Class `i` of the recogniser's output: `classes[0]` is CTC's blank (empty), the
    /// last a space.
    pub classes: Vec<String>,
}

fn session(path: &Path, runtime_library: &Path, intra_threads: usize) -> Result<Session, OcrError> {
    let env = environment(runtime_library)?;
    let failed = |e: &dyn std::fmt::Display| OcrError::Session {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let mut builder = Session::builder(env)
        .map_err(|e| failed(&e))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| failed(&e))?;
    if intra_threads > 0 {
        builder = builder
            .with_intra_threads(intra_threads)
            .map_err(|e| failed(&e))?;
    }
    builder.commit_from_file(path).map_err(|e| failed(&e))
}

impl OcrModels {
    /// Loads the models; checks that each has one 3-channel image input and that the
    /// recogniser's output has one class per entry of its character list (plus blank
    /// and space), as `params` describe them.
    pub fn load(
        models: &OcrProvisioned,
        params: &OcrParams,
        runtime_library: &Path,
        intra_threads: usize,
    ) -> Result<OcrModels, OcrError> {
        let detector = session(&models.detector, runtime_library, intra_threads)?;
        let recogniser = session(&models.recogniser, runtime_library, intra_threads)?;
        let classifier = session(&models.classifier, runtime_library, intra_threads)?;
        for (path, session) in [
            (&models.detector, &detector),
            (&models.recogniser, &recogniser),
            (&models.classifier, &classifier),
        ] {
            let channels = session
                .inputs()
                .first()
                .and_then(|i| i.dtype().tensor_shape())
                .and_then(|shape| shape.get(1).copied());
            if session.inputs().len() != 1 || channels != Some(3) {
                return Err(OcrError::ModelShape {
                    path: path.clone(),
                    detail: format!(
                        "{} inputs, channels {channels:?}; expected one [N, 3, H, W] input",
                        session.inputs().len()
                    ),
                });
            }
        }
        let shape_error = |detail: String| OcrError::ModelShape {
            path: models.recogniser.clone(),
            detail,
        };
        let characters = recogniser
            .metadata()
            .map_err(|e| shape_error(e.to_string()))?
            .custom(&params.recognise.character_metadata_key)
            .ok_or_else(|| {
                shape_error(format!(
                    "no metadata key {:?} with the character list",
                    params.recognise.character_metadata_key
                ))
            })?;
        let classes: Vec<String> = std::iter::once(String::new())
            .chain(characters.lines().map(str::to_string))
            .chain(std::iter::once(" ".to_string()))
            .collect();
        let output_classes = recogniser
            .outputs()
            .first()
            .and_then(|o| o.dtype().tensor_shape())
            .and_then(|shape| shape.last().copied());
        if output_classes != Some(classes.len() as i64) {
            return Err(shape_error(format!(
                "its output has {output_classes:?} classes, its character list makes {}",
                classes.len()
            )));
        }
        let labels = classifier
            .outputs()
            .first()
            .and_then(|o| o.dtype().tensor_shape())
            .and_then(|shape| shape.last().copied());
        if labels != Some(params.classify.labels.len() as i64) {
            return Err(OcrError::ModelShape {
                path: models.classifier.clone(),
                detail: format!(
                    "its output has {labels:?} labels, the manifest names {}",
                    params.classify.labels.len()
                ),
            });
        }
        Ok(OcrModels {
            detector,
            recogniser,
            classifier,
            classes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::Cache;

    #[test]
    fn the_pinned_ocr_models_load_with_the_classes_their_output_has() {
        let cache = Cache::from_env().unwrap();
        let provisioned = provision::provision(&cache, None).unwrap();
        let ocr = provision::provision_ocr(&cache).unwrap();
        for path in [&ocr.detector, &ocr.recogniser, &ocr.classifier] {
            let pinned = provision::manifest()
                .unwrap()
                .asset("rapidocr")
                .unwrap()
                .files
                .iter()
                .find(|f| path.ends_with(&f.path))
                .expect("a pinned file");
            assert_eq!(provision::sha256_file(path).unwrap(), pinned.sha256);
        }
        let params = OcrParams::from_manifest(&provision::manifest().unwrap().ocr).unwrap();
        let models = OcrModels::load(&ocr, &params, &provisioned.runtime_library, 1).unwrap();
        // PP-OCRv4's recogniser: 6,623 characters, blank and space.
        assert_eq!(models.classes.len(), 6625);
        assert_eq!(models.classes[0], "");
        assert_eq!(models.classes.last().map(String::as_str), Some(" "));
        assert!(models.classes.iter().any(|c| c == "a") && models.classes.iter().any(|c| c == "7"));
    }
}
