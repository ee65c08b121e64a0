//! Backend-agnostic store tests. Each case is written once against `Arc<dyn Store>` and runs
//! on a fresh SQLite file always, and on Postgres when `COVERGUARD_TEST_POSTGRES_URL` is set,
//! each run in its own schema (dropped afterwards) so parallel runs and reruns never collide.

use std::future::Future;
use std::pin::Pin;

use chrono::Duration;
use serde_json::json;

use super::*;

/// The kind of a store call's error; a call that succeeded fails the test.
fn err_kind<T: std::fmt::Debug>(result: StoreResult<T>) -> &'static str {
    result.unwrap_err().kind()
}

type Case = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

async fn run_on_sqlite(case: Case) {
    let dir = tempfile::tempdir().expect("temp dir");
    // A nested path proves the parent directory is created.
    let path = dir.path().join("data").join("coverguard.db");
    let store = open(path.to_str().expect("utf-8 temp path"))
        .await
        .expect("open sqlite store");
    assert_eq!(store.backend(), "sqlite");
    case(store).await;
}

async fn run_on_postgres(case: Case) {
    use sqlx::Connection as _;
    let Some([base_url]) = crate::testing::service_urls([crate::testing::POSTGRES_URL_VAR]) else {
        return;
    };
    let schema = format!("cg_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(&base_url)
        .await
        .expect("connect to Postgres");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("create schema");

    let separator = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{separator}options=-c%20search_path%3D{schema}");
    // Run the case as its own task so a failing assertion still lets us drop the schema.
    let outcome = tokio::spawn(async move {
        let store = open(&url).await.expect("open postgres store");
        assert_eq!(store.backend(), "postgres");
        case(store).await;
    })
    .await;

    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .expect("drop schema");
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

macro_rules! store_cases {
    ($($case:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run_on_sqlite(|s| Box::pin(super::$case(s))).await;
                }
            )+
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run_on_postgres(|s| Box::pin(super::$case(s))).await;
                }
            )+
        }
    };
}

store_cases!(
    record_and_read_back,
    failed_record_leaves_nothing,
    record_retry_and_report_idempotency,
    verdict_cache_lookup,
    takedown_cascade,
    bank_changes_bump_version,
    entry_ids_disable_every_line_of_an_entry,
    outbox_due_delivered_failed,
    outbox_lease_goes_to_one_taker,
    in_flight_bytes_are_claimed_by_one_holder_at_a_time,
    token_lookup,
    quarantine_release_and_retention,
    review_queue_claim_and_decide,
    console_users_and_sessions,
    login_counts_change_one_update_at_a_time,
    audit_log_and_ping,
    concurrent_writers,
    backfill_checkpoints,
    artwork_signals_page_through_latest_screenings,
    owner_screenings_are_read_by_window_oldest_first,
    words_alone_are_stored_without_hashes_and_an_image_needs_all,
    public_art_held_later_is_announced_for_unpublishing,
    user_reports_are_counted_once_per_item_by_their_strongest,
);

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn screening(sha256: &str, artwork_id: Option<&str>, owner_id: Option<&str>) -> ScreeningWrite {
    ScreeningWrite {
        id: None,
        facts: ScreeningFacts {
            artwork_id: artwork_id.map(str::to_string),
            owner_id: owner_id.map(str::to_string),
            sha256: sha256.to_string(),
            md5: "0123456789abcdef0123456789abcdef".to_string(),
            pdq: Some("f".repeat(64)),
            pdq_quality: Some(100),
            verdict: Verdict::Allow,
            model: "nudenet-320n".to_string(),
            policy_version: "policy-1".to_string(),
            banks_version: 1,
            analysis: "views-1".to_string(),
            view_pdq: Vec::new(),
            record: json!({ "verdict": "allow", "scores": { "explicit": 0.01 } }),
            context: json!({ "surface": "playlist_cover" }),
        },
        artwork_status: ArtworkStatus::Published,
        quarantine: None,
        review: None,
        reports: Vec::new(),
        created_at: None,
    }
}

fn blocked(sha256: &str, artwork_id: &str, owner_id: &str, report_key: &str) -> ScreeningWrite {
    let base = screening(sha256, Some(artwork_id), Some(owner_id));
    ScreeningWrite {
        facts: ScreeningFacts {
            verdict: Verdict::Block,
            record: json!({ "verdict": "block" }),
            ..base.facts
        },
        artwork_status: ArtworkStatus::Quarantined,
        quarantine: Some(QuarantineWrite {
            object_key: format!("quarantine/{sha256}"),
            retention_until: now_utc() + Duration::days(365),
        }),
        review: Some(ReviewWrite {
            priority: 10,
            reason: Some("bank hit".into()),
            verdict: Verdict::Block,
            top_label: Some("FEMALE_BREAST_EXPOSED".into()),
            top_score: Some(0.91),
            labels: vec!["FACE_FEMALE".into(), "FEMALE_BREAST_EXPOSED".into()],
            banks: vec!["known-bad".into()],
        }),
        reports: vec![ReportWrite {
            idempotency_key: report_key.to_string(),
            kind: "hit".to_string(),
            payload: json!({ "sha256": sha256, "artwork_id": artwork_id }),
        }],
        ..base
    }
}

fn bank(name: &str) -> BankSpec {
    BankSpec {
        name: name.to_string(),
        signal_types: vec!["pdq".into(), "md5".into()],
        pdq_threshold: 31,
        action: BankAction::Block,
        allow_list: false,
        severity: 3,
        category: None,
    }
}

fn entry(signal: &str, hash: &str) -> EntryWrite {
    EntryWrite {
        signal: signal.into(),
        hash: hash.into(),
        external_id: None,
    }
}

async fn record_and_read_back(store: Arc<dyn Store>) {
    let write = screening(SHA_A, Some("art-1"), Some("owner-1"));
    let recorded = store.record_screening(&write).await.unwrap();
    assert!(recorded.created);
    assert_eq!(recorded.artwork_status, Some(ArtworkStatus::Published));
    assert!(!recorded.quarantined);
    assert!(recorded.report_ids.is_empty());

    let row = store
        .get_screening(&recorded.screening_id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(row.facts.sha256, SHA_A);
    assert_eq!(row.facts.artwork_id.as_deref(), Some("art-1"));
    assert_eq!(row.facts.pdq_quality, Some(100));
    assert_eq!(row.facts.record, write.facts.record);
    assert_eq!(row.facts.context, write.facts.context);
    assert_eq!(store.get_screening("no-such-id").await.unwrap(), None);

    let artwork = store
        .get_artwork("art-1")
        .await
        .unwrap()
        .expect("artwork row");
    assert_eq!(
        artwork.latest_screening_id.as_deref(),
        Some(recorded.screening_id.as_str())
    );
    assert_eq!(artwork.owner_id.as_deref(), Some("owner-1"));

    // A newer screening of the same artwork becomes the latest; upper-case hashes normalise.
    let mut second = blocked(&SHA_B.to_uppercase(), "art-1", "owner-1", "key-read-back");
    second.created_at = Some(row.created_at + Duration::seconds(1));
    let second_id = store.record_screening(&second).await.unwrap().screening_id;
    let latest = store
        .latest_for_artwork("art-1")
        .await
        .unwrap()
        .expect("latest");
    assert_eq!(latest.id, second_id);
    assert_eq!(latest.facts.sha256, SHA_B);
    assert_eq!(
        store.get_artwork("art-1").await.unwrap().unwrap().status,
        ArtworkStatus::Quarantined
    );

    // A backfilled older screening does not overwrite the artwork's newer state.
    let mut old = screening(SHA_A, Some("art-1"), Some("owner-1"));
    old.created_at = Some(row.created_at - Duration::days(30));
    store.record_screening(&old).await.unwrap();
    let artwork = store.get_artwork("art-1").await.unwrap().unwrap();
    assert_eq!(
        artwork.latest_screening_id.as_deref(),
        Some(second_id.as_str())
    );
    assert_eq!(artwork.status, ArtworkStatus::Quarantined);
    assert_eq!(store.latest_for_artwork("art-none").await.unwrap(), None);

    // Timestamps survive the round trip exactly.
    let mut timed = screening(SHA_A, None, None);
    let at = now_utc();
    timed.created_at = Some(at);
    let id = store.record_screening(&timed).await.unwrap().screening_id;
    assert_eq!(
        store.get_screening(&id).await.unwrap().unwrap().created_at,
        at
    );
}

async fn failed_record_leaves_nothing(store: Arc<dyn Store>) {
    // The quarantine item fails its schema check after the screening, artwork and nothing else
    // were written: the whole transaction must roll back.
    let mut write = blocked(SHA_A, "art-atomic", "owner-atomic", "key-atomic");
    write.id = Some(new_id());
    write.quarantine.as_mut().unwrap().object_key = String::new();
    let err = store.record_screening(&write).await.unwrap_err();
    assert_eq!(err.kind(), "invalid", "{err}");

    // Same with the last step, the report row.
    let mut late = blocked(SHA_A, "art-atomic", "owner-atomic", "");
    late.id = Some(new_id());
    let err = store.record_screening(&late).await.unwrap_err();
    assert_eq!(err.kind(), "invalid", "{err}");

    for id in [write.id.as_deref().unwrap(), late.id.as_deref().unwrap()] {
        assert_eq!(store.get_screening(id).await.unwrap(), None);
    }
    assert_eq!(store.get_artwork("art-atomic").await.unwrap(), None);
    assert!(store.quarantine_items(SHA_A).await.unwrap().is_empty());
    assert!(store
        .review_queue(&queue_filter(QueueState::Open))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .due_reports(now_utc() + Duration::days(1), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .cached_verdict(SHA_A, &versions("nudenet-320n", "views-1", "policy-1", 1))
            .await
            .unwrap(),
        None
    );

    // The store still works afterwards, and the fixed write goes through.
    write.quarantine.as_mut().unwrap().object_key = "quarantine/a".into();
    let recorded = store.record_screening(&write).await.unwrap();
    assert!(recorded.created && recorded.quarantined);
    assert!(!recorded.report_ids.is_empty() && recorded.review_id.is_some());

    // Refused inputs are reported as invalid before touching the database.
    let mut empty_hash = screening("  ", None, None);
    empty_hash.facts.md5 = "x".into();
    assert_eq!(
        err_kind(store.record_screening(&empty_hash).await),
        "invalid"
    );
}

async fn record_retry_and_report_idempotency(store: Arc<dyn Store>) {
    let mut write = blocked(SHA_A, "art-retry", "owner-retry", "hit:art-retry:aaaa");
    write.id = Some(new_id());
    let first = store.record_screening(&write).await.unwrap();
    assert!(first.created);
    let report_id = first.report_ids.first().cloned().expect("report made");

    // Crash-recovery retry of the same screening: nothing new, same answer.
    let retry = store.record_screening(&write).await.unwrap();
    assert!(!retry.created);
    assert_eq!(retry.screening_id, first.screening_id);
    assert_eq!(retry.report_ids, vec![report_id.clone()]);
    assert_eq!(retry.review_id, first.review_id);
    assert!(retry.quarantined);
    assert_eq!(retry.artwork_status, Some(ArtworkStatus::Quarantined));

    // A new screening (new id) of the same hit with the same idempotency key: no second report,
    // and the quarantine item for (bytes, artwork) stays single.
    let again = blocked(SHA_A, "art-retry", "owner-retry", "hit:art-retry:aaaa");
    let second = store.record_screening(&again).await.unwrap();
    assert!(second.created);
    assert_ne!(second.screening_id, first.screening_id);
    assert_eq!(second.report_ids, vec![report_id.clone()]);
    let due = store
        .due_reports(now_utc() + Duration::seconds(1), 100)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, report_id);
    assert_eq!(due[0].screening_id.as_ref(), Some(&first.screening_id));
    assert_eq!(store.quarantine_items(SHA_A).await.unwrap().len(), 1);

    // Reusing a screening id for other bytes is refused, not silently merged.
    let mut clash = screening(SHA_B, None, None);
    clash.id = write.id.clone();
    assert_eq!(err_kind(store.record_screening(&clash).await), "conflict");
}

fn versions<'a>(
    model: &'a str,
    analysis: &'a str,
    policy: &'a str,
    banks: i64,
) -> VerdictVersions<'a> {
    VerdictVersions {
        model,
        analysis,
        policy,
        banks,
    }
}

