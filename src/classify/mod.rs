//! Classify stage: NudeNet 3.4.2's `320n.onnx` detector on ONNX Runtime.
//!
//! An ort `Session::run` takes `&mut self`, so a [`Detector`] is owned by one
//! worker (a thread, or the batching loop of the service) and reused for every
//! image: building a session costs far more than one inference.

pub mod postprocess;
pub mod preprocess;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

pub use postprocess::{Detection, PostprocessParams};
use preprocess::ChannelOrder;

use crate::provision::{self, ModelSpec, Provisioned};

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error(transparent)]
    Provision(#[from] provision::ProvisionError),
    #[error("cannot load ONNX Runtime from {path}: {detail}. Run `coverguard models fetch`, or set ORT_DYLIB_PATH to libonnxruntime.so 1.31 or newer")]
    Runtime { path: PathBuf, detail: String },
    #[error("ONNX Runtime was already loaded from another library in this process; cannot also load {path}")]
    RuntimeConflict { path: PathBuf },
    #[error("cannot read model {path}: {detail}")]
    ModelFile { path: PathBuf, detail: String },
    #[error("cannot build an inference session for {path}: {detail}")]
    Session { path: PathBuf, detail: String },
    #[error("model {path} does not have the shape the manifest describes: {detail}")]
    ModelShape { path: PathBuf, detail: String },
    #[error("manifest entry model.preprocess.channel_order {0:?} is not rgb or bgr")]
    ChannelOrder(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("image {index} of the batch is {width}x{height}; cannot classify an empty image")]
    EmptyImage {
        index: usize,
        width: u32,
        height: u32,
    },
}

/// Borrowed RGB8 pixels of one image.
#[derive(Clone, Copy, Debug)]
pub struct RgbView<'a> {
    pub width: u32,
    pub height: u32,
    pub rgb: &'a [u8],
    /// The image's own size, which boxes are reported in. Larger than `width` x
    /// `height` when the pixels come from a reduced-scale decode.
    pub source_width: u32,
    pub source_height: u32,
}

impl<'a> RgbView<'a> {
    /// A view of all of an image's pixels.
    #[must_use]
    pub fn full(width: u32, height: u32, rgb: &'a [u8]) -> Self {
        RgbView {
            width,
            height,
            rgb,
            source_width: width,
            source_height: height,
        }
    }
}

/// What a classification produced for one image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Classification {
    pub detections: Vec<Detection>,
}

/// Image-level score per label: the maximum over its detections.
pub fn label_scores(detections: &[Detection]) -> BTreeMap<String, f32> {
    let mut scores = BTreeMap::new();
    for d in detections {
        let s = scores.entry(d.label.clone()).or_insert(0f32);
        *s = s.max(d.score);
    }
    scores
}

/// The process-wide ONNX Runtime environment. ort loads one dylib per process.
pub(crate) fn environment(
    library: &Path,
) -> Result<&'static ort::environment::Environment, ClassifyError> {
    static ENV: OnceLock<(PathBuf, ort::environment::Environment)> = OnceLock::new();
    if let Some((loaded, env)) = ENV.get() {
        if loaded != library {
            return Err(ClassifyError::RuntimeConflict {
                path: library.to_path_buf(),
            });
        }
        return Ok(env);
    }
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, env)) = ENV.get() {
        return Ok(env);
    }
    if !library.is_file() {
        return Err(ClassifyError::Runtime {
            path: library.to_path_buf(),
            detail: "no such file".into(),
        });
    }
    let runtime_err = |detail: String| ClassifyError::Runtime {
        path: library.to_path_buf(),
        detail,
    };
    let env = ort::init_from(library)
        .map_err(|e| runtime_err(e.to_string()))?
        .with_name("coverguard")
        .build()
        .map_err(|e| runtime_err(e.to_string()))?;
    Ok(&ENV.get_or_init(|| (library.to_path_buf(), env)).1)
}

/// Options for building a detector session.
#[derive(Clone, Debug, Default)]
pub struct DetectorOptions {
    /// Intra-op threads of this session (0: ONNX Runtime's default).
    pub intra_threads: usize,
}

/// A loaded detector: one ort session plus the model's pre/post-processing facts.
pub struct Detector {
    session: Session,
    spec: &'static ModelSpec,
    channel_order: ChannelOrder,
    params: PostprocessParams,
    model_id: String,
    /// Reused input buffer (NCHW f32).
    input: Vec<f32>,
}

