//! `coverguard hash`: images to HMA bank lines, so a bank built from images can be stored,
//! shared and loaded like any hash list (`scan --bank`, the bank import API).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use coverguard::decode::DecodeLimits;
use coverguard::fetch::{self, Source};
use coverguard::matching::image_entries::image_entries;
use coverguard::screening::analyse::analyse;
use coverguard::screening::policy::Policy;

#[derive(Args)]
pub struct HashArgs {
    /// Name each image's entry after its file name without the extension (`cover-17.png`
    /// gives `cover-17`); otherwise after the first 32 hex digits of its SHA-256.
    #[arg(long)]
    id_from_name: bool,
    /// A policy TOML file: its `pdq_min_quality` is the gate a PDQ line must pass.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Largest accepted input, in bytes.
    #[arg(long, default_value_t = DecodeLimits::default().max_bytes)]
    max_bytes: usize,
    /// Image files or directories (recursed).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

/// Prints `<signal> <hash> <id>` lines per image: `pdq`, one `pdq_<region>` per region, and
/// `md5`. Exit status as `scan`'s: 0 every image gave every line, 1 a PDQ line was left out
/// under the quality gate (said on stderr), 2 an image could not be read or decoded.
pub fn hash(args: HashArgs) -> anyhow::Result<ExitCode> {
    let manifest = coverguard::provision::manifest()?;
    let policy = Policy::for_model(args.policy.as_deref(), &manifest.model)?;
    let limits = DecodeLimits {
        max_bytes: args.max_bytes,
        ..DecodeLimits::default()
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut skipped_any, mut failed) = (false, false);
    for (shown, source) in fetch::expand_inputs(&args.images) {
        let Source::File(path) = source else {
            eprintln!("coverguard hash: {shown}: only files are hashed, not URLs");
            failed = true;
            continue;
        };
        let analysed = fetch::read_file(&path, limits.max_bytes)
            .map_err(coverguard::screening::analyse::ScreenError::from)
            .and_then(|bytes| analyse(&bytes, &limits));
        let analysed = match analysed {
            Ok(a) => a,
            Err(e) => {
                eprintln!("coverguard hash: {shown}: {} error: {e}", e.kind());
                failed = true;
                continue;
            }
        };
        let id = if args.id_from_name {
            let Some(id) = entry_id_from_name(&path) else {
                eprintln!(
                    "coverguard hash: {shown}: the file name is no entry id (one word, no '#')"
                );
                failed = true;
                continue;
            };
            id
        } else {
            coverguard::matching::image_entries::default_entry_id(&analysed.exact)
        };
        let built = image_entries(
            &analysed.exact,
            &analysed.pdq,
            policy.pdq_min_quality,
            |s| s != coverguard::matching::bank::SignalType::Sha256,
        );
        for reason in &built.skipped {
            eprintln!("coverguard hash: {shown}: skipped {reason}");
        }
        skipped_any |= !built.skipped.is_empty();
        for (signal, hash) in built.entries {
            // A closed pipe (e.g. `| head`) ends the run; it is not a failure.
            if writeln!(out, "{signal} {hash} {id}").is_err() {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    Ok(ExitCode::from(match (failed, skipped_any) {
        (true, _) => 2,
        (false, true) => 1,
        (false, false) => 0,
    }))
}

/// The file stem, when it is a valid entry id: one word (the id is the line's last column).
fn entry_id_from_name(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    (!stem.is_empty() && !stem.chars().any(char::is_whitespace) && !stem.contains('#'))
        .then(|| stem.to_string())
}