async fn verdict_cache_lookup(store: Arc<dyn Store>) {
    assert_eq!(
        store
            .cached_verdict(SHA_A, &versions("nudenet-320n", "views-1", "policy-1", 1))
            .await
            .unwrap(),
        None
    );
    let base = now_utc();
    let mut older = screening(SHA_A, Some("art-c1"), None);
    older.created_at = Some(base - Duration::seconds(10));
    store.record_screening(&older).await.unwrap();
    let mut newer = screening(SHA_A, Some("art-c2"), None);
    newer.created_at = Some(base);
    newer.facts.verdict = Verdict::Review;
    let newer_id = store.record_screening(&newer).await.unwrap().screening_id;

    let hit = store
        .cached_verdict(
            &SHA_A.to_uppercase(),
            &versions("nudenet-320n", "views-1", "policy-1", 1),
        )
        .await
        .unwrap()
        .expect("cache hit");
    assert_eq!(hit.id, newer_id);
    assert_eq!(hit.facts.verdict, Verdict::Review);

    // Any change of model, analysis, policy or bank version misses; a row recorded before
    // views existed (analysis '') is never reused.
    for (model, analysis, policy, banks) in [
        ("other-model", "views-1", "policy-1", 1),
        ("nudenet-320n", "views-1", "policy-2", 1),
        ("nudenet-320n", "views-1", "policy-1", 2),
        ("nudenet-320n", "views-2", "policy-1", 1),
        ("nudenet-320n", "", "policy-1", 1),
    ] {
        assert_eq!(
            store
                .cached_verdict(SHA_A, &versions(model, analysis, policy, banks))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .cached_verdict(SHA_B, &versions("nudenet-320n", "views-1", "policy-1", 1))
            .await
            .unwrap(),
        None
    );
}

async fn takedown_cascade(store: Arc<dyn Store>) {
    store
        .record_screening(&screening(SHA_A, Some("t-art-1"), Some("t-owner")))
        .await
        .unwrap();
    let mut held = screening(SHA_B, Some("t-art-2"), Some("t-owner"));
    held.artwork_status = ArtworkStatus::Held;
    store.record_screening(&held).await.unwrap();
    store
        .record_screening(&blocked(SHA_A, "t-art-3", "t-owner", "t-key"))
        .await
        .unwrap();
    store
        .record_screening(&screening(SHA_A, Some("other-art"), Some("other-owner")))
        .await
        .unwrap();
    assert!(!store.is_taken_down("t-owner").await.unwrap());

    let changed = store
        .takedown_account("t-owner", "admin:alice")
        .await
        .unwrap();
    let ids: Vec<&str> = changed.iter().map(|a| a.artwork_id.as_str()).collect();
    assert_eq!(
        ids,
        ["t-art-1", "t-art-2"],
        "already quarantined t-art-3 is not a change"
    );
    assert!(changed
        .iter()
        .all(|a| a.status == ArtworkStatus::Quarantined));
    for id in ["t-art-1", "t-art-2", "t-art-3"] {
        assert_eq!(
            store.get_artwork(id).await.unwrap().unwrap().status,
            ArtworkStatus::Quarantined
        );
    }
    assert_eq!(
        store
            .get_artwork("other-art")
            .await
            .unwrap()
            .unwrap()
            .status,
        ArtworkStatus::Published
    );
    assert!(store.is_taken_down("t-owner").await.unwrap());
    assert!(!store.is_taken_down("other-owner").await.unwrap());

    // A retry changes nothing more.
    assert!(store
        .takedown_account("t-owner", "admin:alice")
        .await
        .unwrap()
        .is_empty());

    // Later uploads of the owner are never published, and a quarantined artwork stays so.
    let later = store
        .record_screening(&screening(SHA_B, Some("t-art-4"), Some("t-owner")))
        .await
        .unwrap();
    assert!(later.owner_taken_down);
    assert_eq!(later.artwork_status, Some(ArtworkStatus::Held));
    let rescreen = store
        .record_screening(&screening(SHA_A, Some("t-art-1"), Some("t-owner")))
        .await
        .unwrap();
    assert_eq!(rescreen.artwork_status, Some(ArtworkStatus::Quarantined));

    // Moderators cannot publish a taken-down owner's artwork, but can hold it.
    let err = store
        .set_artwork_status("t-art-1", ArtworkStatus::Published, "admin:alice")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "conflict");
    let held = store
        .set_artwork_status("t-art-1", ArtworkStatus::Held, "admin:alice")
        .await
        .unwrap();
    assert_eq!(held.status, ArtworkStatus::Held);
    let published = store
        .set_artwork_status("other-art", ArtworkStatus::Held, "admin:alice")
        .await
        .unwrap();
    assert_eq!(published.status, ArtworkStatus::Held);
    assert_eq!(
        err_kind(
            store
                .set_artwork_status("missing", ArtworkStatus::Held, "admin:alice")
                .await
        ),
        "not_found"
    );

    // A taken-down owner with no stored artworks is still recorded.
    assert!(store
        .takedown_account("t-owner-empty", "admin:alice")
        .await
        .unwrap()
        .is_empty());
    assert!(store.is_taken_down("t-owner-empty").await.unwrap());

    let audit = store.recent_audit(10).await.unwrap();
    let takedowns: Vec<&AuditRow> = audit
        .iter()
        .filter(|a| a.action == "account.takedown" && a.subject == "t-owner")
        .collect();
    assert_eq!(takedowns.len(), 2);
    assert!(takedowns
        .iter()
        .any(|a| a.detail["quarantined_artworks"] == json!(["t-art-1", "t-art-2"])));
    assert!(takedowns.iter().all(|a| a.actor == "admin:alice"));
}

