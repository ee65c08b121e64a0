//! Provisioning: the model, ONNX Runtime and test data, fetched as pinned Python wheels.
//!
//! Machines that run coverguard reach package registries but no other download
//! host, so ort's own binary download cannot work. Instead every asset is a wheel
//! named in `models/manifest.toml` (compiled into the binary), fetched with
//! `python3 -m pip download --no-deps`, checked against its sha256, and unpacked
//! into the cache. This happens on first use and by `coverguard models fetch`.
//!
//! Cache layout (`$COVERGUARD_HOME`, else `$XDG_CACHE_HOME/coverguard`):
//! - `wheels/<wheel file>`: downloaded wheels, kept so a re-extract needs no network;
//!   a wheel copied here by hand makes an offline machine work.
//! - `assets/<name>-<sha256 prefix>/…`: the extracted files.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The manifest text, compiled in so the binary needs no source checkout.
pub const MANIFEST_TOML: &str = include_str!("../models/manifest.toml");

/// Environment variable naming the cache root.
pub const HOME_ENV: &str = "COVERGUARD_HOME";
/// Environment variable naming the Python interpreter used to run pip.
pub const PYTHON_ENV: &str = "COVERGUARD_PYTHON";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub runtime: RuntimeSpec,
    pub model: ModelSpec,
    pub ocr: OcrSpec,
    pub assets: Vec<AssetSpec>,
}

/// The OCR models (text detection and recognition) and their processing facts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcrSpec {
    pub asset: String,
    pub detector: String,
    pub recogniser: String,
    pub classifier: String,
    pub licence: String,
    /// The processing facts of `[ocr.detect]`, `[ocr.classify]` and `[ocr.recognise]`, kept
    /// as written: the OCR reads them into its own types (`text::ocr::OcrParams`), so
    /// provisioning does not depend on the OCR it provisions.
    pub detect: toml::Table,
    pub classify: toml::Table,
    pub recognise: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSpec {
    pub asset: String,
    pub library: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub asset: String,
    pub file: String,
    pub sha256: String,
    pub licence: String,
    pub input_size: u32,
    pub labels: Vec<String>,
    pub explicit_labels: Vec<String>,
    pub preprocess: PreprocessSpec,
    pub postprocess: PostprocessSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessSpec {
    pub pad: String,
    pub resize: String,
    pub channel_order: String,
    pub scale: f32,
    pub layout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostprocessSpec {
    pub score_floor: f32,
    pub nms_score: f32,
    pub nms_iou: f32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetSpec {
    pub name: String,
    /// What pip is asked for, e.g. `onnxruntime==1.32.0`.
    pub requirement: String,
    /// The one wheel file accepted.
    pub wheel: String,
    pub sha256: String,
    /// Members extracted and verified one by one.
    #[serde(default)]
    pub files: Vec<PinnedFile>,
    /// Or: every member under this prefix ending in one of `extract_suffixes`.
    pub extract_prefix: Option<String>,
    #[serde(default)]
    pub extract_suffixes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedFile {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("models/manifest.toml is invalid: {0}")]
    Manifest(String),
    #[error("no cache directory: set {HOME_ENV} to a writable directory")]
    NoCacheDir,
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "could not run `{python} -m pip` to fetch {requirement}: {source}. Install Python 3 with pip, \
         or set {PYTHON_ENV} to an interpreter that has it"
    )]
    PythonMissing {
        python: String,
        requirement: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    PipFailed(Box<PipFailure>),
    #[error("pip ran for {requirement} but did not produce {wheel}; found: {found}")]
    WheelNotProduced {
        requirement: String,
        wheel: String,
        found: String,
    },
    #[error("checksum mismatch for {path}: expected sha256 {expected}, got {actual}; the file was not used")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{wheel} is not a readable wheel: {detail}")]
    BadWheel { wheel: PathBuf, detail: String },
    #[error("{wheel} has no member {member}")]
    MissingMember { wheel: PathBuf, member: String },
    #[error("the manifest has no asset named {0}")]
    UnknownAsset(String),
}

/// What pip said when a download failed, and how to proceed offline.
#[derive(Debug)]
pub struct PipFailure {
    pub requirement: String,
    pub status: String,
    pub stderr: String,
    pub wheel: String,
    pub sha256: String,
    pub wheels_dir: PathBuf,
}

impl std::fmt::Display for PipFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pip could not download {} ({}):\n{}\nWith no network, copy the wheel {} (sha256 {}) into {} \
             and run `coverguard models fetch` again; or point ORT_DYLIB_PATH / --model at files you already have",
            self.requirement,
            self.status,
            self.stderr,
            self.wheel,
            self.sha256,
            self.wheels_dir.display()
        )
    }
}

