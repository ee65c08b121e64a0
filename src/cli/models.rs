//! `coverguard models`: fetch and locate the model, the OCR models and ONNX Runtime.

use clap::Subcommand;

use coverguard::provision::{self, Cache};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Download and verify the model, the OCR models and ONNX Runtime into the cache.
    Fetch {
        /// Also fetch the scikit-image sample photos the parity tests use.
        #[arg(long)]
        test_data: bool,
    },
    /// Print where the model and runtime are (fetching them if needed).
    Path,
}

pub fn models(command: ModelsCommand) -> anyhow::Result<()> {
    let cache = Cache::from_env()?;
    match command {
        ModelsCommand::Fetch { test_data } => {
            let p = provision::provision(&cache, None)?;
            println!("model:   {}", p.model_path.display());
            println!("runtime: {}", p.runtime_library.display());
            let ocr = provision::provision_ocr(&cache)?;
            println!("ocr detector:   {}", ocr.detector.display());
            println!("ocr recogniser: {}", ocr.recogniser.display());
            println!("ocr classifier: {}", ocr.classifier.display());
            if test_data {
                let dir = provision::ensure_asset(&cache, "skimage-data")?;
                println!("test data: {}", dir.display());
            }
        }
        ModelsCommand::Path => {
            let p = provision::provision(&cache, None)?;
            println!("cache:   {}", cache.root().display());
            println!("model:   {}", p.model_path.display());
            println!("runtime: {}", p.runtime_library.display());
        }
    }
    Ok(())
}