/// An image-built entry is several lines under one id: disabling the id disables them all
/// (and nothing of another id or bank) in one logged version, and enabling brings them back.
async fn entry_ids_disable_every_line_of_an_entry(store: Arc<dyn Store>) {
    let with_id = |signal: &str, hash: &str, id: &str| EntryWrite {
        signal: signal.into(),
        hash: hash.into(),
        external_id: Some(id.into()),
    };
    for name in ["known", "other"] {
        store.create_bank(&bank(name)).await.unwrap();
    }
    let (pdq_a, pdq_b) = ("a".repeat(64), "b".repeat(64));
    store
        .add_entries(
            "known",
            &[
                with_id("pdq", &pdq_a, "case-1"),
                with_id("md5", &"1".repeat(32), "case-1"),
                with_id("pdq", &pdq_b, "case-2"),
            ],
        )
        .await
        .unwrap();
    store
        .add_entries("other", &[with_id("pdq", &pdq_a, "case-1")])
        .await
        .unwrap();
    let before = store.banks_version().await.unwrap();

    let disabled = store
        .set_entry_id_disabled("known", "case-1", true)
        .await
        .unwrap();
    assert_eq!(
        disabled,
        BankChange {
            changed: 2,
            banks_version: before + 1
        }
    );
    let enabled_ids = |entries: Vec<EntryRow>| {
        let mut ids: Vec<(String, String)> = entries
            .into_iter()
            .map(|e| (e.bank, e.external_id.unwrap_or_default()))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        enabled_ids(store.list_entries().await.unwrap()),
        vec![
            ("known".to_string(), "case-2".to_string()),
            ("other".to_string(), "case-1".to_string()),
        ]
    );
    let counts = store.bank_counts().await.unwrap();
    assert_eq!(
        counts["known"],
        BankCounts {
            entries: 3,
            disabled: 2
        }
    );
    // One logged version naming both lines, so indexes patch instead of rebuilding.
    let log = store.bank_changes_since(before).await.unwrap();
    let mut logged: Vec<(String, Option<String>)> = log
        .changes
        .expect("a logged change")
        .into_iter()
        .map(|c| (c.signal, c.matched_as))
        .collect();
    logged.sort();
    assert_eq!(
        logged,
        vec![("md5".to_string(), None), ("pdq".to_string(), None)]
    );

    // Again: nothing changes, no version. An unknown id is not found.
    let again = store
        .set_entry_id_disabled("known", "case-1", true)
        .await
        .unwrap();
    assert_eq!(again.changed, 0);
    assert_eq!(again.banks_version, before + 1);
    for (bank_name, id) in [("known", "case-9"), ("nope", "case-1")] {
        let err = store
            .set_entry_id_disabled(bank_name, id, true)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "not_found", "{bank_name}/{id}");
    }
    assert_eq!(
        err_kind(store.set_entry_id_disabled("known", "", true).await),
        "invalid"
    );

    let enabled = store
        .set_entry_id_disabled("known", "case-1", false)
        .await
        .unwrap();
    assert_eq!(enabled.changed, 2);
    assert_eq!(store.list_entries().await.unwrap().len(), 4);
    let counts = store.bank_counts().await.unwrap();
    assert_eq!(
        counts["known"],
        BankCounts {
            entries: 3,
            disabled: 0
        }
    );
    let log = store.bank_changes_since(before + 1).await.unwrap();
    assert!(log
        .changes
        .expect("a logged change")
        .iter()
        .all(|c| c.matched_as.as_deref() == Some("case-1")));
}

async fn bank_changes_bump_version(store: Arc<dyn Store>) {
    let v0 = store.banks_version().await.unwrap();

    let created = store.create_bank(&bank("csam")).await.unwrap();
    assert_eq!(created.changed, 1);
    assert_eq!(created.banks_version, v0 + 1);
    // Same spec again: idempotent, no bump. Other spec: conflict.
    assert_eq!(
        store.create_bank(&bank("csam")).await.unwrap(),
        BankChange {
            changed: 0,
            banks_version: v0 + 1
        }
    );
    let mut other = bank("csam");
    other.pdq_threshold = 10;
    assert_eq!(err_kind(store.create_bank(&other).await), "conflict");
    let mut bad = bank("bad");
    bad.signal_types.clear();
    assert_eq!(store.create_bank(&bad).await.unwrap_err().kind(), "invalid");
    let mut too_wide = bank("too-wide");
    too_wide.pdq_threshold = 64;
    assert_eq!(err_kind(store.create_bank(&too_wide).await), "invalid");
    let mut half_allow = bank("half-allow");
    half_allow.allow_list = true;
    assert_eq!(err_kind(store.create_bank(&half_allow).await), "invalid");
    half_allow.allow_list = false;
    half_allow.action = BankAction::Allow;
    assert_eq!(err_kind(store.create_bank(&half_allow).await), "invalid");
    let mut bad_category = bank("bad-category");
    bad_category.category = Some("CSAM; DROP".into());
    assert_eq!(err_kind(store.create_bank(&bad_category).await), "invalid");
    let mut allow = bank("allow-known");
    allow.allow_list = true;
    allow.action = BankAction::Allow;
    // The category round-trips (checked by the listing below).
    allow.category = Some("known-good_1".into());
    store.create_bank(&allow).await.unwrap();
    let banks = store.list_banks().await.unwrap();
    assert_eq!(
        banks.iter().map(|b| b.spec.clone()).collect::<Vec<_>>(),
        vec![allow.clone(), bank("csam")]
    );
    let v1 = store.banks_version().await.unwrap();
    assert_eq!(v1, v0 + 2);

    let pdq = "A".repeat(64);
    let added = store
        .add_entries(
            "csam",
            &[
                entry("pdq", &pdq),
                entry("md5", "00ff"),
                entry("pdq", &pdq.to_lowercase()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        added,
        BankChange {
            changed: 2,
            banks_version: v1 + 1
        }
    );
    // Re-import: nothing new, no bump.
    let again = store
        .add_entries("csam", &[entry("pdq", &pdq), entry("md5", "00FF")])
        .await
        .unwrap();
    assert_eq!(
        again,
        BankChange {
            changed: 0,
            banks_version: v1 + 1
        }
    );
    assert_eq!(
        err_kind(store.add_entries("nope", &[entry("md5", "00")]).await),
        "not_found"
    );
    assert_eq!(
        err_kind(store.add_entries("csam", &[entry("sha1", "00")]).await),
        "invalid"
    );

    // Bulk import larger than one INSERT chunk.
    let bulk: Vec<EntryWrite> = (0..1203)
        .map(|i| entry("md5", &format!("{i:04x}")))
        .collect();
    let imported = store.add_entries("csam", &bulk).await.unwrap();
    assert_eq!(imported.changed, 1202, "00ff hex of 255 is already stored");
    assert_eq!(imported.banks_version, v1 + 2);
    assert_eq!(store.list_entries().await.unwrap().len(), 1204);

    let disabled = store
        .set_entry_disabled("csam", "pdq", &pdq, true)
        .await
        .unwrap();
    assert_eq!(
        disabled,
        BankChange {
            changed: 1,
            banks_version: v1 + 3
        }
    );
    assert_eq!(
        store
            .set_entry_disabled("csam", "pdq", &pdq, true)
            .await
            .unwrap()
            .changed,
        0
    );
    assert_eq!(
        err_kind(store.set_entry_disabled("csam", "pdq", "beef", true).await),
        "not_found"
    );
    let enabled = store.list_entries().await.unwrap();
    assert_eq!(enabled.len(), 1203);
    assert!(enabled
        .iter()
        .all(|e| !e.disabled && e.hash != pdq.to_lowercase()));
    let all = store.list_bank_entries("csam").await.unwrap();
    assert_eq!(all.len(), 1204);
    assert!(all.iter().any(|e| e.disabled));

    let snapshot = store.bank_snapshot().await.unwrap();
    assert_eq!(snapshot.banks_version, v1 + 3);
    assert_eq!(snapshot.banks.len(), 2);
    assert_eq!(snapshot.entries, enabled);

    assert_eq!(
        store.remove_entry("csam", "md5", "00FF").await.unwrap(),
        BankChange {
            changed: 1,
            banks_version: v1 + 4
        }
    );
    assert_eq!(
        store
            .remove_entry("csam", "md5", "00ff")
            .await
            .unwrap()
            .changed,
        0
    );
    assert_eq!(store.banks_version().await.unwrap(), v1 + 4);

    let deleted = store.delete_bank("csam").await.unwrap();
    assert_eq!(
        deleted,
        BankChange {
            changed: 1,
            banks_version: v1 + 5
        }
    );
    assert!(store.list_entries().await.unwrap().is_empty());
    assert_eq!(store.delete_bank("csam").await.unwrap().changed, 0);
}

async fn in_flight_bytes_are_claimed_by_one_holder_at_a_time(store: Arc<dyn Store>) {
    let now = now_utc();
    let until = now + Duration::seconds(60);
    // Eight replicas claim the same bytes at once: one gets them.
    let claims = (0..8).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let holder = format!("replica-{i}");
            let claimed = store
                .claim_in_flight(SHA_A, &holder, now, until)
                .await
                .unwrap();
            claimed.then_some(holder)
        })
    });
    let holders: Vec<String> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .filter_map(|claimed| claimed.unwrap())
        .collect();
    assert_eq!(holders.len(), 1, "{holders:?}");
    let holder = &holders[0];
    // Other bytes are not held by it.
    assert!(store
        .claim_in_flight(SHA_B, "other", now, until)
        .await
        .unwrap());
    // Nobody else ends the claim, and nobody else gets it while it lasts.
    store.release_in_flight(SHA_A, "other", now).await.unwrap();
    assert!(!store
        .claim_in_flight(SHA_A, "other", now, until)
        .await
        .unwrap());
    // Released, the bytes are free at once.
    store.release_in_flight(SHA_A, holder, now).await.unwrap();
    assert!(store
        .claim_in_flight(SHA_A, "other", now, until)
        .await
        .unwrap());
    // A claim whose holder died ends with its lease.
    assert!(!store
        .claim_in_flight(SHA_A, "late", until - Duration::seconds(1), until)
        .await
        .unwrap());
    assert!(store
        .claim_in_flight(SHA_A, "late", until, until + Duration::seconds(60))
        .await
        .unwrap());
    // The old holder's late release leaves the new claim alone, and removes the claims run
    // out meanwhile, whose holders died: SHA_B's was never released.
    store
        .release_in_flight(SHA_A, "other", until)
        .await
        .unwrap();
    assert!(!store
        .claim_in_flight(SHA_A, "other", until, until)
        .await
        .unwrap());
    let before_it_ran_out = until - Duration::seconds(1);
    assert!(store
        .claim_in_flight(SHA_B, "new", before_it_ran_out, until)
        .await
        .unwrap());
}

