//! Strict input on every entry point: a value the parser does not understand is refused
//! with 422 `invalid_field` naming the field, never read as a default (which fails open),
//! and an `Idempotency-Key` answers only the request it was first used for.

mod common;

use std::path::Path;
use std::process::Command;

use common::server::*;
use serde_json::{json, Value};

const IDS: &str = "artwork_id=art-1&owner_id=owner-1";

fn assert_invalid(status: u16, body: &Value, field: &str, what: &str) {
    assert_eq!(status, 422, "{what}: {body}");
    assert_eq!(body["error"]["kind"], "invalid_field", "{what}: {body}");
    assert_eq!(body["error"]["field"], field, "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

/// Every file under `dir`, however deep.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn query_values_it_does_not_understand_are_422_naming_the_field() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let long = "a".repeat(129);
    let cases: Vec<(String, &str)> = vec![
        (format!("{IDS}&owner_is_minor=TRUE"), "owner_is_minor"),
        (format!("{IDS}&owner_is_minor=True"), "owner_is_minor"),
        (format!("{IDS}&owner_is_minor=yes"), "owner_is_minor"),
        (format!("{IDS}&owner_is_minor=on"), "owner_is_minor"),
        (format!("{IDS}&owner_is_minor=junk"), "owner_is_minor"),
        (format!("{IDS}&owner_is_minor"), "owner_is_minor"),
        (format!("{IDS}&owner_is_minor="), "owner_is_minor"),
        (
            format!("{IDS}&playlist_track_count=-1"),
            "playlist_track_count",
        ),
        (
            format!("{IDS}&playlist_track_count=%2B1"),
            "playlist_track_count",
        ),
        (
            format!("{IDS}&playlist_track_count=1.5"),
            "playlist_track_count",
        ),
        (
            format!("{IDS}&playlist_track_count"),
            "playlist_track_count",
        ),
        (format!("{IDS}&deadline_ms=-5"), "deadline_ms"),
        // Repeats: the last one winning would let `true` be overridden in silence.
        (
            format!("{IDS}&owner_is_minor=true&owner_is_minor=false"),
            "owner_is_minor",
        ),
        (format!("{IDS}&artwork_id=art-2"), "artwork_id"),
        (
            format!("{IDS}&playlist_track_count=0&playlist_track_count=3"),
            "playlist_track_count",
        ),
        // Ids are required and of a safe alphabet.
        ("owner_id=owner-1".into(), "artwork_id"),
        ("artwork_id=art-1".into(), "owner_id"),
        ("".into(), "artwork_id"),
        ("artwork_id=&owner_id=owner-1".into(), "artwork_id"),
        (format!("artwork_id={long}&owner_id=owner-1"), "artwork_id"),
        (format!("artwork_id=art-1&owner_id={long}"), "owner_id"),
        ("artwork_id=a%2Fb&owner_id=owner-1".into(), "artwork_id"),
        ("artwork_id=a+b&owner_id=owner-1".into(), "artwork_id"),
        ("artwork_id=%C3%A9&owner_id=owner-1".into(), "artwork_id"),
        ("artwork_id=art-1&owner_id=o%0Ax".into(), "owner_id"),
        (format!("{IDS}&surface=a%20b"), "surface"),
        (format!("{IDS}&colour=red"), "colour"),
    ];
    for (query, field) in &cases {
        let (status, body) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo("astronaut.png"),
                query,
            )
            .await;
        assert_invalid(status, &body, field, query);
    }
    // Nothing was screened or recorded for any of them.
    let (status, _) = server.get(SERVICE_TOKEN, "/v1/artworks/art-1").await;
    assert_eq!(status, 404);
    assert!(files_under(&server.config.data_dir.join("quarantine"))
        .iter()
        .all(|f| f.to_string_lossy().contains(".tmp")));
    the_accepted_spellings_work(&server).await;
}

/// The spellings the rules accept still screen, with the profile they mean.
async fn the_accepted_spellings_work(server: &Server) {
    let long = "A.b_c:d-9".repeat(15)[..128].to_string();
    for (i, (context, strict)) in [
        ("owner_is_minor=true", true),
        ("owner_is_minor=1", true),
        ("owner_is_minor=false", false),
        ("owner_is_minor=0", false),
        ("playlist_track_count=0", true),
        ("playlist_track_count=12&surface=playlist_cover", false),
        ("", false),
    ]
    .into_iter()
    .enumerate()
    {
        let query = format!("artwork_id=ok-{i}&owner_id={long}&{context}");
        let (status, body) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo("astronaut.png"),
                &query,
            )
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(
            body["reasons"].to_string().contains("strict profile"),
            strict,
            "{query}: {body}"
        );
        let (status, artwork) = server
            .get(SERVICE_TOKEN, &format!("/v1/artworks/ok-{i}"))
            .await;
        assert_eq!(status, 200, "{artwork}");
    }
}

