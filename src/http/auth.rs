//! Bearer-token extractors: a handler that takes an [`AdminToken`] or a [`ServiceToken`]
//! runs only for a caller whose token has that role (an admin token serves both), and
//! knows who called. The admission layer has already refused unknown tokens before any
//! body was read; this names the caller and checks the route's role.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use super::{check_bearer, AppState, Caller};
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

/// The caller of a request whose bearer token has role `R`.
pub struct Bearer<R> {
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
        let caller = check_bearer(state.ready()?, &parts.headers, R::NEEDED)?;
        Ok(Bearer {
            caller,
            role: PhantomData,
        })
    }
}