async fn outbox_lease_goes_to_one_taker(store: Arc<dyn Store>) {
    let recorded = store
        .record_screening(&blocked(SHA_A, "l-art-1", "l-owner", "l-key-1"))
        .await
        .unwrap();
    let id = recorded.report_ids[0].clone();
    let now = now_utc() + Duration::seconds(1);
    let until = now + Duration::seconds(60);

    // Eight replicas try to take the same due report at once: one gets it.
    let takers = (0..8).map(|_| {
        let (store, id) = (Arc::clone(&store), id.clone());
        tokio::spawn(async move { store.lease_report(&id, now, until).await.unwrap() })
    });
    let taken = futures_util::future::join_all(takers)
        .await
        .into_iter()
        .filter(|t| *t.as_ref().unwrap())
        .count();
    assert_eq!(taken, 1);

    // Held: not due, and not taken again, until the lease ends.
    assert!(store.due_reports(now, 10).await.unwrap().is_empty());
    assert!(!store.lease_report(&id, now, until).await.unwrap());
    let held = store.get_report(&id).await.unwrap().unwrap();
    assert_eq!(
        (held.state, held.next_attempt_at, held.attempts),
        (ReportState::Pending, until, 0)
    );
    // A holder that died lets it fall due at the lease's end, to be taken again.
    assert_eq!(store.due_reports(until, 10).await.unwrap().len(), 1);
    assert!(store
        .lease_report(&id, until, until + Duration::seconds(60))
        .await
        .unwrap());

    // Delivered or unknown reports are never taken.
    store.mark_report_delivered(&id).await.unwrap();
    let later = until + Duration::days(1);
    assert!(!store.lease_report(&id, later, later).await.unwrap());
    assert!(!store.lease_report("missing", later, later).await.unwrap());
}

async fn outbox_due_delivered_failed(store: Arc<dyn Store>) {
    let first = store
        .record_screening(&blocked(SHA_A, "o-art-1", "o-owner", "o-key-1"))
        .await
        .unwrap();
    let mut cyber = blocked(SHA_B, "o-art-2", "o-owner", "o-key-2");
    cyber.reports[0].kind = "cybertipline".into();
    let second = store.record_screening(&cyber).await.unwrap();
    let (r1, r2) = (first.report_ids[0].clone(), second.report_ids[0].clone());

    let now = now_utc() + Duration::seconds(1);
    let due = store.due_reports(now, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [r1.as_str(), r2.as_str()]
    );
    assert_eq!(due[1].kind, "cybertipline");
    assert_eq!(due[0].payload["artwork_id"], "o-art-1");
    assert_eq!(due[0].state, ReportState::Pending);
    assert_eq!(store.due_reports(now, 1).await.unwrap().len(), 1);

    // r1 fails once: not due until its backoff passes.
    let retry_at = now + Duration::seconds(30);
    store
        .mark_report_failed_attempt(&r1, "HTTP 502 from webhook", Some(retry_at))
        .await
        .unwrap();
    let due = store.due_reports(now, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [r2.as_str()]
    );
    let later = store.due_reports(retry_at, 10).await.unwrap();
    assert_eq!(
        later.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [r2.as_str(), r1.as_str()]
    );
    let failed_once = store.get_report(&r1).await.unwrap().unwrap();
    assert_eq!(failed_once.attempts, 1);
    assert_eq!(
        failed_once.last_error.as_deref(),
        Some("HTTP 502 from webhook")
    );
    assert_eq!(failed_once.next_attempt_at, retry_at);
    assert_eq!(failed_once.idempotency_key, "o-key-1");

    // Delivered: never due again, idempotent, and a late failure report does not undo it.
    store.mark_report_delivered(&r1).await.unwrap();
    store.mark_report_delivered(&r1).await.unwrap();
    store
        .mark_report_failed_attempt(&r1, "late timeout", Some(retry_at))
        .await
        .unwrap();
    let delivered = store.get_report(&r1).await.unwrap().unwrap();
    assert_eq!(delivered.state, ReportState::Delivered);
    assert!(delivered.delivered_at.is_some());
    assert_eq!(delivered.attempts, 1);
    assert_eq!(delivered.last_error, None);
    assert!(store
        .due_reports(retry_at, 10)
        .await
        .unwrap()
        .iter()
        .all(|r| r.id != r1));

    // Giving up on r2 marks it failed.
    store
        .mark_report_failed_attempt(&r2, &"x".repeat(5000), None)
        .await
        .unwrap();
    let gave_up = store.get_report(&r2).await.unwrap().unwrap();
    assert_eq!(gave_up.state, ReportState::Failed);
    assert_eq!(gave_up.last_error.map(|e| e.len()), Some(2000));
    assert!(store
        .due_reports(retry_at + Duration::days(1), 10)
        .await
        .unwrap()
        .is_empty());

    assert_eq!(
        err_kind(store.mark_report_delivered("missing").await),
        "not_found"
    );
    assert_eq!(
        err_kind(store.mark_report_failed_attempt("missing", "e", None).await),
        "not_found"
    );
    assert_eq!(store.get_report("missing").await.unwrap(), None);
}

async fn token_lookup(store: Arc<dyn Store>) {
    let hash = "C0FFEE".repeat(10) + "abcd";
    let role_of = |hash: String| {
        let store = Arc::clone(&store);
        async move { store.token_role(&hash).await.unwrap() }
    };
    let put = |role: TokenRole| {
        let (store, hash) = (Arc::clone(&store), hash.clone());
        async move { store.put_token(&hash, "uploader", role).await.unwrap() }
    };
    assert_eq!(role_of(hash.clone()).await, None);
    put(TokenRole::Service).await;
    assert_eq!(role_of(hash.clone()).await, Some(TokenRole::Service));
    assert_eq!(role_of(hash.to_lowercase()).await, Some(TokenRole::Service));
    put(TokenRole::Admin).await;
    assert_eq!(role_of(hash.clone()).await, Some(TokenRole::Admin));

    assert!(store.revoke_token(&hash).await.unwrap());
    assert!(!store.revoke_token(&hash).await.unwrap());
    assert_eq!(role_of(hash.clone()).await, None);
    // Re-putting a revoked token (e.g. config reload) never brings it back.
    put(TokenRole::Admin).await;
    assert_eq!(role_of(hash.clone()).await, None);
    assert_eq!(
        err_kind(store.put_token("", "x", TokenRole::Service).await),
        "invalid"
    );
}

async fn quarantine_release_and_retention(store: Arc<dyn Store>) {
    let mut write = blocked(SHA_A, "q-art", "q-owner", "q-key");
    write.quarantine.as_mut().unwrap().retention_until = now_utc() - Duration::days(1);
    store.record_screening(&write).await.unwrap();
    let items = store.quarantine_items(SHA_A).await.unwrap();
    assert_eq!(items.len(), 1);
    let item = items[0].clone();
    assert_eq!(item.object_key, format!("quarantine/{SHA_A}"));
    assert_eq!(item.artwork_id.as_deref(), Some("q-art"));

    let expired = store.expired_quarantine(now_utc(), 10).await.unwrap();
    assert_eq!(
        expired.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
        [item.id.as_str()]
    );

    let released = store
        .release_quarantine(&item.id, "admin:bob")
        .await
        .unwrap();
    assert!(released.released_at.is_some());
    assert_eq!(
        store
            .release_quarantine(&item.id, "admin:bob")
            .await
            .unwrap(),
        released
    );
    assert_eq!(
        store.get_artwork("q-art").await.unwrap().unwrap().status,
        ArtworkStatus::Released
    );
    assert!(store
        .expired_quarantine(now_utc(), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        err_kind(store.release_quarantine("missing", "admin:bob").await),
        "not_found"
    );

    // The same bytes blocked again for the same artwork re-quarantine the one item.
    let again = store
        .record_screening(&blocked(SHA_A, "q-art", "q-owner", "q-key-2"))
        .await
        .unwrap();
    assert!(again.quarantined);
    let items = store.quarantine_items(SHA_A).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].released_at, None);
    assert!(items[0].retention_until > now_utc());

    // Without an artwork id the item is still one per bytes.
    let mut loose = blocked(SHA_B, "unused", "q-owner", "q-key-3");
    loose.facts.artwork_id = None;
    store.record_screening(&loose).await.unwrap();
    loose.reports[0].idempotency_key = "q-key-4".into();
    store.record_screening(&loose).await.unwrap();
    assert_eq!(store.quarantine_items(SHA_B).await.unwrap().len(), 1);
}

fn queue_filter(state: QueueState) -> ReviewFilter {
    ReviewFilter {
        state,
        include_admin_level: true,
        limit: 100,
        ..ReviewFilter::default()
    }
}

