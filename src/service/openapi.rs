//! The OpenAPI document at `/openapi.json`, derived from the handlers' and types'
//! own annotations so that it describes what the code does.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{banks, review};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "coverguard",
        description = "Screens cover artwork before and after it is published. \
            The caller publishes only on HTTP 200 with `verdict: \"allow\"`; every error is \
            JSON with a stable `kind`. Bearer tokens carry a role: `service` screens, \
            `admin` also manages banks and takedowns."
    ),
    paths(
        super::screen,
        super::get_screening,
        super::get_artwork,
        super::takedown,
        review::lift_takedown,
        banks::list_banks,
        banks::create_bank,
        banks::delete_bank,
        banks::list_entries,
        banks::add_entries,
        banks::import_entries,
        banks::remove_entry,
        banks::patch_entry,
        banks::retro_match,
        review::login,
        review::logout,
        review::me,
        review::put_settings,
        review::queue,
        review::claim,
        review::unclaim,
        review::item,
        review::image,
        review::decide,
        review::stats,
        review::audit_log,
        review::audit_export,
        review::put_user,
        review::list_users,
        review::reset_password,
        review::disable_user,
        super::healthz,
        super::readyz,
        super::metrics_text,
        serve_document,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "screening", description = "Synchronous screening and its records"),
        (name = "accounts", description = "Account-wide actions"),
        (name = "banks", description = "Known-bad and allow-list hash banks (admin)"),
        (name = "review", description = "The reviewer console's API: session cookie, \
            `X-CSRF-Token` on changes; users are created with an admin token"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn serve_document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
