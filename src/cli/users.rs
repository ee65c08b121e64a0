//! `coverguard users`: console accounts, for the first admin before any token exists.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use coverguard::config::ServiceConfig;
use coverguard::http::session::hash_password;
use coverguard::store::valid_username;
use coverguard::store::{ConsoleRole, ExistingUser};

/// Where `users add` reads the password from when it is not piped on stdin.
const ENV_PASSWORD: &str = "COVERGUARD_USER_PASSWORD";

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a console user, or set an existing one's password and role. The password is
    /// read from COVERGUARD_USER_PASSWORD, else from the first line of stdin.
    Add {
        username: String,
        /// reviewer or admin.
        #[arg(long, default_value = "reviewer")]
        role: String,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Disable a console user and end their sessions (`users add` enables them again).
    Disable {
        username: String,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs `work` against the configured store, then closes it.
fn with_store<F, Fut>(config: Option<&std::path::Path>, work: F) -> anyhow::Result<()>
where
    F: FnOnce(std::sync::Arc<dyn coverguard::store::Store>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = ServiceConfig::load(config)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let store = coverguard::store::open(&config.database_url())
                .await
                .context("opening the store")?;
            let result = work(store.clone()).await;
            store.close().await;
            result
        })
}

pub fn users(command: UsersCommand) -> anyhow::Result<ExitCode> {
    match command {
        UsersCommand::Add {
            username,
            role,
            config,
        } => {
            if !valid_username(&username) {
                bail!("user name {username:?}: use 1-64 of a-z, 0-9, '.', '_', '-'");
            }
            let role: ConsoleRole = role
                .parse()
                .map_err(|_| anyhow::anyhow!("--role {role:?}: use reviewer or admin"))?;
            let password = match std::env::var(ENV_PASSWORD) {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("reading the password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let phc = hash_password(&password)?;
            let name = username.clone();
            with_store(config.as_deref(), |store| async move {
                Ok(store
                    .put_console_user(&name, &phc, role, "cli", ExistingUser::Replace)
                    .await?)
            })?;
            eprintln!("console user {username} ({role}) saved");
            Ok(ExitCode::SUCCESS)
        }
        UsersCommand::Disable { username, config } => {
            let name = username.clone();
            with_store(config.as_deref(), |store| async move {
                Ok(store.disable_console_user(&name, "cli").await?)
            })?;
            eprintln!("console user {username} disabled; their sessions are ended");
            Ok(ExitCode::SUCCESS)
        }
    }
}