fn ids(rows: &[ReviewRow]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

fn decision(review_id: &str, reviewer: &str, decision: ReviewDecision) -> DecisionWrite {
    DecisionWrite {
        review_id: review_id.to_string(),
        reviewer: reviewer.to_string(),
        reviewer_role: ConsoleRole::Reviewer,
        decision,
        reason_code: "adult_explicit".into(),
        note: Some("seen".into()),
        bank_entries: None,
        reports: Vec::new(),
        claim_lease: std::time::Duration::from_secs(1800),
    }
}

async fn review_queue_claim_and_decide(store: Arc<dyn Store>) {
    let mut low = blocked(SHA_A, "r-art-1", "r-owner", "r-key-1");
    {
        let review = low.review.as_mut().unwrap();
        review.priority = 1;
        // `_` is a LIKE wildcard: this label must not match a filter on FACE_FEMALE.
        review.labels = vec!["FACEXFEMALE".into()];
        review.banks = Vec::new();
        review.verdict = Verdict::Review;
    }
    let low_id = store
        .record_screening(&low)
        .await
        .unwrap()
        .review_id
        .unwrap();
    let high = store
        .record_screening(&blocked(SHA_B, "r-art-2", "r-owner-2", "r-key-2"))
        .await
        .unwrap();
    let high_id = high.review_id.unwrap();

    // Priority first; filters on label, bank, owner, verdict and dates.
    let open = store
        .review_queue(&queue_filter(QueueState::Open))
        .await
        .unwrap();
    assert_eq!(ids(&open), [high_id.as_str(), low_id.as_str()]);
    assert_eq!(open[0].labels, ["FACE_FEMALE", "FEMALE_BREAST_EXPOSED"]);
    assert_eq!(open[0].owner_id.as_deref(), Some("r-owner-2"));
    assert_eq!(open[0].top_score, Some(0.91));
    let filtered = |f: ReviewFilter| {
        let store = Arc::clone(&store);
        async move { store.review_queue(&f).await.unwrap() }
    };
    let open_filter = queue_filter(QueueState::Open);
    let cases = [
        (
            ReviewFilter {
                label: Some("FACE_FEMALE".into()),
                ..open_filter.clone()
            },
            vec![high_id.as_str()],
        ),
        (
            ReviewFilter {
                bank: Some("known-bad".into()),
                ..open_filter.clone()
            },
            vec![high_id.as_str()],
        ),
        (
            ReviewFilter {
                owner: Some("r-owner".into()),
                ..open_filter.clone()
            },
            vec![low_id.as_str()],
        ),
        (
            ReviewFilter {
                verdict: Some(Verdict::Review),
                ..open_filter.clone()
            },
            vec![low_id.as_str()],
        ),
        (
            ReviewFilter {
                from: Some(now_utc() + Duration::days(1)),
                ..open_filter.clone()
            },
            vec![],
        ),
        (
            ReviewFilter {
                to: Some(now_utc() - Duration::days(1)),
                ..open_filter.clone()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(ids(&filtered(filter.clone()).await), expected, "{filter:?}");
    }

    // Claims: one holder at a time until the lease lapses.
    let lease_start = now_utc() - Duration::minutes(30);
    let claimed = store
        .claim_review_item(&high_id, "rev-1", ConsoleRole::Reviewer, lease_start)
        .await
        .unwrap();
    assert_eq!(claimed.state, ReviewState::Claimed);
    assert_eq!(claimed.claimed_by.as_deref(), Some("rev-1"));
    let taken = store
        .claim_review_item(&high_id, "rev-2", ConsoleRole::Reviewer, lease_start)
        .await
        .unwrap_err();
    assert_eq!(taken.kind(), "conflict");
    assert_eq!(
        store
            .apply_decision(&decision(&high_id, "rev-2", ReviewDecision::Release))
            .await
            .unwrap_err()
            .kind(),
        "conflict",
        "someone else's live claim blocks a decision"
    );
    // A lapsed claim (cut-off after the claim) can be taken over.
    let lapsed = store
        .claim_review_item(
            &high_id,
            "rev-2",
            ConsoleRole::Reviewer,
            now_utc() + Duration::seconds(1),
        )
        .await
        .unwrap();
    assert_eq!(lapsed.claimed_by.as_deref(), Some("rev-2"));
    let given_back = store
        .unclaim_review_item(&high_id, "rev-2", ConsoleRole::Reviewer)
        .await
        .unwrap();
    assert_eq!(given_back.state, ReviewState::Pending);

    // Escalation moves the item to admins: reviewers no longer see or claim it.
    let escalated = store
        .apply_decision(&DecisionWrite {
            reason_code: "age_unclear".into(),
            ..decision(&low_id, "rev-1", ReviewDecision::Escalate)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(escalated.review.level, ReviewLevel::Admin);
    assert_eq!(escalated.review.state, ReviewState::Pending);
    let reviewer_view = filtered(ReviewFilter {
        include_admin_level: false,
        ..queue_filter(QueueState::Open)
    })
    .await;
    assert_eq!(ids(&reviewer_view), [high_id.as_str()]);
    assert_eq!(
        ids(&filtered(queue_filter(QueueState::Escalated)).await),
        [low_id.as_str()]
    );
    assert_eq!(
        err_kind(
            store
                .claim_review_item(&low_id, "rev-1", ConsoleRole::Reviewer, lease_start)
                .await
        ),
        "not_found"
    );
    assert_eq!(
        err_kind(
            store
                .apply_decision(&decision(&low_id, "rev-1", ReviewDecision::Release))
                .await
        ),
        "not_found"
    );

    // Confirm: entries and reports land with the decision, in one transaction.
    store.create_bank(&bank("confirmed-bad")).await.unwrap();
    let version_before = store.banks_version().await.unwrap();
    let confirm = DecisionWrite {
        bank_entries: Some((
            "confirmed-bad".into(),
            vec![
                entry("pdq", &"f".repeat(64)),
                entry("md5", "0123456789abcdef0123456789abcdef"),
            ],
        )),
        reports: vec![ReportWrite {
            idempotency_key: "decision-high".into(),
            kind: "decision".into(),
            payload: json!({ "decision": "confirm" }),
        }],
        ..decision(&high_id, "rev-1", ReviewDecision::Confirm)
    };
    let applied = store.apply_decision(&confirm).await.unwrap().unwrap();
    assert!(!applied.retried);
    assert_eq!(applied.bank_entries_added, 2);
    assert_eq!(applied.banks_version, version_before + 1);
    assert_eq!(applied.review.state, ReviewState::Decided);
    assert_eq!(applied.review.decision, Some(ReviewDecision::Confirm));
    assert_eq!(
        applied.review.reason_code.as_deref(),
        Some("adult_explicit")
    );
    assert_eq!(applied.report_ids.len(), 1);
    let report = store
        .get_report(&applied.report_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.screening_id.as_ref(), Some(&high.screening_id));
    assert_eq!(
        store
            .list_bank_entries("confirmed-bad")
            .await
            .unwrap()
            .len(),
        2
    );
    // The same decision again is a retry that changes nothing; another one conflicts.
    let again = store.apply_decision(&confirm).await.unwrap().unwrap();
    assert!(again.retried);
    assert_eq!(store.banks_version().await.unwrap(), version_before + 1);
    assert_eq!(
        err_kind(
            store
                .apply_decision(&decision(&high_id, "rev-1", ReviewDecision::Release))
                .await
        ),
        "conflict"
    );
    // A decision naming a missing bank changes nothing at all.
    let mut admin_release = DecisionWrite {
        reviewer_role: ConsoleRole::Admin,
        bank_entries: Some(("no-such-bank".into(), vec![entry("md5", "00")])),
        ..decision(&low_id, "admin-1", ReviewDecision::Release)
    };
    assert_eq!(
        err_kind(store.apply_decision(&admin_release).await),
        "not_found"
    );
    assert_eq!(
        store.get_review(&low_id).await.unwrap().unwrap().state,
        ReviewState::Pending
    );

    // Release (by an admin, as the item is escalated) lifts the quarantine.
    admin_release.bank_entries = None;
    let released = store.apply_decision(&admin_release).await.unwrap().unwrap();
    assert_eq!(released.released_items, 1);
    assert!(store.quarantine_items(SHA_A).await.unwrap()[0]
        .released_at
        .is_some());
    assert_eq!(
        store.get_artwork("r-art-1").await.unwrap().unwrap().status,
        ArtworkStatus::Released
    );
    assert_eq!(
        store.get_artwork("r-art-2").await.unwrap().unwrap().status,
        ArtworkStatus::Quarantined,
        "a confirm keeps the art quarantined"
    );
    assert_eq!(
        ids(&filtered(queue_filter(QueueState::Decided)).await),
        [low_id.as_str(), high_id.as_str()],
        "decided items newest decision first"
    );

    // History and dashboard figures come from the same rows.
    let history = store
        .audit_rows(&AuditFilter {
            subjects: vec![high.screening_id.clone()],
            oldest_first: true,
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = history.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "review.claim",
            "review.claim",
            "review.unclaim",
            "review.confirm"
        ]
    );
    let now = now_utc();
    let counts = store
        .review_counts(now - Duration::days(1), &[now - Duration::hours(1)])
        .await
        .unwrap();
    let today = now.format("%Y-%m-%d").to_string();
    assert_eq!(
        counts.verdicts_per_day,
        [(today.clone(), "block".to_string(), 2)]
    );
    assert_eq!(counts.queue_age, [0, 0], "nothing is open any more");
    let mut decisions = counts.decisions.clone();
    decisions.sort();
    assert_eq!(
        decisions,
        [
            ("admin-1".to_string(), "release".to_string(), 1),
            ("rev-1".to_string(), "confirm".to_string(), 1),
            ("rev-1".to_string(), "escalate".to_string(), 1),
        ]
    );
    let owned = store.owner_artworks("r-owner-2", 10, true).await.unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].verdict, Some(Verdict::Block));
    assert_eq!(store.recent_records(10).await.unwrap().len(), 2);
}

async fn login_counts_change_one_update_at_a_time(store: Arc<dyn Store>) {
    let now = now_utc();
    // Forgets nothing this case writes, until it means to.
    let ancient = now - Duration::days(30);
    async fn fail_once(
        store: &dyn Store,
        name: &str,
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> LoginCount {
        store
            .update_login_count(name, forget_before, &mut |count| LoginCount {
                failures: count.failures + 1,
                last_at: Some(at),
                ..count
            })
            .await
            .unwrap()
    }
    // Eight replicas count a failure of one new name at once: none is lost.
    let updates = (0..8).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { fail_once(&*store, "ana", now, ancient).await })
    });
    for update in futures_util::future::join_all(updates).await {
        update.unwrap();
    }
    let read = |name: &'static str| {
        let store = Arc::clone(&store);
        async move {
            let mut seen = None;
            store
                .update_login_count(name, ancient, &mut |count| {
                    seen = Some(count);
                    count
                })
                .await
                .unwrap();
            seen.unwrap()
        }
    };
    let ana = read("ana").await;
    assert_eq!((ana.failures, ana.last_at), (8, Some(now)));
    assert_eq!(store.login_count("ana").await.unwrap(), ana);
    assert_eq!(
        store.login_count("never").await.unwrap(),
        LoginCount::default()
    );
    // Every field is stored as given.
    let full = LoginCount {
        failures: 7,
        in_flight: 2,
        in_flight_until: Some(now + Duration::seconds(60)),
        last_at: Some(now),
        locked_until: Some(now + Duration::seconds(4)),
    };
    store
        .update_login_count("bo", ancient, &mut |_| full)
        .await
        .unwrap();
    assert_eq!(read("bo").await, full);
    // An empty count removes the name: it reads as never seen.
    store
        .update_login_count("bo", ancient, &mut |_| LoginCount::default())
        .await
        .unwrap();
    assert_eq!(read("bo").await, LoginCount::default());
    // Names quiet since before the cut-off are forgotten by an update of any name.
    fail_once(&*store, "cy", now - Duration::days(1), ancient).await;
    assert_eq!(read("cy").await.failures, 1);
    fail_once(&*store, "ana", now, now - Duration::hours(1)).await;
    assert_eq!(read("cy").await, LoginCount::default());
    assert_eq!(read("ana").await.failures, 9);
    assert!(matches!(
        store.update_login_count(" ", ancient, &mut |c| c).await,
        Err(StoreError::Invalid(_))
    ));
}