fn io_err<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl FnOnce(io::Error) -> ProvisionError + 'p {
    move |source| ProvisionError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The compiled-in manifest, parsed once.
pub fn manifest() -> Result<&'static Manifest, ProvisionError> {
    static PARSED: OnceLock<Result<Manifest, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            let manifest: Manifest = toml::from_str(MANIFEST_TOML).map_err(|e| e.to_string())?;
            manifest.validate()?;
            Ok(manifest)
        })
        .as_ref()
        .map_err(|e| ProvisionError::Manifest(e.clone()))
}

impl Manifest {
    fn validate(&self) -> Result<(), String> {
        let model = &self.model;
        if model.labels.is_empty() {
            return Err("model.labels is empty".into());
        }
        if let Some(unknown) = model
            .explicit_labels
            .iter()
            .find(|l| !model.labels.contains(l))
        {
            return Err(format!(
                "explicit label {unknown} is not one of model.labels"
            ));
        }
        for name in [&self.runtime.asset, &model.asset] {
            if self.asset(name).is_none() {
                return Err(format!("no asset named {name}"));
            }
        }
        for asset in &self.assets {
            if asset.files.is_empty() && asset.extract_prefix.is_none() {
                return Err(format!("asset {} extracts nothing", asset.name));
            }
        }
        Ok(())
    }