impl Detector {
    /// Load the model and runtime named by `provisioned`.
    pub fn load(
        provisioned: &Provisioned,
        options: &DetectorOptions,
    ) -> Result<Self, ClassifyError> {
        let spec = &provision::manifest()?.model;
        let channel_order = ChannelOrder::parse(&spec.preprocess.channel_order)
            .ok_or_else(|| ClassifyError::ChannelOrder(spec.preprocess.channel_order.clone()))?;
        let model_path = &provisioned.model_path;
        let sha256 = provision::sha256_file(model_path).map_err(|e| ClassifyError::ModelFile {
            path: model_path.clone(),
            detail: e.to_string(),
        })?;
        let env = environment(&provisioned.runtime_library)?;
        let session_err = |detail: String| ClassifyError::Session {
            path: model_path.clone(),
            detail,
        };
        let mut builder = Session::builder(env)
            .map_err(|e| session_err(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| session_err(e.to_string()))?;
        if options.intra_threads > 0 {
            builder = builder
                .with_intra_threads(options.intra_threads)
                .map_err(|e| session_err(e.to_string()))?;
        }
        let session = builder
            .commit_from_file(model_path)
            .map_err(|e| session_err(e.to_string()))?;
        if session.inputs().len() != 1 || session.outputs().is_empty() {
            return Err(ClassifyError::ModelShape {
                path: model_path.clone(),
                detail: format!(
                    "{} inputs, {} outputs; expected 1 input",
                    session.inputs().len(),
                    session.outputs().len()
                ),
            });
        }
        let side = spec.input_size as usize;
        Ok(Detector {
            session,
            spec,
            channel_order,
            params: PostprocessParams {
                score_floor: spec.postprocess.score_floor,
                nms_score: spec.postprocess.nms_score,
                nms_iou: spec.postprocess.nms_iou,
            },
            model_id: format!("{}@{}", spec.name, &sha256[..12]),
            input: Vec::with_capacity(3 * side * side),
        })
    }

    /// `name@sha256-prefix` of the loaded model file: recorded with every verdict.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    pub fn spec(&self) -> &'static ModelSpec {
        self.spec
    }

    /// Classify one image.
    pub fn classify(&mut self, image: RgbView<'_>) -> Result<Classification, ClassifyError> {
        Ok(self.classify_batch(&[image])?.pop().unwrap_or_default())
    }

    /// Classify several images in one inference call.
    pub fn classify_batch(
        &mut self,
        images: &[RgbView<'_>],
    ) -> Result<Vec<Classification>, ClassifyError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let side = self.spec.input_size as usize;
        let per_image = 3 * side * side;
        self.input.clear();
        self.input.resize(per_image * images.len(), 0.0);
        for (i, image) in images.iter().enumerate() {
            if image.width == 0 || image.height == 0 {
                return Err(ClassifyError::EmptyImage {
                    index: i,
                    width: image.width,
                    height: image.height,
                });
            }
            let resized = preprocess::resize_padded_square(
                image.rgb,
                image.width as usize,
                image.height as usize,
                side,
            );
            preprocess::to_nchw(
                &resized,
                side,
                self.channel_order,
                self.spec.preprocess.scale,
                &mut self.input[i * per_image..(i + 1) * per_image],
            );
        }
        let shape = [images.len(), 3, side, side];
        let tensor = TensorRef::from_array_view((shape, &*self.input))
            .map_err(|e| ClassifyError::Inference(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![tensor])
            .map_err(|e| ClassifyError::Inference(e.to_string()))?;
        let (out_shape, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| ClassifyError::Inference(e.to_string()))?;
        let rows = 4 + self.spec.labels.len();
        let dims: Vec<i64> = out_shape.iter().copied().collect();
        if dims.len() != 3 || dims[0] as usize != images.len() || dims[1] as usize != rows {
            return Err(ClassifyError::Inference(format!(
                "output shape {dims:?}, expected [{}, {rows}, anchors]",
                images.len()
            )));
        }
        let anchors = dims[2] as usize;
        let per_output = rows * anchors;
        Ok(images
            .iter()
            .enumerate()
            .map(|(i, image)| Classification {
                detections: postprocess::detections(
                    &data[i * per_output..(i + 1) * per_output],
                    anchors,
                    &self.spec.labels,
                    // The padded square maps onto the source image whatever the decode
                    // scale: boxes come out in the image's own pixels.
                    image.source_width,
                    image.source_height,
                    self.spec.input_size,
                    &self.params,
                ),
            })
            .collect())
    }
}