async fn console_users_and_sessions(store: Arc<dyn Store>) {
    let put_alice = |password_hash, role, existing| {
        store.put_console_user("alice", password_hash, role, "cli", existing)
    };
    assert_eq!(store.console_user("alice").await.unwrap(), None);
    put_alice(
        "$argon2id$fake",
        ConsoleRole::Reviewer,
        ExistingUser::Replace,
    )
    .await
    .unwrap();
    let alice = store.console_user("alice").await.unwrap().unwrap();
    assert_eq!(alice.role, ConsoleRole::Reviewer);
    assert_eq!(alice.settings, ConsoleSettings::default());
    assert_eq!(alice.password_hash, "$argon2id$fake");
    // Again: a new password and role for the same user.
    put_alice("$argon2id$new", ConsoleRole::Admin, ExistingUser::Replace)
        .await
        .unwrap();
    let alice = store.console_user("alice").await.unwrap().unwrap();
    assert_eq!(
        (alice.role, alice.password_hash.as_str()),
        (ConsoleRole::Admin, "$argon2id$new")
    );
    // Refusing an existing name changes nothing.
    let refused = put_alice(
        "$argon2id$other",
        ConsoleRole::Reviewer,
        ExistingUser::Refuse,
    )
    .await;
    assert_eq!(err_kind(refused), "conflict");
    assert_eq!(store.console_user("alice").await.unwrap().unwrap(), alice);

    let settings = ConsoleSettings {
        blur: 30,
        grayscale: false,
        grayscale_reveal: true,
    };
    assert_eq!(
        store
            .set_console_settings("alice", &settings)
            .await
            .unwrap()
            .settings,
        settings
    );
    let too_sharp = ConsoleSettings {
        blur: 0,
        grayscale: true,
        grayscale_reveal: false,
    };
    assert_eq!(
        err_kind(store.set_console_settings("alice", &too_sharp).await),
        "invalid"
    );
    assert_eq!(
        err_kind(store.set_console_settings("nobody", &settings).await),
        "not_found"
    );

    let now = now_utc();
    for (hash, expires) in [
        ("live", now + Duration::hours(1)),
        ("old", now - Duration::seconds(1)),
    ] {
        store
            .create_session(&SessionWrite {
                token_hash: hash.into(),
                username: "alice".into(),
                csrf_token: format!("csrf-{hash}"),
                expires_at: expires,
            })
            .await
            .unwrap();
    }
    let live = store.session("live", now).await.unwrap().unwrap();
    assert_eq!(live.user.username, "alice");
    assert_eq!(live.user.settings, settings);
    assert_eq!(live.csrf_token, "csrf-live");
    // Disabling ends every session; putting the user again enables them.
    store.disable_console_user("alice", "admin").await.unwrap();
    assert!(store.session("live", now).await.unwrap().is_none());
    assert!(store.console_user("alice").await.unwrap().unwrap().disabled);
    assert_eq!(
        err_kind(store.disable_console_user("nobody", "admin").await),
        "not_found"
    );
    put_alice("$argon2id$new", ConsoleRole::Admin, ExistingUser::Replace)
        .await
        .unwrap();
    assert!(!store.console_user("alice").await.unwrap().unwrap().disabled);
    store
        .create_session(&SessionWrite {
            token_hash: "live".into(),
            username: "alice".into(),
            csrf_token: "csrf-live".into(),
            expires_at: now + Duration::hours(1),
        })
        .await
        .unwrap();
    assert!(store.session("old", now).await.unwrap().is_none());
    assert!(store.session("unknown", now).await.unwrap().is_none());
    store.delete_session("live").await.unwrap();
    assert!(store.session("live", now).await.unwrap().is_none());
    let actions: Vec<String> = store
        .audit_rows(&AuditFilter {
            subjects: vec!["alice".into()],
            oldest_first: true,
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.action)
        .collect();
    assert_eq!(
        actions,
        [
            "console_user.put",
            "console_user.put",
            "console_user.disable",
            "console_user.put"
        ]
    );
}

async fn audit_log_and_ping(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    let first = store
        .append_audit("admin:carol", "bank.create", "csam", &json!({ "n": 1 }))
        .await
        .unwrap();
    let second = store
        .append_audit(
            "admin:carol",
            "bank.entries.add",
            "csam",
            &json!({ "n": 2 }),
        )
        .await
        .unwrap();
    assert!(first < second, "audit ids are time-ordered");
    let recent = store.recent_audit(1).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].id, second);
    assert_eq!(recent[0].detail, json!({ "n": 2 }));
    assert_eq!(
        err_kind(store.append_audit("", "x", "y", &json!(null)).await),
        "invalid"
    );

    // After close, calls fail as unavailable (never as a default answer).
    store.close().await;
    assert_eq!(store.ping().await.unwrap_err().kind(), "unavailable");
    assert_eq!(err_kind(store.token_role("abc").await), "unavailable");
}