/// A loopback origin serving one image at `/art.png`.
async fn origin(bytes: Vec<u8>) -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/art.png",
        axum::routing::get(move || {
            let bytes = bytes.clone();
            async move { ([("content-type", "image/png")], bytes) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn screen_json(server: &Server, query: &str, body: &Value) -> (u16, Value) {
    let resp = server
        .client
        .post(format!("{}/v1/screen?{query}", server.base))
        .bearer_auth(SERVICE_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_json_form_follows_the_same_rules_and_the_query_is_not_ignored() {
    let addr = origin(photo("color.png")).await;
    let server = start(|c| {
        c.url_fetch = coverguard::fetch::DestinationPolicy::allowing(addr);
    })
    .await;
    server.wait_ready().await;
    let url = format!("http://{addr}/art.png");
    let cases = [
        (
            "",
            json!({"url": url, "artwork_id": "j1", "owner_id": "o", "context": {"owner_is_minor": "yes"}}),
            "owner_is_minor",
        ),
        (
            "",
            json!({"url": url, "artwork_id": "j1", "owner_id": "o", "context": {"owner_is_minor": "true"}}),
            "owner_is_minor",
        ),
        (
            "",
            json!({"url": url, "artwork_id": "j1", "owner_id": "o", "context": {"playlist_track_count": -1}}),
            "playlist_track_count",
        ),
        ("", json!({"url": url, "artwork_id": "j1"}), "owner_id"),
        ("", json!({"url": url, "owner_id": "o"}), "artwork_id"),
        (
            "",
            json!({"url": url, "artwork_id": "j 1", "owner_id": "o"}),
            "artwork_id",
        ),
        ("", json!({"artwork_id": "j1", "owner_id": "o"}), "url"),
        (
            "",
            json!({"url": 3, "artwork_id": "j1", "owner_id": "o"}),
            "url",
        ),
        // In both the query and the body: which one was meant is unknown.
        (
            "artwork_id=j2",
            json!({"url": url, "artwork_id": "j1", "owner_id": "o"}),
            "artwork_id",
        ),
        (
            "owner_is_minor=true",
            json!({"url": url, "artwork_id": "j1", "owner_id": "o", "context": {"owner_is_minor": false}}),
            "owner_is_minor",
        ),
        (
            "",
            json!({"url": url, "artwork_id": "j1", "owner_id": "o", "context": {"colour": "red"}}),
            "colour",
        ),
    ];
    for (query, body, field) in &cases {
        let (status, answer) = screen_json(&server, query, body).await;
        assert_invalid(status, &answer, field, &format!("{query} {body}"));
    }
    let (status, _) = server.get(SERVICE_TOKEN, "/v1/artworks/j1").await;
    assert_eq!(status, 404);

    // A field only in the query counts with a JSON body: here the strict profile.
    let (status, answer) = screen_json(
        &server,
        "owner_is_minor=true",
        &json!({"url": url, "artwork_id": "j3", "owner_id": "o"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["verdict"], "block", "{answer}");
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/j3").await;
    assert_eq!(artwork["status"], "quarantined", "{artwork}");
}

async fn screen_with_key(server: &Server, key: &str, file: &str, query: &str) -> (u16, Value) {
    let resp = server
        .client
        .post(format!("{}/v1/screen?{query}", server.base))
        .bearer_auth(SERVICE_TOKEN)
        .header("content-type", "image/png")
        .header("idempotency-key", key)
        .body(photo(file))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn an_idempotency_key_belongs_to_one_request(backend: Backend) {
    let Some(server) = start_on(backend, |_| {}).await else {
        return;
    };
    server.wait_ready().await;
    let quarantine = server.config.data_dir.join("quarantine");
    let first_query = "artwork_id=k1&owner_id=adult";
    let (status, first) = screen_with_key(&server, "key-1", "color.png", first_query).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["verdict"], "review", "{first}");
    let evidence_before = files_under(&quarantine);

    // A retry of the same request is answered with the same screening.
    let (status, retry) = screen_with_key(&server, "key-1", "color.png", first_query).await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(retry["screening_id"], first["screening_id"]);

    // The same key with the same bytes for another artwork, owner and a minor (the
    // strict profile blocks these bytes), or with other bytes: another request.
    for (file, query) in [
        (
            "color.png",
            "artwork_id=k2&owner_id=kid&owner_is_minor=true",
        ),
        (
            "color.png",
            "artwork_id=k1&owner_id=adult&owner_is_minor=true",
        ),
        (
            "color.png",
            "artwork_id=k1&owner_id=adult&playlist_track_count=0",
        ),
        ("color.png", "artwork_id=k1&owner_id=other"),
        (
            "color.png",
            "artwork_id=k1&owner_id=adult&surface=track_art",
        ),
        ("coffee.png", first_query),
    ] {
        let (status, body) = screen_with_key(&server, "key-1", file, query).await;
        assert_eq!(status, 409, "{file} {query}: {body}");
        assert_eq!(body["error"]["kind"], "idempotency_conflict", "{body}");
        assert!(body.get("verdict").is_none());
    }
    // Nothing of the refused requests was kept: no row, no evidence file.
    let (status, _) = server.get(SERVICE_TOKEN, "/v1/artworks/k2").await;
    assert_eq!(status, 404);
    let (_, k1) = server.get(SERVICE_TOKEN, "/v1/artworks/k1").await;
    assert_eq!(k1["screening_id"], first["screening_id"], "{k1}");
    assert_eq!(files_under(&quarantine), evidence_before);

    // The same bytes and context under a new key are a new screening.
    let (status, fresh) = screen_with_key(
        &server,
        "key-2",
        "color.png",
        "artwork_id=k2&owner_id=kid&owner_is_minor=true",
    )
    .await;
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(fresh["verdict"], "block", "{fresh}");
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_belongs_to_one_request_on_sqlite() {
    an_idempotency_key_belongs_to_one_request(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_belongs_to_one_request_on_postgres() {
    an_idempotency_key_belongs_to_one_request(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conflicting_request_that_would_write_evidence_leaves_none() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let quarantine = server.config.data_dir.join("quarantine");
    // An allow first: nothing in quarantine.
    let (status, first) = screen_with_key(
        &server,
        "key-9",
        "astronaut.png",
        "artwork_id=e1&owner_id=adult",
    )
    .await;
    assert_eq!((status, first["verdict"].as_str()), (200, Some("allow")));
    // These bytes under a minor's profile are blocked and would be quarantined.
    let (status, body) = screen_with_key(
        &server,
        "key-9",
        "color.png",
        "artwork_id=e2&owner_id=kid&owner_is_minor=true",
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(files_under(&quarantine), Vec::<std::path::PathBuf>::new());
    let (status, _) = server.get(SERVICE_TOKEN, "/v1/artworks/e2").await;
    assert_eq!(status, 404);
}

fn coverguard(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coverguard"))
        .args(args)
        .env("COVERGUARD_DATA_DIR", dir.join("data"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_manifest_row_with_a_bad_value_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, line, field) in [
        (
            "upper.csv",
            "artwork_id,path,owner_id,owner_is_minor\na1,a.png,o,true\na2,b.png,o,TRUE\n",
            "line 3",
            "owner_is_minor",
        ),
        (
            "id.csv",
            "artwork_id,path,owner_id\na1,a.png,o\na 2,b.png,o\n",
            "line 3",
            "artwork_id",
        ),
        (
            "no-owner.csv",
            "artwork_id,path,owner_id\na1,a.png,o\na2,b.png,\n",
            "line 3",
            "owner_id",
        ),
        (
            "owner.jsonl",
            "{\"artwork_id\":\"a1\",\"path\":\"a.png\",\"owner_id\":\"o/1\"}\n",
            "line 1",
            "owner_id",
        ),
    ] {
        let manifest = dir.path().join(name);
        std::fs::write(&manifest, text).unwrap();
        let (code, _, stderr) = coverguard(
            &[
                "backfill",
                "enqueue",
                "--nats",
                "nats://127.0.0.1:1",
                "--manifest",
                manifest.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(
            stderr.contains(line) && stderr.contains(field),
            "{name}: {stderr}"
        );
        assert!(stderr.contains("nothing was queued"), "{name}: {stderr}");
    }
}

#[test]
fn scan_takes_the_context_under_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let color = common::skimage_dir().join("color.png");
    let color = color.to_str().unwrap();
    for (bad, flag) in [
        ("--owner-is-minor=TRUE", "--owner-is-minor"),
        ("--owner-is-minor=yes", "--owner-is-minor"),
        ("--playlist-track-count=-1", "--playlist-track-count"),
        ("--surface=a b", "--surface"),
    ] {
        let (code, _, stderr) = coverguard(&["scan", bad, color], dir.path());
        assert_eq!(code, 2, "{bad}: {stderr}");
        assert!(stderr.contains(flag), "{bad}: {stderr}");
    }
    let (code, adult, _) = coverguard(&["scan", "--json", color], dir.path());
    assert_eq!(code, 1, "{adult}");
    let adult: Value = serde_json::from_str(adult.trim()).unwrap();
    assert_eq!(adult["verdict"], "review", "{adult}");
    for strict in [
        ["--owner-is-minor", "true"],
        ["--owner-is-minor", "1"],
        ["--playlist-track-count", "0"],
    ] {
        let (code, out, stderr) =
            coverguard(&["scan", "--json", strict[0], strict[1], color], dir.path());
        assert_eq!(code, 1, "{strict:?}: {stderr}");
        let record: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(record["verdict"], "block", "{strict:?}: {record}");
        assert!(
            record["reasons"].to_string().contains("strict profile"),
            "{record}"
        );
    }
}
