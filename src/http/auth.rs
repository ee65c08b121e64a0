//! Caller extractors. A handler that takes an [`AdminToken`] or a [`ServiceToken`] runs
//! only for a caller whose bearer token has that role (an admin token serves both), and
//! gets who called and the loaded service that checked them. The admission layer has
//! already refused unknown tokens before any body was read; this names the caller and
//! checks the route's role. A handler that takes a [`ConsoleSession`] runs only for a
//! logged-in console user, and one that takes an [`AdminOrConsole`] for either a caller with
//! an admin token or a console user.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use super::session::{self, Reviewer};
use super::{check_bearer, AppState, Caller, Ready};
use crate::store::TokenRole;

/// The role a route needs, as a type.
pub trait Role: Send + Sync + 'static {
    const NEEDED: TokenRole;
}

pub enum AdminRole {}
pub enum ServiceRole {}

impl Role for AdminRole {
    const NEEDED: TokenRole = TokenRole::Admin;
}

impl Role for ServiceRole {
    const NEEDED: TokenRole = TokenRole::Service;
}

/// The caller of a request whose bearer token has role `R`, and the service that checked it.
pub struct Bearer<R> {
    pub ready: Arc<Ready>,
    pub caller: Caller,
    role: PhantomData<R>,
}

/// An admin token: banks, takedowns, users.
pub type AdminToken = Bearer<AdminRole>;
/// A service token (or an admin one): screening and reading records.
pub type ServiceToken = Bearer<ServiceRole>;

impl<R: Role> FromRequestParts<AppState> for Bearer<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ready = Arc::clone(state.shared_ready()?);
        let caller = check_bearer(&ready, &parts.headers, R::NEEDED)?;
        Ok(Bearer {
            ready,
            caller,
            role: PhantomData,
        })
    }
}

/// A console session's user (reviewer or admin) and the service that checked it. Requests
/// other than GET and HEAD must also carry the session's CSRF token.
pub struct ConsoleSession {
    pub ready: Arc<Ready>,
    pub reviewer: Reviewer,
}

impl FromRequestParts<AppState> for ConsoleSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ready = Arc::clone(state.shared_ready()?);
        let config = &state.config().review;
        let reviewer = session::authenticate(&ready, config, &parts.method, &parts.headers).await?;
        Ok(ConsoleSession { ready, reviewer })
    }
}

/// Who read through an [`AdminOrConsole`] route.
pub enum Reader {
    Token(Caller),
    Console(Reviewer),
}

impl Reader {
    /// The actor's name for the audit log, if it may read what only admins read.
    pub fn admin_name(&self) -> Result<&str, ApiError> {
        match self {
            Reader::Token(caller) => Ok(&caller.name),
            Reader::Console(reviewer) => {
                reviewer.require_admin()?;
                Ok(&reviewer.username)
            }
        }
    }
}

/// An admin bearer token when the request carries one, else a console session of any role
/// (the route checks the role where it matters: [`Reader::admin_name`]).
pub struct AdminOrConsole {
    pub ready: Arc<Ready>,
    pub reader: Reader,
}

impl FromRequestParts<AppState> for AdminOrConsole {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let ready = Arc::clone(state.shared_ready()?);
            let caller = check_bearer(&ready, &parts.headers, TokenRole::Admin)?;
            return Ok(AdminOrConsole {
                ready,
                reader: Reader::Token(caller),
            });
        }
        let ConsoleSession { ready, reviewer } =
            ConsoleSession::from_request_parts(parts, state).await?;
        Ok(AdminOrConsole {
            ready,
            reader: Reader::Console(reviewer),
        })
    }
}