async fn concurrent_writers(store: Arc<dyn Store>) {
    // Many screenings of one hit at once (client retries, two instances): one report, one
    // quarantine item, every screening recorded.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .record_screening(&blocked(SHA_A, "cc-art", "cc-owner", "cc-key"))
                    .await
            })
        })
        .collect();
    let mut report_ids = std::collections::HashSet::new();
    for task in tasks {
        let recorded = task.await.unwrap().expect("concurrent record");
        assert!(recorded.created);
        report_ids.insert(recorded.report_ids[0].clone());
    }
    assert_eq!(report_ids.len(), 1);
    assert_eq!(
        store
            .due_reports(now_utc() + Duration::seconds(1), 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.quarantine_items(SHA_A).await.unwrap().len(), 1);

    // Concurrent reviewers claiming the same item: exactly one gets it.
    let open = store
        .review_queue(&queue_filter(QueueState::Open))
        .await
        .unwrap();
    // All 16 are one artwork's: the open listing shows its latest item only.
    assert_eq!(open.len(), 1);
    let contested = open[0].id.clone();
    let lease_cutoff = now_utc() - Duration::minutes(30);
    let claims: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let id = contested.clone();
            tokio::spawn(async move {
                store
                    .claim_review_item(
                        &id,
                        &format!("rev-{i}"),
                        ConsoleRole::Reviewer,
                        lease_cutoff,
                    )
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for claim in claims {
        match claim.await.unwrap() {
            Ok(review) => {
                assert_eq!(review.state, ReviewState::Claimed);
                winners += 1;
            }
            Err(e) => assert_eq!(e.kind(), "conflict", "{e}"),
        }
    }
    assert_eq!(winners, 1);

    // A takedown racing uploads of the same owner: afterwards nothing of the owner is published.
    let uploads: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let artwork = format!("race-art-{i}");
                store
                    .record_screening(&screening(SHA_B, Some(&artwork), Some("race-owner")))
                    .await
            })
        })
        .collect();
    let takedown = {
        let store = store.clone();
        tokio::spawn(async move { store.takedown_account("race-owner", "admin:dana").await })
    };
    for upload in uploads {
        upload.await.unwrap().expect("upload during takedown");
    }
    takedown.await.unwrap().expect("takedown");
    for i in 0..12 {
        let artwork = store
            .get_artwork(&format!("race-art-{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(artwork.status, ArtworkStatus::Published, "{artwork:?}");
    }
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable() {
    // Port 1 on loopback refuses connections at once; the pool gives up after its timeout.
    let err = open("postgres://postgres@127.0.0.1:1/none")
        .await
        .err()
        .expect("no server");
    assert_eq!(err.kind(), "unavailable", "{err}");
}

#[tokio::test]
async fn open_refuses_unknown_schemes_and_reopens_existing_files() {
    let err = open("mysql://localhost/db").await.err().expect("refused");
    assert_eq!(err.kind(), "invalid");
    assert_eq!(open("  ").await.err().expect("refused").kind(), "invalid");

    // Opening the same file twice runs migrations once and keeps the data.
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("reopen.db").display()
    );
    let store = open(&url).await.unwrap();
    store
        .put_token("abc", "t", TokenRole::Service)
        .await
        .unwrap();
    drop(store);
    let store = open(&url).await.unwrap();
    assert_eq!(
        store.token_role("abc").await.unwrap(),
        Some(TokenRole::Service)
    );

    let memory = open("sqlite::memory:").await.unwrap();
    memory
        .put_token("abc", "t", TokenRole::Admin)
        .await
        .unwrap();
    assert_eq!(
        memory.token_role("abc").await.unwrap(),
        Some(TokenRole::Admin)
    );
}

#[test]
fn a_database_error_is_kept_as_the_source_and_shown_in_the_chain() {
    use std::error::Error;
    let e = StoreError::from(sqlx::Error::PoolTimedOut);
    let source = e.source().expect("the database's error is the source");
    assert!(source.downcast_ref::<sqlx::Error>().is_some(), "{source:?}");
    let chain = e.chain();
    assert!(
        chain.starts_with(&e.to_string()) && chain.ends_with(&source.to_string()),
        "{chain}"
    );
    assert!(
        !e.to_string().contains(&source.to_string()),
        "said once: {e}"
    );
    let unparsable = serde_json::from_str::<Vec<String>>("[1").unwrap_err();
    let said = unparsable.to_string();
    let e = StoreError::backend("a column does not parse", unparsable);
    assert_eq!(e.kind(), "backend");
    assert_eq!(
        e.chain(),
        format!("store backend error: a column does not parse: {said}")
    );
}

#[test]
fn error_kinds_are_stable() {
    assert_eq!(
        StoreError::Unavailable("x".into(), None).kind(),
        "unavailable"
    );
    assert!(StoreError::Unavailable("x".into(), None).is_retryable());
    assert!(!StoreError::Conflict("x".into()).is_retryable());
    assert_eq!(
        StoreError::from(sqlx::Error::PoolTimedOut).kind(),
        "unavailable"
    );
    assert_eq!(
        StoreError::from(sqlx::Error::RowNotFound).kind(),
        "not_found"
    );
    assert_eq!(
        "quarantined".parse::<ArtworkStatus>().unwrap(),
        ArtworkStatus::Quarantined
    );
    // A stored name that no longer reads as one is a row that does not decode.
    let unknown = "nope".parse::<TokenRole>().unwrap_err();
    assert_eq!(unknown.known, TokenRole::NAMES);
    assert_eq!(StoreError::from(unknown).kind(), "backend");
}

/// Enum columns decode from their names on both backends; a name that is none of the
/// enum's is an error that names it, never a default.
#[tokio::test]
async fn enum_columns_decode_by_name_and_refuse_unknown_names() {
    use sqlx::{Connection as _, Row as _};
    type Read<T> = Result<T, sqlx::Error>;
    fn check(admin: Read<TokenRole>, review: Read<Option<Verdict>>, nope: Read<TokenRole>) {
        assert_eq!(admin.unwrap(), TokenRole::Admin);
        assert_eq!(review.unwrap(), Some(Verdict::Review));
        let err = StoreError::from(nope.unwrap_err());
        assert_eq!(err.kind(), "backend");
        let chain = crate::error_chain::chain(&err);
        assert!(chain.contains("unknown token role \"nope\""), "{chain}");
    }
    const SELECT: &str = "SELECT 'admin' AS a, 'review' AS b, 'nope' AS c";
    let mut sqlite = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    let row = sqlx::query(SELECT).fetch_one(&mut sqlite).await.unwrap();
    check(row.try_get("a"), row.try_get("b"), row.try_get("c"));
    if let Some([url]) = crate::testing::service_urls([crate::testing::POSTGRES_URL_VAR]) {
        let mut postgres = sqlx::PgConnection::connect(&url).await.unwrap();
        // Postgres types the literals as text, as the store's columns are.
        let select = "SELECT 'admin'::text AS a, 'review'::text AS b, 'nope'::text AS c";
        let row = sqlx::query(select).fetch_one(&mut postgres).await.unwrap();
        check(row.try_get("a"), row.try_get("b"), row.try_get("c"));
    }
}

#[tokio::test]
async fn wrapped_columns_decode_and_refuse_bad_values_naming_the_column() {
    use super::columns::{Count, JsonText, ListText};
    use sqlx::{Connection as _, FromRow as _, Row as _};
    type Json = JsonText<serde_json::Value>;
    /// `at` and `bigint` spell a timestamp literal and a BIGINT cast in the backend's dialect.
    async fn check<C: sqlx::Connection>(connection: &mut C, at: &str, bigint: &str)
    where
        for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
        for<'r> AuditRow: sqlx::FromRow<'r, <C::Database as sqlx::Database>::Row>,
        for<'r> ListText: sqlx::Decode<'r, C::Database> + sqlx::Type<C::Database>,
        for<'r> Json: sqlx::Decode<'r, C::Database> + sqlx::Type<C::Database>,
        for<'r> Count: sqlx::Decode<'r, C::Database> + sqlx::Type<C::Database>,
        for<'r> &'r str: sqlx::ColumnIndex<<C::Database as sqlx::Database>::Row>,
        for<'q> <C::Database as sqlx::Database>::Arguments<'q>:
            sqlx::IntoArguments<'q, C::Database>,
    {
        let select = |detail: &str| {
            format!(
                "SELECT 'a1' AS id, 'alice' AS actor, 'x.y' AS action, 's' AS subject, \
                 '{detail}' AS detail, {at} AS at, ',a,b_c,' AS labels, '' AS no_labels, \
                 7{bigint} AS seven, -1{bigint} AS negative, 4294967296{bigint} AS too_many"
            )
        };
        let reason = |err: sqlx::Error| crate::error_chain::chain(&StoreError::from(err));
        let sql = select(r#"{"n":[1,2]}"#);
        let row = sqlx::query(&sql).fetch_one(&mut *connection).await.unwrap();
        let audit = AuditRow::from_row(&row).unwrap();
        assert_eq!(audit.detail, serde_json::json!({ "n": [1, 2] }));
        let labels: Vec<String> = row.try_get::<ListText, _>("labels").unwrap().into();
        assert_eq!(labels, ["a", "b_c"]);
        let none: Vec<String> = row.try_get::<ListText, _>("no_labels").unwrap().into();
        assert!(none.is_empty());
        let not_json = reason(row.try_get::<Json, _>("labels").err().unwrap());
        assert!(
            not_json.contains("column \"labels\": expected value"),
            "{not_json}"
        );
        assert_eq!(u32::from(row.try_get::<Count, _>("seven").unwrap()), 7);
        for column in ["negative", "too_many"] {
            let err = reason(row.try_get::<Count, _>(column).err().unwrap());
            assert!(
                err.contains(&format!("column \"{column}\": out of range")),
                "{err}"
            );
        }

        // Through a derived row, the reason and the column survive.
        let sql = select("{");
        let row = sqlx::query(&sql).fetch_one(&mut *connection).await.unwrap();
        let err = StoreError::from(AuditRow::from_row(&row).unwrap_err());
        assert_eq!(err.kind(), "backend");
        let chain = err.chain();
        assert!(
            chain.contains("column \"detail\": EOF while parsing"),
            "{chain}"
        );
    }
    let written = ["a".to_string(), "b,c".to_string()];
    assert_eq!(ListText::encode(&written), ",a,b_c,");
    assert_eq!(ListText::encode(&[]), "");

    let mut sqlite = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    check(&mut sqlite, "'2026-01-02T03:04:05Z'", "").await;
    if let Some([url]) = crate::testing::service_urls([crate::testing::POSTGRES_URL_VAR]) {
        let mut postgres = sqlx::PgConnection::connect(&url).await.unwrap();
        check(
            &mut postgres,
            "'2026-01-02T03:04:05Z'::timestamptz",
            "::bigint",
        )
        .await;
    }
}

fn item(artwork: &str, outcome: BackfillOutcome) -> BackfillItemWrite {
    BackfillItemWrite {
        job_id: "job-1".into(),
        artwork_id: artwork.into(),
        outcome,
        worker: Some("w1".into()),
    }
}

fn done(verdict: &str) -> BackfillOutcome {
    BackfillOutcome::Done {
        screening_id: format!("s-{verdict}"),
        verdict: verdict.parse().unwrap(),
    }
}

fn failed(kind: &str) -> BackfillOutcome {
    BackfillOutcome::Failed {
        kind: kind.into(),
        error: format!("{kind} went wrong"),
    }
}

async fn backfill_checkpoints(store: Arc<dyn Store>) {
    store
        .register_backfill_job("job-1", "m.csv", 2)
        .await
        .unwrap();
    store
        .record_backfill_item(&item("a1", failed("timeout")))
        .await
        .unwrap();
    let counts = store.backfill_counts("job-1").await.unwrap();
    assert_eq!((counts.total, counts.done, counts.failed), (Some(2), 0, 1));
    assert_eq!(counts.errors["timeout"], 1);

    // A retry succeeds; a late failure report after that changes nothing.
    store
        .record_backfill_item(&item("a1", done("allow")))
        .await
        .unwrap();
    store
        .record_backfill_item(&item("a1", failed("fetch")))
        .await
        .unwrap();
    store
        .record_backfill_item(&item("a2", done("block")))
        .await
        .unwrap();
    // The same job registered again (a rerun) keeps its items.
    store
        .register_backfill_job("job-1", "m.csv", 2)
        .await
        .unwrap();
    let counts = store.backfill_counts("job-1").await.unwrap();
    assert_eq!((counts.done, counts.failed), (2, 0));
    assert_eq!(
        counts.verdicts,
        [("allow".to_string(), 1), ("block".to_string(), 1)].into()
    );
    assert_eq!(
        store.backfill_done("job-1").await.unwrap(),
        ["a1".to_string(), "a2".to_string()].into()
    );
    assert!(store.backfill_done("other-job").await.unwrap().is_empty());
    assert_eq!(
        store.backfill_counts("other-job").await.unwrap(),
        BackfillCounts::default()
    );

    let first = store.backfill_items("job-1", None, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].artwork_id.as_str(), first[0].attempts), ("a1", 2));
    assert_eq!(first[0].verdict, Some(Verdict::Allow));
    let next = store
        .backfill_items("job-1", Some(&first[0].artwork_id), 10)
        .await
        .unwrap();
    assert_eq!(
        next.iter()
            .map(|r| r.artwork_id.as_str())
            .collect::<Vec<_>>(),
        ["a2"]
    );
    assert_eq!(
        err_kind(store.record_backfill_item(&item("", done("allow"))).await),
        "invalid"
    );
}