    pub fn asset(&self, name: &str) -> Option<&AssetSpec> {
        self.assets.iter().find(|a| a.name == name)
    }
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ProvisionError> {
    let mut file = File::open(path).map_err(io_err("opening", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io_err("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn verify_sha256(path: &Path, expected: &str) -> Result<(), ProvisionError> {
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(ProvisionError::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// The provisioning cache.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
    /// Interpreter that runs pip.
    python: String,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let python = std::env::var(PYTHON_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "python3".to_string());
        Cache {
            root: root.into(),
            python,
        }
    }

    /// Use this interpreter for pip instead of `$COVERGUARD_PYTHON` / `python3`.
    pub fn with_python(mut self, python: impl Into<String>) -> Self {
        self.python = python.into();
        self
    }

    /// `$COVERGUARD_HOME`, else the XDG cache dir.
    pub fn from_env() -> Result<Self, ProvisionError> {
        if let Some(home) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            return Ok(Cache::new(home));
        }
        dirs::cache_dir()
            .map(|d| Cache::new(d.join("coverguard")))
            .ok_or(ProvisionError::NoCacheDir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn wheels_dir(&self) -> PathBuf {
        self.root.join("wheels")
    }

    fn asset_dir(&self, asset: &AssetSpec) -> PathBuf {
        self.root
            .join("assets")
            .join(format!("{}-{}", asset.name, &asset.sha256[..16]))
    }

    /// Directory holding the asset's extracted files, fetching and unpacking it first
    /// if needed. Safe against concurrent callers in other threads and processes: a
    /// file lock serialises them and extraction lands by rename.
    pub fn ensure(&self, asset: &AssetSpec) -> Result<PathBuf, ProvisionError> {
        let dir = self.asset_dir(asset);
        if is_complete(&dir, asset) {
            return Ok(dir);
        }
        fs::create_dir_all(&self.root).map_err(io_err("creating", &self.root))?;
        let lock_path = self.root.join(format!(".{}.lock", asset.name));
        let lock = File::create(&lock_path).map_err(io_err("creating", &lock_path))?;
        lock.lock().map_err(io_err("locking", &lock_path))?;
        // Another process may have finished while we waited for the lock.
        if is_complete(&dir, asset) {
            return Ok(dir);
        }
        let wheel = self.fetch_wheel(asset)?;
        self.extract(asset, &wheel, &dir)?;
        Ok(dir)
    }

    /// The wheel file, downloaded with pip unless a verified copy is cached.
    fn fetch_wheel(&self, asset: &AssetSpec) -> Result<PathBuf, ProvisionError> {
        let wheels = self.wheels_dir();
        fs::create_dir_all(&wheels).map_err(io_err("creating", &wheels))?;
        let wheel = wheels.join(&asset.wheel);
        if wheel.exists() {
            match verify_sha256(&wheel, &asset.sha256) {
                Ok(()) => return Ok(wheel),
                Err(ProvisionError::Checksum { .. }) => {
                    tracing::warn!(wheel = %wheel.display(), "cached wheel fails its checksum; downloading again");
                    fs::remove_file(&wheel).map_err(io_err("removing", &wheel))?;
                }
                Err(e) => return Err(e),
            }
        }
        let staging = tempdir_in(&wheels, "pip-")?;
        let python = &self.python;
        tracing::info!(requirement = %asset.requirement, "downloading with pip");
        let output = Command::new(python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
            ])
            // Fixed platform so every machine (whatever its own Python) resolves the same file.
            .args([
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
            ])
            .args(["--abi", "cp311", "--platform", "manylinux_2_28_x86_64"])
            .arg("--dest")
            .arg(staging.path())
            .arg(&asset.requirement)
            .output()
            .map_err(|source| ProvisionError::PythonMissing {
                python: python.clone(),
                requirement: asset.requirement.clone(),
                source,
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            return Err(ProvisionError::PipFailed(Box::new(PipFailure {
                requirement: asset.requirement.clone(),
                status: output.status.to_string(),
                stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                wheel: asset.wheel.clone(),
                sha256: asset.sha256.clone(),
                wheels_dir: wheels,
            })));
        }
        let produced = staging.path().join(&asset.wheel);
        if !produced.exists() {
            let found = fs::read_dir(staging.path())
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            return Err(ProvisionError::WheelNotProduced {
                requirement: asset.requirement.clone(),
                wheel: asset.wheel.clone(),
                found,
            });
        }
        verify_sha256(&produced, &asset.sha256)?;
        fs::rename(&produced, &wheel).map_err(io_err("moving into the cache", &wheel))?;
        Ok(wheel)
    }

    fn extract(&self, asset: &AssetSpec, wheel: &Path, dir: &Path) -> Result<(), ProvisionError> {
        let parent = dir.parent().expect("asset dirs live under assets/");
        fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
        let staging = tempdir_in(parent, ".extract-")?;
        let bad = |detail: String| ProvisionError::BadWheel {
            wheel: wheel.to_path_buf(),
            detail,
        };
        let file = File::open(wheel).map_err(io_err("opening", wheel))?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;

        let mut members: Vec<(String, Option<&str>)> = asset
            .files
            .iter()
            .map(|f| (f.path.clone(), Some(f.sha256.as_str())))
            .collect();
        if let Some(prefix) = &asset.extract_prefix {
            for name in archive.file_names() {
                if name.starts_with(prefix.as_str())
                    && asset
                        .extract_suffixes
                        .iter()
                        .any(|s| name.ends_with(s.as_str()))
                {
                    members.push((name.to_string(), None));
                }
            }
        }
        for (member, expected) in &members {
            let relative =
                safe_relative(member).ok_or_else(|| bad(format!("unsafe member path {member}")))?;
            let mut entry = archive
                .by_name(member)
                .map_err(|_| ProvisionError::MissingMember {
                    wheel: wheel.to_path_buf(),
                    member: member.clone(),
                })?;
            let out_path = staging.path().join(&relative);
            if let Some(p) = out_path.parent() {
                fs::create_dir_all(p).map_err(io_err("creating", p))?;
            }
            let mut out = File::create(&out_path).map_err(io_err("creating", &out_path))?;
            io::copy(&mut entry, &mut out).map_err(io_err("extracting", &out_path))?;
            out.sync_all().map_err(io_err("syncing", &out_path))?;
            if let Some(expected) = expected {
                verify_sha256(&out_path, expected)?;
            }
        }
        let marker = staging.path().join(COMPLETE_MARKER);
        let mut m = File::create(&marker).map_err(io_err("creating", &marker))?;
        writeln!(m, "{} {}", asset.wheel, asset.sha256).map_err(io_err("writing", &marker))?;
        if dir.exists() {
            // A previous, incomplete extraction (no marker), or one made before the
            // manifest pinned more of this wheel: replace it.
            fs::remove_dir_all(dir).map_err(io_err("removing", dir))?;
        }
        let staged = staging.keep();
        fs::rename(&staged, dir).map_err(io_err("moving into the cache", dir))?;
        Ok(())
    }
}

const COMPLETE_MARKER: &str = ".complete";

/// An extraction that finished and holds every file the manifest now pins (a newer
/// manifest may pin more members of the same wheel).
fn is_complete(dir: &Path, asset: &AssetSpec) -> bool {
    dir.join(COMPLETE_MARKER).exists() && asset.files.iter().all(|f| dir.join(&f.path).is_file())
}

/// A wheel member path as a relative path with no `..` or root.
fn safe_relative(member: &str) -> Option<PathBuf> {
    let path = Path::new(member);
    path.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
        .then(|| path.to_path_buf())
}

/// A uniquely named directory in `parent`, removed on drop unless kept.
fn tempdir_in(parent: &Path, prefix: &str) -> Result<tempfile::TempDir, ProvisionError> {
    fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .map_err(io_err("creating a directory in", parent))
}

/// Where the model and the runtime library are, after overrides.
#[derive(Clone, Debug)]
pub struct Provisioned {
    pub model_path: PathBuf,
    pub runtime_library: PathBuf,
}

/// Resolve the model and ONNX Runtime, fetching what is missing.
///
/// `model_override` (an explicit `--model` path) and `ORT_DYLIB_PATH` win over the
/// cache; an overridden file is used as given (its sha256 is still reported).
pub fn provision(
    cache: &Cache,
    model_override: Option<&Path>,
) -> Result<Provisioned, ProvisionError> {
    let manifest = manifest()?;
    let model_path = match model_override {
        Some(p) => p.to_path_buf(),
        None => {
            let asset = manifest
                .asset(&manifest.model.asset)
                .ok_or_else(|| ProvisionError::UnknownAsset(manifest.model.asset.clone()))?;
            cache.ensure(asset)?.join(&manifest.model.file)
        }
    };
    let runtime_library = match std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => {
            let asset = manifest
                .asset(&manifest.runtime.asset)
                .ok_or_else(|| ProvisionError::UnknownAsset(manifest.runtime.asset.clone()))?;
            cache.ensure(asset)?.join(&manifest.runtime.library)
        }
    };
    Ok(Provisioned {
        model_path,
        runtime_library,
    })
}

/// Where the OCR models are.
#[derive(Clone, Debug)]
pub struct OcrProvisioned {
    pub detector: PathBuf,
    pub recogniser: PathBuf,
    pub classifier: PathBuf,
}

/// The OCR models, fetched and verified if missing.
pub fn provision_ocr(cache: &Cache) -> Result<OcrProvisioned, ProvisionError> {
    let spec = &manifest()?.ocr;
    let dir = ensure_asset(cache, &spec.asset)?;
    Ok(OcrProvisioned {
        detector: dir.join(&spec.detector),
        recogniser: dir.join(&spec.recogniser),
        classifier: dir.join(&spec.classifier),
    })
}

/// Fetch an asset by its manifest name (e.g. the test photos), returning its directory.
pub fn ensure_asset(cache: &Cache, name: &str) -> Result<PathBuf, ProvisionError> {
    let manifest = manifest()?;
    let asset = manifest
        .asset(name)
        .ok_or_else(|| ProvisionError::UnknownAsset(name.to_string()))?;
    cache.ensure(asset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_manifest_is_valid() {
        let m = manifest().expect("manifest parses");
        assert_eq!(m.model.labels.len(), 18);
        assert_eq!(m.model.input_size, 320);
        for asset in &m.assets {
            assert_eq!(asset.sha256.len(), 64, "{}", asset.name);
            assert!(asset.wheel.ends_with(".whl"));
        }
    }

    #[test]
    fn member_paths_cannot_escape() {
        assert!(safe_relative("nudenet/320n.onnx").is_some());
        assert!(safe_relative("../evil").is_none());
        assert!(safe_relative("/etc/passwd").is_none());
        assert!(safe_relative("a/../../b").is_none());
    }

    /// An asset whose pins (all zeros) no real wheel or file can match.
    fn unmatchable(name: &str, requirement: &str, wheel: &str) -> AssetSpec {
        AssetSpec {
            name: name.into(),
            requirement: requirement.into(),
            wheel: wheel.into(),
            sha256: "0".repeat(64),
            files: vec![PinnedFile {
                path: "x".into(),
                sha256: "0".repeat(64),
            }],
            extract_prefix: None,
            extract_suffixes: vec![],
        }
    }

    #[test]
    fn pip_failure_names_the_offline_remedy() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let asset = unmatchable(
            "nothing",
            "coverguard-test-no-such-package-xyz==0.0.0",
            "nothing-0.0.0-py3-none-any.whl",
        );
        // A Python that cannot exist: the error must say how to fix it.
        let no_python = Cache::new(tmp.path()).with_python("/nonexistent/python3");
        let err = no_python.ensure(&asset).unwrap_err();
        assert!(matches!(err, ProvisionError::PythonMissing { .. }), "{err}");
        assert!(err.to_string().contains(PYTHON_ENV));

        // A package the index does not have: pip fails and the error says what to do offline.
        let err = cache.ensure(&asset).unwrap_err();
        assert!(matches!(err, ProvisionError::PipFailed(_)), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("models fetch") && message.contains("ORT_DYLIB_PATH"),
            "{message}"
        );
        assert!(
            !tmp.path().join("assets").exists(),
            "nothing half-extracted"
        );
    }

    #[test]
    fn a_newly_pinned_member_of_an_extracted_wheel_is_extracted_from_the_cached_wheel() {
        let tmp = tempfile::tempdir().unwrap();
        // No Python: everything must come from the cached wheel.
        let cache = Cache::new(tmp.path()).with_python("/nonexistent/python3");
        let wheel_name = "pinned-1.0-py3-none-any.whl";
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in [
            ("pkg/a.onnx", b"first".as_slice()),
            ("pkg/b.onnx", b"second"),
        ] {
            zip.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(body).unwrap();
        }
        let wheel = zip.finish().unwrap().into_inner();
        fs::create_dir_all(cache.wheels_dir()).unwrap();
        fs::write(cache.wheels_dir().join(wheel_name), &wheel).unwrap();
        let digest = |b: &[u8]| hex::encode(Sha256::digest(b));
        let pin = |path: &str, body: &[u8]| PinnedFile {
            path: path.into(),
            sha256: digest(body),
        };
        let mut asset = AssetSpec {
            name: "pinned".into(),
            requirement: "pinned==1.0".into(),
            wheel: wheel_name.into(),
            sha256: digest(&wheel),
            files: vec![pin("pkg/a.onnx", b"first")],
            extract_prefix: None,
            extract_suffixes: vec![],
        };
        let dir = cache.ensure(&asset).unwrap();
        assert!(dir.join("pkg/a.onnx").is_file() && !dir.join("pkg/b.onnx").exists());
        asset.files.push(pin("pkg/b.onnx", b"second"));
        assert_eq!(cache.ensure(&asset).unwrap(), dir);
        assert_eq!(fs::read(dir.join("pkg/b.onnx")).unwrap(), b"second");
    }

    #[test]
    fn cached_wheel_with_wrong_checksum_is_never_extracted() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path()).with_python("/nonexistent/python3");
        let asset = unmatchable("tampered", "tampered==1.0", "tampered-1.0-py3-none-any.whl");
        fs::create_dir_all(cache.wheels_dir()).unwrap();
        fs::write(
            cache.wheels_dir().join(&asset.wheel),
            b"not the pinned bytes",
        )
        .unwrap();
        // The bad copy is discarded and a fresh download attempted (which fails here).
        let err = cache.ensure(&asset).unwrap_err();
        assert!(matches!(err, ProvisionError::PythonMissing { .. }), "{err}");
        assert!(!cache.wheels_dir().join(&asset.wheel).exists());
    }
}
