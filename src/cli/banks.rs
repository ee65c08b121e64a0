//! `coverguard banks`: bank operations on the store.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use coverguard::config::ServiceConfig;

use super::runtime;

#[derive(Subcommand)]
pub enum BanksCommand {
    /// Match the current banks against every stored artwork's hashes, without fetching or
    /// inferring; hits are quarantined and reported like any block.
    RetroMatch {
        /// Only this bank's entries.
        #[arg(long)]
        bank: Option<String>,
        /// Print the hits as JSON lines.
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

pub fn banks(command: BanksCommand) -> anyhow::Result<ExitCode> {
    match command {
        BanksCommand::RetroMatch { bank, json, config } => {
            let config = ServiceConfig::load(config.as_deref())?;
            let summary = runtime()?.block_on(async {
                let store = coverguard::store::open(&config.database_url())
                    .await
                    .context("opening the store")?;
                let loaded =
                    coverguard::app::load(&config, store.clone(), std::sync::Arc::new(|_, _| {}))
                        .await?;
                // A misspelt bank would compare nothing and look like a clean run.
                if let Some(name) = bank.as_deref() {
                    let banks = loaded.pipeline.banks().await?;
                    if banks.rules(name).is_none() {
                        let mut known: Vec<&str> =
                            banks.bank_set().banks().iter().map(|b| b.name.as_str()).collect();
                        known.sort_unstable();
                        anyhow::bail!(
                            "no bank named {name:?} in the store at {}; its banks are: {}",
                            config.database_url(),
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        );
                    }
                }
                let summary = loaded
                    .pipeline
                    .retro_match(bank.as_deref(), Some(&loaded.http))
                    .await?;
                // Takedowns from the command line are audited as the API's are.
                let actor = format!(
                    "cli:{}",
                    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
                );
                store
                    .append_audit(
                        &actor,
                        "bank.retro_match",
                        bank.as_deref().unwrap_or("*"),
                        &serde_json::json!({
                            "scanned": summary.scanned,
                            "hits": summary.hits.iter().map(|h| h.artwork_id.as_str()).collect::<Vec<_>>(),
                        }),
                    )
                    .await
                    .context("writing the audit row")?;
                store.close().await;
                anyhow::Ok(summary)
            })?;
            for hit in &summary.hits {
                if json {
                    println!("{}", serde_json::to_string(hit)?);
                } else {
                    let banks: Vec<&str> = hit.matches.iter().map(|m| m.bank.as_str()).collect();
                    println!(
                        "{}: {} ({}){}",
                        hit.artwork_id,
                        hit.verdict,
                        banks.join(", "),
                        if hit.evidence {
                            ""
                        } else {
                            ", no evidence bytes"
                        }
                    );
                }
            }
            eprintln!(
                "{} artwork(s) compared, {} new hit(s)",
                summary.scanned,
                summary.hits.len()
            );
            Ok(ExitCode::from(u8::from(!summary.hits.is_empty())))
        }
    }
}