async fn artwork_signals_page_through_latest_screenings(store: Arc<dyn Store>) {
    store
        .record_screening(&screening(SHA_A, Some("art-2"), Some("o")))
        .await
        .unwrap();
    store
        .record_screening(&screening(SHA_A, Some("art-1"), None))
        .await
        .unwrap();
    // A later screening of art-1 with other bytes is its latest.
    store
        .record_screening(&screening(SHA_B, Some("art-1"), None))
        .await
        .unwrap();
    // No artwork id: no artwork row, not listed.
    store
        .record_screening(&screening(SHA_B, None, None))
        .await
        .unwrap();
    let page = store.artwork_signals(None, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(
        (page[0].artwork_id.as_str(), page[0].sha256.as_str()),
        ("art-1", SHA_B)
    );
    let rest = store.artwork_signals(Some("art-1"), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(
        (
            rest[0].artwork_id.as_str(),
            rest[0].sha256.as_str(),
            rest[0].owner_id.as_deref()
        ),
        ("art-2", SHA_A, Some("o"))
    );
    assert_eq!(rest[0].status, ArtworkStatus::Published);
    assert!(store
        .artwork_signals(Some("art-2"), 10)
        .await
        .unwrap()
        .is_empty());
}

async fn owner_screenings_are_read_by_window_oldest_first(store: Arc<dyn Store>) {
    let now = now_utc();
    for (i, (owner, days_ago)) in [("o1", 10), ("o1", 3), ("o2", 2), ("o1", 1), ("o1", 0)]
        .into_iter()
        .enumerate()
    {
        let mut write = screening(SHA_A, Some(&format!("art-{i}")), Some(owner));
        write.created_at = Some(now - Duration::days(days_ago));
        store.record_screening(&write).await.unwrap();
    }
    let since = now - Duration::days(7);
    let rows = store.owner_screenings_since("o1", since, 10).await.unwrap();
    let artworks: Vec<String> = rows
        .iter()
        .map(|r| r.facts.artwork_id.clone().unwrap())
        .collect();
    assert_eq!(artworks, ["art-1", "art-3", "art-4"]);
    let limited = store.owner_screenings_since("o1", since, 2).await.unwrap();
    assert_eq!(limited.len(), 2);
    assert!(store
        .owner_screenings_since("nobody", since, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn words_alone_are_stored_without_hashes_and_an_image_needs_all(store: Arc<dyn Store>) {
    let base = screening(SHA_A, Some("art-words"), Some("owner-words"));
    let words = ScreeningWrite {
        facts: ScreeningFacts {
            sha256: String::new(),
            md5: String::new(),
            pdq: None,
            pdq_quality: None,
            model: String::new(),
            analysis: "words".into(),
            verdict: Verdict::Review,
            ..base.facts
        },
        artwork_status: ArtworkStatus::Held,
        ..base
    };
    assert!(words.facts.is_words_only());
    let recorded = store.record_screening(&words).await.unwrap();
    assert!(recorded.created);
    assert_eq!(recorded.artwork_status, Some(ArtworkStatus::Held));
    let row = store
        .get_screening(&recorded.screening_id)
        .await
        .unwrap()
        .expect("stored");
    assert!(!row.facts.has_image());
    // Never a cached image verdict: a lookup must name an image's hash.
    let err = store
        .cached_verdict("", &versions("", "words", "policy-1", 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid", "{err}");

    // An image missing one of its hashes, or its model, is refused as before.
    let without = |lose: fn(&mut ScreeningFacts)| {
        let mut write = screening(SHA_B, None, None);
        lose(&mut write.facts);
        write
    };
    let no_md5 = without(|facts| facts.md5.clear());
    let no_sha = without(|facts| facts.sha256.clear());
    let no_model = without(|facts| facts.model.clear());
    for (name, write) in [("md5", &no_md5), ("sha256", &no_sha), ("model", &no_model)] {
        let err = store.record_screening(write).await.unwrap_err();
        assert_eq!(err.kind(), "invalid", "an image without its {name}: {err}");
    }
}

async fn public_art_held_later_is_announced_for_unpublishing(store: Arc<dyn Store>) {
    let unpublish_rows = |store: Arc<dyn Store>| async move {
        store
            .due_reports(now_utc() + Duration::days(1), 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == "unpublish")
            .collect::<Vec<_>>()
    };
    let held = |sha: &str, artwork: &str| {
        let base = screening(sha, Some(artwork), Some("owner-u"));
        ScreeningWrite {
            facts: ScreeningFacts {
                verdict: Verdict::Review,
                ..base.facts
            },
            artwork_status: ArtworkStatus::Held,
            review: Some(ReviewWrite {
                priority: 1,
                reason: Some("review: contact details in title (redacted)".into()),
                verdict: Verdict::Review,
                top_label: None,
                top_score: None,
                labels: Vec::new(),
                banks: Vec::new(),
            }),
            ..base
        }
    };
    // Held from its first screening: it was never public, nothing to take down.
    store
        .record_screening(&held(SHA_A, "art-new"))
        .await
        .unwrap();
    // Published, screened again and still published: nothing either.
    for _ in 0..2 {
        store
            .record_screening(&screening(SHA_A, Some("art-public"), Some("owner-u")))
            .await
            .unwrap();
    }
    assert!(unpublish_rows(store.clone()).await.is_empty());

    // Public, then held: one event, in the screening's transaction.
    let later = store
        .record_screening(&held(SHA_B, "art-public"))
        .await
        .unwrap();
    let rows = unpublish_rows(store.clone()).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].screening_id.as_deref(),
        Some(later.screening_id.as_str())
    );
    assert_eq!(rows[0].payload["artwork_id"], "art-public");
    assert_eq!(rows[0].payload["status"], "held");
    assert_eq!(rows[0].payload["verdict"], "review");
    assert!(
        !later.report_ids.contains(&rows[0].id),
        "an unpublish event is not one of the screening's reports"
    );
    // Held again: already out of view, no second event.
    store
        .record_screening(&held(SHA_A, "art-public"))
        .await
        .unwrap();
    assert_eq!(unpublish_rows(store.clone()).await.len(), 1);
}

fn user_report(reporter: &str, kind: ReporterKind, subject_id: &str) -> UserReportWrite {
    UserReportWrite {
        reporter_kind: kind,
        reporter_ref: reporter.to_string(),
        category: ReportCategory::MinorSexual,
        subject: ReportSubject::Artwork,
        subject_id: subject_id.to_string(),
        text: None,
    }
}

async fn user_reports_are_counted_once_per_item_by_their_strongest(store: Arc<dyn Store>) {
    let published = store
        .record_screening(&screening(SHA_A, Some("u-art"), Some("u-owner")))
        .await
        .unwrap();
    let review = ReviewWrite {
        priority: 7,
        reason: Some("review: reported".into()),
        verdict: Verdict::Allow,
        top_label: None,
        top_score: None,
        labels: Vec::new(),
        banks: Vec::new(),
    };

    // One report per reporter and subject, whatever else the repeat says.
    let (first, created) = store
        .put_user_report(&user_report("parent-1", ReporterKind::Guardian, "u-art"))
        .await
        .unwrap();
    assert!(created);
    let (repeat, created) = store
        .put_user_report(&UserReportWrite {
            category: ReportCategory::Other,
            text: Some("again".into()),
            ..user_report("parent-1", ReporterKind::Guardian, "u-art")
        })
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(repeat, first);
    let (weak, _) = store
        .put_user_report(&user_report("listener", ReporterKind::User, "u-art"))
        .await
        .unwrap();
    assert!(store
        .put_user_report(&user_report(" ", ReporterKind::User, "u-art"))
        .await
        .is_err());

    // The first report makes the item; counting it again changes nothing.
    let sid = &published.screening_id;
    let attach =
        |report, priority| store.attach_user_report(report, "u-art", sid, &review, priority);
    let made = attach(first.id.as_str(), 600).await.unwrap().unwrap();
    assert!(made.created && made.linked);
    assert_eq!(made.review.priority, 607);
    assert_eq!(made.review.state, ReviewState::Pending);
    assert_eq!(made.review.owner_id.as_deref(), Some("u-owner"));
    let again = attach(first.id.as_str(), 600).await.unwrap().unwrap();
    assert!(!again.created && !again.linked);
    assert_eq!(again.review.priority, 607);
    // A weaker report joins the item without raising it; the strongest counts once.
    let joined = attach(weak.id.as_str(), 40).await.unwrap().unwrap();
    assert_eq!(
        (joined.review.id.as_str(), joined.linked),
        (made.review.id.as_str(), true)
    );
    assert_eq!(joined.review.priority, 607);
    let reports = store.review_user_reports(&made.review.id).await.unwrap();
    assert_eq!(
        reports.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [first.id.as_str(), weak.id.as_str()]
    );
    assert_eq!(
        store
            .user_report_counts(&[made.review.id.clone(), "none".into()])
            .await
            .unwrap(),
        [(made.review.id.clone(), 2)].into_iter().collect()
    );
    assert_eq!(
        store.user_report_items(&first.id).await.unwrap(),
        [("u-art".to_string(), made.review.id.clone())]
    );
    let reported = store
        .review_queue(&ReviewFilter {
            reported: true,
            ..queue_filter(QueueState::Open)
        })
        .await
        .unwrap();
    assert_eq!(ids(&reported), [made.review.id.as_str()]);

    // Decided, the item takes no more reports; nor does a screening no longer the latest.
    store
        .apply_decision(&decision(&made.review.id, "rita", ReviewDecision::Confirm))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.get_artwork("u-art").await.unwrap().unwrap().status,
        ArtworkStatus::Quarantined,
        "a confirm takes published art out of view"
    );
    let (late, _) = store
        .put_user_report(&user_report("late", ReporterKind::User, "u-art"))
        .await
        .unwrap();
    assert!(matches!(
        attach(late.id.as_str(), 40).await.unwrap(),
        Err(AttachRefused::Decided { .. })
    ));
    store
        .record_screening(&screening(SHA_B, Some("u-art"), Some("u-owner")))
        .await
        .unwrap();
    assert!(matches!(
        attach(late.id.as_str(), 40).await.unwrap(),
        Err(AttachRefused::Superseded { .. })
    ));
    assert!(
        store
            .review_user_reports(&made.review.id)
            .await
            .unwrap()
            .len()
            == 2
    );
}
