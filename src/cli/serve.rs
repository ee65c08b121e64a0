//! `coverguard serve`: the HTTP service until Ctrl-C or SIGTERM.

use std::path::PathBuf;

pub fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = coverguard::config::ServiceConfig::load(config.as_deref())?;
    super::runtime()?.block_on(coverguard::http::serve(config, async {
        // Stop accepting on Ctrl-C or SIGTERM; in-flight requests finish.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        tracing::info!("shutting down");
    }))
}
