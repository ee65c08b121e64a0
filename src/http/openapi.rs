//! The OpenAPI document at `/openapi.json`, derived from the handlers' and types'
//! own annotations so that it describes what the code does.

use axum::extract::State;
use axum::Json;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, RefOr, Required, Schema};
use utoipa::{Modify, OpenApi};

use super::{banks, review, session, AppState};

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
        super::screening::screen,
        super::screening::get_screening,
        super::screening::get_artwork,
        super::accounts::takedown,
        review::users::lift_takedown,
        super::reports::report,
        super::appeals::appeal,
        super::statements::export,
        super::transparency::counts,
        banks::list_banks,
        banks::create_bank,
        banks::delete_bank,
        banks::list_entries,
        banks::add_entries,
        banks::import_entries,
        banks::remove_entry,
        banks::patch_entry_id,
        banks::patch_entry,
        banks::retro_match,
        review::login::login,
        review::login::logout,
        review::login::me,
        review::login::put_settings,
        review::queue::queue,
        review::queue::claim,
        review::queue::unclaim,
        review::item::item,
        review::item::image,
        review::decisions::decide,
        review::appeals::list,
        review::appeals::appeal,
        review::appeals::decide,
        review::dashboard::stats,
        review::audit_log::audit_log,
        review::audit_log::audit_export,
        review::users::put_user,
        review::users::list_users,
        review::users::reset_password,
        review::users::disable_user,
        super::healthz,
        super::readyz,
        super::metrics_text,
        serve_document,
    ),
    components(schemas(crate::screening::text_only::WordsResponse)),
    modifiers(&BearerAuth, &BinaryBodies),
    tags(
        (name = "screening", description = "Synchronous screening and its records"),
        (name = "accounts", description = "Account-wide actions"),
        (name = "reports", description = "Reports and appeals from the platform's flows"),
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

/// Raw image bytes are a binary string: utoipa would describe a `Vec<u8>` as an array of
/// integers, which no client sends.
struct BinaryBodies;

impl Modify for BinaryBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let binary = || -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
                .into()
        };
        let fix = |content: &mut Content, media_type: &str| {
            if media_type.starts_with("image/") || media_type == "application/octet-stream" {
                content.schema = Some(binary());
            }
        };
        for operation in operations(openapi) {
            if let Some(body) = &mut operation.request_body {
                for (media_type, content) in body.content.iter_mut() {
                    fix(content, media_type);
                }
            }
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    for (media_type, content) in response.content.iter_mut() {
                        fix(content, media_type);
                    }
                }
            }
        }
    }
}

/// Every operation of the document.
fn operations(openapi: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ]
        .into_iter()
        .filter_map(Option::as_mut)
    })
}

/// The console's endpoints (`/v1/review/*` but the login) take the session cookie, named as
/// this server names it; the audit endpoints take an admin token instead too. A change
/// (any method but GET) also needs the session's CSRF token in `X-CSRF-Token`.
fn session_auth(openapi: &mut utoipa::openapi::OpenApi, cookie: &str) {
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        SESSION_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            cookie,
            "the console session, set by POST /v1/review/login",
        ))),
    );
    for (path, item) in openapi.paths.paths.iter_mut() {
        if !path.starts_with("/v1/review/") || path == "/v1/review/login" {
            continue;
        }
        let takes_token = path.starts_with("/v1/review/audit");
        let operations = [
            (false, &mut item.get),
            (true, &mut item.put),
            (true, &mut item.post),
            (true, &mut item.delete),
            (true, &mut item.patch),
        ];
        for (change, operation) in operations {
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            let mut security = vec![SecurityRequirement::new(
                SESSION_SCHEME,
                Vec::<String>::new(),
            )];
            if takes_token {
                security.push(SecurityRequirement::new("bearer", Vec::<String>::new()));
            }
            operation.security = Some(security);
            if change {
                operation.parameters.get_or_insert_with(Vec::new).push(
                    ParameterBuilder::new()
                        .name("X-CSRF-Token")
                        .parameter_in(ParameterIn::Header)
                        .required(Required::True)
                        .description(Some(CSRF_DESCRIPTION))
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .build(),
                );
                let description = operation.description.get_or_insert_with(String::new);
                if !description.is_empty() {
                    description.push_str("\n\n");
                }
                description.push_str(CSRF_DESCRIPTION);
            }
        }
    }
}

const SESSION_SCHEME: &str = "session";
const CSRF_DESCRIPTION: &str = "With the session cookie, a change needs the session's CSRF \
    token (from the login answer or GET /v1/review/me) in the X-CSRF-Token header; \
    without it the answer is 403.";

/// This document, with the session cookie this server sets.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn serve_document(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    session_auth(&mut doc, session::cookie_name(&state.config().review));
    Json(doc)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::store::{AppealFiling, AppealKind, AppealRow, AppealState, ReviewLevel};

    /// The property names a schema documents, through `allOf` and component references.
    fn documented(doc: &Value, schema: &Value) -> Vec<String> {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/schemas/");
            return documented(doc, &doc["components"]["schemas"][name]);
        }
        let mut names: Vec<String> = schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        for part in schema["allOf"].as_array().into_iter().flatten() {
            names.extend(documented(doc, part));
        }
        names.sort();
        names
    }

    #[test]
    fn a_stored_appeal_is_documented_field_by_field_as_it_answers() {
        let doc = serde_json::to_value(<super::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
        let appeal = AppealRow {
            id: "a1".into(),
            filing: AppealFiling {
                kind: AppealKind::AutomatedBlock,
                owner_id: "o1".into(),
                artwork_id: Some("art".into()),
                screening_id: Some("s1".into()),
                review_id: None,
                original_actor: None,
                decided_originally_at: chrono::Utc::now(),
                text: Some("it is my cat".into()),
                level: ReviewLevel::Reviewer,
            },
            state: AppealState::Pending,
            outcome: None,
            reason_code: None,
            note: None,
            decided_by: None,
            decided_at: None,
            created_at: chrono::Utc::now(),
        };
        let answered = serde_json::to_value(&appeal).unwrap();
        let mut fields: Vec<String> = answered.as_object().unwrap().keys().cloned().collect();
        fields.sort();
        assert!(fields.contains(&"owner_id".to_string()), "flat: {answered}");
        assert_eq!(
            documented(&doc, &doc["components"]["schemas"]["AppealRow"]),
            fields
        );
    }
}
