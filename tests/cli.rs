//! `coverguard scan` end to end: JSON lines, exit status, bad input, URLs, banks.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

struct Run {
    status: i32,
    lines: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Each JSON line's `source`, in printed order.
    fn sources(&self) -> Vec<&str> {
        self.lines
            .iter()
            .map(|l| l["source"].as_str().unwrap())
            .collect()
    }
}

fn scan(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_coverguard"))
        .arg("scan")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = if args.contains(&"--json") {
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect(l))
            .collect()
    } else {
        Vec::new()
    };
    Run {
        status: out.status.code().unwrap(),
        lines,
        stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn copy_photo(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(skimage_dir().join(name), &to).unwrap();
    to
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG that declares `w`x`h` and carries no pixel data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn by_source<'a>(run: &'a Run, source: &str) -> &'a Value {
    run.lines
        .iter()
        .find(|l| l["source"] == source)
        .unwrap_or_else(|| panic!("no line for {source} in {}", run.stdout))
}

#[test]
fn bad_inputs_get_their_error_kind_and_the_rest_are_still_screened() {
    let dir = tempfile::tempdir().unwrap();
    let good = copy_photo(dir.path(), "astronaut.png");
    let rocket = std::fs::read(skimage_dir().join("rocket.jpg")).unwrap();
    let truncated = dir.path().join("truncated.jpg");
    std::fs::write(&truncated, &rocket[..rocket.len() / 2]).unwrap();
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, b"this is not a picture\n").unwrap();
    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, png_header(100_000, 100_000)).unwrap();
    let over_cap = dir.path().join("over-cap.png");
    let mut big = png_header(10, 10);
    big.resize(1_200_000, 0);
    std::fs::write(&over_cap, big).unwrap();
    let missing = dir.path().join("missing.png");

    let inputs = [&truncated, &empty, &text, &huge, &good, &over_cap, &missing];
    let mut args = vec!["--json", "--max-bytes", "1000000"];
    args.extend(inputs.iter().map(|p| s(p)));
    let run = scan(&args);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert_eq!(run.lines.len(), inputs.len());
    for (path, kind) in [
        (&truncated, "corrupt"),
        (&empty, "empty"),
        (&text, "unsupported_format"),
        (&huge, "dimensions"),
        (&over_cap, "too_large"),
        (&missing, "not_found"),
    ] {
        let line = by_source(&run, s(path));
        assert_eq!(line["error"]["kind"], kind, "{line}");
        assert!(!line["error"]["message"].as_str().unwrap().is_empty());
        assert!(
            line.get("verdict").is_none(),
            "an error is never a verdict: {line}"
        );
    }
    assert!(by_source(&run, s(&huge))["error"]["message"]
        .as_str()
        .unwrap()
        .contains("100000x100000"));

    let screened = by_source(&run, s(&good));
    assert_eq!(screened["verdict"], "allow");
    assert_eq!(screened["format"], "png");
    assert_eq!(
        (screened["width"].as_u64(), screened["height"].as_u64()),
        (Some(512), Some(512))
    );
    assert_eq!(screened["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(screened["md5"].as_str().unwrap().len(), 32);
    assert_eq!(screened["pdq"]["dihedral"].as_array().unwrap().len(), 8);
    assert_eq!(screened["pdq"]["quality"], 100);
    assert_eq!(screened["detections"][0]["label"], "FACE_FEMALE");
    assert_eq!(
        screened["detections"][0]["box"],
        serde_json::json!([173, 82, 102, 98])
    );
    assert!(screened["model"]
        .as_str()
        .unwrap()
        .starts_with("nudenet-320n@c15d8273"));
}

#[test]
fn exit_status_is_0_for_allow_1_for_review_and_2_wins() {
    let dir = tempfile::tempdir().unwrap();
    let astronaut = copy_photo(dir.path(), "astronaut.png");
    let color = copy_photo(dir.path(), "color.png");
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\n").unwrap();

    assert_eq!(scan(&[s(&astronaut)]).status, 0);
    let flagged = scan(&[s(&astronaut), s(&color)]);
    assert_eq!(flagged.status, 1);
    // The readable summary: one line per input, the verdict and why.
    let color_line = flagged
        .stdout
        .lines()
        .find(|l| l.starts_with(s(&color)))
        .unwrap();
    assert!(
        color_line.contains("review") && color_line.contains("BUTTOCKS_EXPOSED"),
        "{color_line}"
    );
    assert_eq!(scan(&[s(&color), s(&broken)]).status, 2);
}

#[test]
fn scan_with_ocr_reads_the_words_in_the_artwork() {
    let fixture = |name: &str| fixtures().join("ocr").join(name);
    let asking = fixture("text-04.png");
    let innocent = fixture("text-00.png");
    // Without OCR the pixels alone decide, and no words are reported.
    let unread = scan(&["--json", s(&asking)]);
    assert!(
        unread.lines[0].get("text").is_none(),
        "{:?}",
        unread.lines[0]
    );
    let read = scan(&["--json", "--ocr", s(&asking), s(&innocent)]);
    assert_eq!(read.status, 1, "{}", read.stderr);
    let by_file = |name: &str| {
        read.lines
            .iter()
            .find(|r| r["source"].as_str().unwrap().ends_with(name))
            .unwrap()
            .clone()
    };
    let held = by_file("text-04.png");
    assert_eq!(held["verdict"], "review", "{held}");
    let lines: Vec<&str> = held["text"]["ocr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert_eq!(l["box"].as_array().unwrap().len(), 4);
            l["text"].as_str().unwrap()
        })
        .collect();
    assert!(
        lines.contains(&"kik me: jenny_14") && lines.contains(&"im 12"),
        "{lines:?}"
    );
    let kinds: Vec<&str> = held["text"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["source"], "ocr");
            s["kind"].as_str().unwrap()
        })
        .collect();
    assert!(
        kinds.contains(&"contact_handle") && kinds.contains(&"age"),
        "{kinds:?}"
    );
    assert!(
        held["reasons"].to_string().contains("in ocr")
            && !held["reasons"].to_string().contains("jenny"),
        "{}",
        held["reasons"]
    );
    // Words that ask for nothing are reported and change nothing.
    let allowed = by_file("text-00.png");
    assert_eq!(allowed["verdict"], "allow", "{allowed}");
    assert_eq!(allowed["text"]["ocr"][0]["text"], "Vol. 2 (Deluxe)");
    assert!(allowed["text"]["signals"].as_array().unwrap().is_empty());
    // Reading every image in full reads the same words: the gate only passes over
    // images without them.
    let every = scan(&[
        "--json",
        "--ocr",
        "--ocr-every-image",
        s(&asking),
        s(&innocent),
    ]);
    assert_eq!(every.status, 1, "{}", every.stderr);
    for record in &every.lines {
        let source = record["source"].as_str().unwrap();
        let gated = by_file(source.rsplit('/').next().unwrap());
        assert_eq!(record["text"]["ocr"], gated["text"]["ocr"], "{source}");
    }
    let refused = scan(&["--ocr-every-image", s(&asking)]);
    assert_eq!(
        refused.status, 2,
        "--ocr-every-image alone: {}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--ocr"), "{}", refused.stderr);
}

/// As the service does: under the strict profile every image is read in full, past the
/// gate, which lets pass some text rapidocr reads (tests/fixtures/ocr-gate/README.md).
#[test]
fn scan_with_ocr_reads_every_image_of_the_strict_profile_in_full() {
    let hue_only = fixtures().join("ocr-gate/same-luma-on-photo.png");
    let unread = scan(&["--json", "--ocr", s(&hue_only)]);
    assert!(
        unread.lines[0]["text"]["ocr"]
            .as_array()
            .is_none_or(|l| l.is_empty()),
        "premise: the gate lets this cover pass unread; if it reads it now, keep one it \
         misses in its place: {:?}",
        unread.lines[0]
    );
    for context in [
        ["--owner-is-minor", "true"],
        ["--playlist-track-count", "0"],
    ] {
        let read = scan(&["--json", "--ocr", context[0], context[1], s(&hue_only)]);
        assert!(read.status <= 1, "{context:?}: {}", read.stderr);
        let lines: Vec<&str> = read.lines[0]["text"]["ocr"]
            .as_array()
            .unwrap_or_else(|| panic!("{context:?}: {:?}", read.lines[0]))
            .iter()
            .filter_map(|l| l["text"].as_str())
            .collect();
        assert!(
            lines.iter().any(|l| l.starts_with("Vol. 2")),
            "{context:?}: {lines:?}"
        );
    }
}

#[test]
fn scan_with_ocr_reads_words_shown_only_in_a_later_frame() {
    let dir = tempfile::tempdir().unwrap();
    let words = image::open(fixtures().join("ocr/text-04.png"))
        .unwrap()
        .to_rgba8();
    let blank = image::RgbaImage::from_pixel(
        words.width(),
        words.height(),
        image::Rgba([240, 240, 240, 255]),
    );
    let animation = dir.path().join("later.gif");
    std::fs::write(
        &animation,
        common::attack::gif(&[(&blank, 500), (&words, 500)]),
    )
    .unwrap();
    let read = scan(&["--json", "--ocr", s(&animation)]);
    assert_eq!(read.status, 1, "{}", read.stderr);
    let record = &read.lines[0];
    assert_eq!(record["verdict"], "review", "{record}");
    let lines = record["text"]["ocr"].as_array().unwrap();
    assert!(!lines.is_empty(), "{record}");
    for line in lines {
        assert_eq!(line["view"]["frame"], 1, "read in the second frame: {line}");
    }
    assert!(
        record["text"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["source"] == "ocr" && s["kind"] == "contact_handle"),
        "{record}"
    );
}

#[test]
fn scan_reads_the_title_and_description_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let astronaut = copy_photo(dir.path(), "astronaut.png");
    let plain = scan(&["--json", "--title", "Road trip 2024", s(&astronaut)]);
    assert_eq!(plain.status, 0, "{}", plain.stderr);
    let held = scan(&[
        "--json",
        "--title",
        "road trip",
        "--description",
        "im 12 send pics",
        s(&astronaut),
    ]);
    assert_eq!(held.status, 1, "{}", held.stderr);
    let record = &held.lines[0];
    assert_eq!(record["verdict"], "review");
    let kinds: Vec<&str> = record["text"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["source"], "description");
            s["kind"].as_str().unwrap()
        })
        .collect();
    assert!(
        kinds.contains(&"age") && kinds.contains(&"image_request"),
        "{kinds:?}"
    );
    // A team's keyword list joins the rules; a bad one stops the run naming its line.
    let list = dir.path().join("keywords.tsv");
    std::fs::write(&list, "# ours\ngrooming\tsecret friend\n").unwrap();
    let listed = scan(&[
        "--json",
        "--keywords",
        s(&list),
        "--title",
        "our S3CRET fr1end",
        s(&astronaut),
    ]);
    assert_eq!(listed.status, 1, "{}", listed.stderr);
    let signal = &listed.lines[0]["text"]["signals"][0];
    assert_eq!(
        (signal["kind"].as_str(), signal["category"].as_str()),
        (Some("keyword"), Some("grooming"))
    );
    std::fs::write(&list, "grooming secret friend\n").unwrap();
    let bad = scan(&["--keywords", s(&list), s(&astronaut)]);
    assert_eq!(bad.status, 2);
    assert!(bad.stderr.contains("keywords.tsv:1:"), "{}", bad.stderr);
    // A title is refused as the service refuses it, before anything is screened.
    let refused = scan(&["--title", "a\u{7}b", s(&astronaut)]);
    assert_eq!(refused.status, 2);
    assert!(refused.stderr.contains("title"), "{}", refused.stderr);
}

#[test]
fn directories_are_recursed_and_named_by_the_given_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    copy_photo(dir.path(), "astronaut.png");
    copy_photo(&dir.path().join("nested"), "camera.png");
    let given = format!("{}/", s(dir.path()));
    let run = scan(&["--json", &given]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        run.sources(),
        vec![
            format!("{given}astronaut.png"),
            format!("{given}nested/camera.png")
        ]
    );
}

#[test]
fn banks_and_policy_files_change_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let astronaut = copy_photo(dir.path(), "astronaut.png");
    let color = copy_photo(dir.path(), "color.png");
    let first = scan(&["--json", s(&astronaut)]);
    let pdq = first.lines[0]["pdq"]["hash"].as_str().unwrap().to_string();
    let md5 = first.lines[0]["md5"].as_str().unwrap().to_string();

    let bank = dir.path().join("known-bad.txt");
    std::fs::write(
        &bank,
        format!("# test bank\npdq {pdq} case-1\nmd5 {md5} case-1-file\n"),
    )
    .unwrap();
    let run = scan(&["--json", "--bank", s(&bank), s(&astronaut)]);
    assert_eq!(run.status, 1);
    let line = &run.lines[0];
    assert_eq!(line["verdict"], "block");
    let matches = line["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 2, "{line}");
    let pdq_match = matches.iter().find(|m| m["signal"] == "pdq").unwrap();
    assert_eq!(pdq_match["bank"], "known-bad");
    assert_eq!(pdq_match["distance"], 0);
    assert_eq!(pdq_match["transform"], "original");
    assert_eq!(pdq_match["entry"], "case-1");

    // An allow-list bank (by policy) clears the colour chart's classifier review.
    let released = dir.path().join("released.txt");
    let color_md5 = scan(&["--json", s(&color)]).lines[0]["md5"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(&released, format!("md5 {color_md5} review-42\n")).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[banks.released]\naction = \"allow\"\n").unwrap();
    let run = scan(&[
        "--json",
        "--bank",
        s(&released),
        "--policy",
        s(&policy),
        s(&color),
    ]);
    assert_eq!(run.status, 0, "{}", run.stdout);
    assert_eq!(run.lines[0]["verdict"], "allow");
}

#[test]
fn malformed_bank_or_policy_stops_the_run_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let astronaut = copy_photo(dir.path(), "astronaut.png");
    let bank = dir.path().join("bad-bank.txt");
    std::fs::write(&bank, "# ok\npdq nothex\n").unwrap();
    let run = scan(&["--json", "--bank", s(&bank), s(&astronaut)]);
    assert_eq!(run.status, 2);
    assert!(
        run.stdout.is_empty(),
        "nothing screened against a half-loaded bank"
    );
    assert!(run.stderr.contains("bad-bank.txt:2:"), "{}", run.stderr);

    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[labels.NO_SUCH_LABEL]\nreview = 0.5\n").unwrap();
    let run = scan(&["--policy", s(&policy), s(&astronaut)]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("NO_SUCH_LABEL"), "{}", run.stderr);
}

/// A loopback HTTP server answering each connection by path.
fn serve(body: Vec<u8>) -> String {
    use common::raw_http::{respond, RawOrigin};
    // Whether `/early.png` was asked for: `/late.png` answers only after it.
    let early = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let origin = RawOrigin::start(move |target, stream| match target {
        "/early.png" => {
            *early.0.lock().unwrap() = true;
            early.1.notify_all();
            respond(stream, "200 OK", &[], &body)
        }
        // Bounded, so a client that never asks for the early one gets its own timeout
        // rather than a hung test.
        "/late.png" => {
            let seen = early
                .1
                .wait_timeout_while(early.0.lock().unwrap(), Duration::from_secs(30), |seen| {
                    !*seen
                })
                .unwrap();
            drop(seen);
            respond(stream, "200 OK", &[], &body)
        }
        "/cover.png" => respond(stream, "200 OK", &[], &body),
        // No Content-Length: the cap must be enforced while streaming.
        "/endless" => {
            stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n",
            )?;
            let chunk = [0u8; 64 * 1024];
            for _ in 0..2_000 {
                stream.write_all(&chunk)?;
            }
            Ok(())
        }
        // An answer that never comes (the client's timeout ends it).
        "/slow" => {
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        }
        _ => respond(stream, "404 Not Found", &[], b""),
    });
    format!("http://{}", origin.addr)
}

/// Inputs are screened side by side, yet each result is printed in input order: a URL that
/// is answered only once a later input was asked for comes out first, before the files
/// and errors after it, and the exit status still counts every input.
#[test]
fn results_come_in_input_order_while_later_inputs_are_screened_meanwhile() {
    let body = std::fs::read(skimage_dir().join("astronaut.png")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let coffee = copy_photo(dir.path(), "coffee.png");
    let chelsea = copy_photo(dir.path(), "chelsea.png");
    let text = dir.path().join("notes.png");
    std::fs::write(&text, "not an image").unwrap();
    let missing = dir.path().join("missing.png");
    for jobs in ["1", "2"] {
        // A server of its own per run: the late URL waits for this run's early one.
        let base = serve(body.clone());
        let port = base.rsplit(':').next().unwrap().to_string();
        let (late, early) = (format!("{base}/late.png"), format!("{base}/early.png"));
        let inputs = [
            late.as_str(),
            s(&coffee),
            s(&text),
            early.as_str(),
            s(&missing),
            s(&chelsea),
        ];
        let mut args = vec![
            "--json",
            "--jobs",
            jobs,
            "--allow-network",
            "127.0.0.1/32",
            "--allow-port",
            &port,
            "--url-timeout",
            "10",
        ];
        args.extend(inputs);
        let run = scan(&args);
        assert_eq!(run.status, 2, "jobs {jobs}: {}", run.stderr);
        assert_eq!(run.sources(), inputs, "jobs {jobs}");
        let kinds: Vec<&str> = run
            .lines
            .iter()
            .map(|l| {
                l["verdict"]
                    .as_str()
                    .or(l["error"]["kind"].as_str())
                    .unwrap()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "allow",
                "allow",
                "unsupported_format",
                "allow",
                "not_found",
                "allow"
            ],
            "jobs {jobs}: {}",
            run.stdout
        );
    }
}

#[test]
fn urls_are_fetched_with_a_byte_cap_and_a_timeout() {
    let body = std::fs::read(skimage_dir().join("astronaut.png")).unwrap();
    let base = serve(body);
    let (cover, endless, slow, missing) = (
        format!("{base}/cover.png"),
        format!("{base}/endless"),
        format!("{base}/slow"),
        format!("{base}/missing.png"),
    );
    let port = base.rsplit(':').next().unwrap().to_string();
    let run = scan(&[
        "--json",
        "--allow-network",
        "127.0.0.1/32",
        "--allow-port",
        &port,
        "--max-bytes",
        "1000000",
        "--url-timeout",
        "2",
        &cover,
        &endless,
        &slow,
        &missing,
    ]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert_eq!(by_source(&run, &cover)["verdict"], "allow");
    assert_eq!(
        by_source(&run, &cover)["detections"][0]["label"],
        "FACE_FEMALE"
    );
    assert_eq!(by_source(&run, &endless)["error"]["kind"], "too_large");
    assert_eq!(by_source(&run, &slow)["error"]["kind"], "timeout");
    assert_eq!(by_source(&run, &missing)["error"]["kind"], "http_status");
}

#[test]
fn runtime_and_model_overrides_are_used_and_their_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let astronaut = copy_photo(dir.path(), "astronaut.png");
    let run = |envs: &[(&str, &str)], extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_coverguard"))
            .arg("scan")
            .args(extra)
            .arg(s(&astronaut))
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };

    let (status, stdout, stderr) =
        run(&[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")], &[]);
    assert_eq!(status, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("/nonexistent/libonnxruntime.so") && stderr.contains("models fetch"),
        "{stderr}"
    );

    let (status, _, stderr) = run(&[], &["--model", "/nonexistent/model.onnx"]);
    assert_eq!(status, 2);
    assert!(stderr.contains("/nonexistent/model.onnx"), "{stderr}");

    // A copy of the real model under another name works, and is identified by its content.
    let provisioned =
        coverguard::provision::provision(&coverguard::provision::Cache::from_env().unwrap(), None)
            .unwrap();
    let copy = dir.path().join("copy.onnx");
    std::fs::copy(&provisioned.model_path, &copy).unwrap();
    let (status, stdout, stderr) = run(
        &[("ORT_DYLIB_PATH", s(&provisioned.runtime_library))],
        &["--json", "--model", s(&copy)],
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stdout.contains("\"model\":\"nudenet-320n@c15d8273adad\""),
        "{stdout}"
    );
}

#[test]
fn enqueue_refuses_a_manifest_with_bad_rows_before_touching_queue_or_store() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("jobs.csv");
    std::fs::write(
        &manifest,
        "artwork_id,url,path,owner_id\na1,,a.png,o\na2,https://x.test/a.png,b.png,o\n,,c.png,o\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coverguard"))
        .args([
            "backfill",
            "enqueue",
            "--nats",
            "nats://127.0.0.1:1",
            "--manifest",
        ])
        .arg(&manifest)
        .env("COVERGUARD_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2 bad row(s)") && stderr.contains("nothing was queued"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 3") && stderr.contains("line 4"),
        "{stderr}"
    );
    // Refused before the store was opened: no data directory was made.
    assert!(!dir.path().join("data").exists());
}

/// A process on a store that others share generates nothing all of them must share: without
/// the quarantine key, or (to serve) without tokens, it refuses to start, saying what is
/// missing, before it opens the store or writes anything.
#[test]
fn serving_a_shared_store_needs_the_key_and_tokens_configured() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |key: Option<&str>| {
        // Were it to start, it would wait for the store forever: bounded, it fails instead.
        let mut command = Command::new("timeout");
        command
            .args(["30", env!("CARGO_BIN_EXE_coverguard"), "serve"])
            .env("COVERGUARD_DATA_DIR", dir.path().join("data"))
            .env("COVERGUARD_LISTEN", "127.0.0.1:0")
            .env("DATABASE_URL", "postgres://127.0.0.1:1/unreachable");
        match key {
            Some(key) => command.env("COVERGUARD_QUARANTINE_KEY", key),
            None => command.env_remove("COVERGUARD_QUARANTINE_KEY"),
        };
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_ne!(out.status.code(), Some(124), "it started: {stderr}");
        assert!(!out.status.success(), "{stderr}");
        stderr
    };
    let stderr = serve(None);
    assert!(stderr.contains("needs quarantine_key"), "{stderr}");
    let stderr = serve(Some(&"44".repeat(32)));
    assert!(stderr.contains("needs [[tokens]]"), "{stderr}");
    assert!(!dir.path().join("data").exists());
}

fn users(data_dir: &Path, password: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coverguard"));
    command
        .arg("users")
        .args(args)
        .env("COVERGUARD_DATA_DIR", data_dir)
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::null());
    match password {
        Some(p) => command.env("COVERGUARD_USER_PASSWORD", p),
        None => command.env_remove("COVERGUARD_USER_PASSWORD"),
    };
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_users_are_added_and_disabled_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let added = users(
        &data,
        Some("correct horse battery"),
        &["add", "adam", "--role", "admin"],
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    for (password, args, expected) in [
        (Some("short"), vec!["add", "bea"], "at least 12"),
        (
            Some("correct horse battery"),
            vec!["add", "Bea Q"],
            "user name",
        ),
        (
            Some("correct horse battery"),
            vec!["add", "bea", "--role", "service"],
            "--role",
        ),
        (None, vec!["add", "bea"], "at least 12"),
        (None, vec!["disable", "nobody"], "not found"),
    ] {
        let refused = users(&data, password, &args);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }

    let store = coverguard::store::open(data.join("coverguard.db").to_str().unwrap())
        .await
        .unwrap();
    let adam = store.console_user("adam").await.unwrap().unwrap();
    assert_eq!(adam.role, coverguard::store::ConsoleRole::Admin);
    assert!(coverguard::http::session::verify_password(
        "correct horse battery",
        &adam.password_hash
    ));
    assert!(store.console_user("bea").await.unwrap().is_none());
    let disabled = users(&data, None, &["disable", "adam"]);
    assert!(
        disabled.status.success(),
        "{}",
        String::from_utf8_lossy(&disabled.stderr)
    );
    assert!(store.console_user("adam").await.unwrap().unwrap().disabled);
    store.close().await;
}

fn retro_match(cwd: &Path, config: &str, bank: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coverguard"))
        .current_dir(cwd)
        .args(["banks", "retro-match", "--config", config, "--bank", bank])
        .env_remove("DATABASE_URL")
        .env_remove("COVERGUARD_DATA_DIR")
        .env("USER", "ops-oncall")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retro_match_opens_the_configured_store_refuses_unknown_banks_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(
        run.join("coverguard.toml"),
        format!(
            "data_dir = \"data\"\nquarantine_key = \"{}\"\n",
            "33".repeat(32)
        ),
    )
    .unwrap();
    // The store the service would have written, beside the config file.
    let store = coverguard::store::open(run.join("data/coverguard.db").to_str().unwrap())
        .await
        .unwrap();
    store
        .create_bank(&coverguard::store::BankSpec {
            name: "known-bad".into(),
            signal_types: vec!["md5".into()],
            pdq_threshold: 31,
            action: coverguard::screening::policy::BankAction::Block,
            allow_list: false,
            severity: 1,
            category: None,
        })
        .await
        .unwrap();
    let config = "../run/coverguard.toml";

    let refused = retro_match(&elsewhere, config, "known_bad");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no bank named \"known_bad\"") && stderr.contains("known-bad"),
        "{stderr}"
    );

    let ran = retro_match(&elsewhere, config, "known-bad");
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("0 artwork(s) compared"), "{stderr}");
    // Nothing was created where the command ran: it used the configured store.
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    let audit = store.recent_audit(10).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "bank.retro_match"
            && a.actor == "cli:ops-oncall"
            && a.subject == "known-bad"),
        "{audit:?}"
    );
    store.close().await;
}

fn hash_images(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coverguard"))
        .arg("hash")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn hash_builds_a_bank_from_images_that_scan_loads_and_a_caption_cannot_evade() {
    let dir = tempfile::tempdir().unwrap();
    let camera = copy_photo(dir.path(), "camera.png");
    let (status, lines, stderr) = hash_images(&["--id-from-name", s(&camera)]);
    assert_eq!(status, 0, "{stderr}");
    let parsed: Vec<Vec<&str>> = lines.lines().map(|l| l.split(' ').collect()).collect();
    let signals: Vec<String> = parsed.iter().map(|l| l[0].to_string()).collect();
    let regions = coverguard::hash::robust::Region::ALL.map(|r| format!("pdq_{r}"));
    let expected: Vec<String> = std::iter::once("pdq".to_string())
        .chain(regions)
        .chain(["md5".to_string()])
        .collect();
    assert_eq!(signals, expected);
    assert!(
        parsed.iter().all(|l| l.len() == 3 && l[2] == "camera"),
        "{lines}"
    );
    // The pdq line is the reference hash scan reports.
    let run = scan(&["--json", s(&camera)]);
    assert_eq!(parsed[0][1], run.lines[0]["pdq"]["hash"]);

    // A caption bar over the bottom fifth: the whole-image hash misses it, the region
    // line of the image-built bank catches it; the plain pdq line alone does not.
    let mut picture = image::open(&camera).unwrap().to_rgb8();
    let (w, h) = picture.dimensions();
    for y in h * 4 / 5..h {
        for x in 0..w {
            let ink = if (x / 6 + y / 9) % 11 == 0 { 20 } else { 250 };
            picture.put_pixel(x, y, image::Rgb([ink, ink, ink]));
        }
    }
    let captioned = dir.path().join("captioned.png");
    picture.save(&captioned).unwrap();
    let image_built = dir.path().join("image-built.txt");
    std::fs::write(&image_built, &lines).unwrap();
    let hash_only = dir.path().join("hash-only.txt");
    std::fs::write(&hash_only, format!("{}\n", lines.lines().next().unwrap())).unwrap();
    let run = scan(&["--json", "--bank", s(&hash_only), s(&captioned)]);
    assert_eq!(
        run.lines[0]["matches"],
        serde_json::json!([]),
        "{}",
        run.stdout
    );
    let run = scan(&["--json", "--bank", s(&image_built), s(&captioned)]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let m = &run.lines[0]["matches"][0];
    assert_eq!(m["signal"], "pdq_top75", "{}", run.stdout);
    assert_eq!(m["transform"], "region:top75");
    assert_eq!(m["robust"], true);
    assert_eq!(m["entry"], "camera");

    // A region line without its image's id is refused, as any malformed bank line.
    let bare = dir.path().join("bare.txt");
    std::fs::write(&bare, format!("pdq_top75 {}\n", parsed[1][1])).unwrap();
    let run = scan(&["--bank", s(&bare), s(&camera)]);
    assert_eq!(run.status, 2);
    assert!(
        run.stderr
            .contains("bare.txt:1: pdq_top75 line has no entry id"),
        "{}",
        run.stderr
    );
}

#[test]
fn hash_follows_scans_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    // A flat image: its PDQ is under the quality gate, so no pdq line, said on stderr.
    let flat = dir.path().join("flat.png");
    image::RgbImage::from_pixel(200, 200, image::Rgb([90, 90, 90]))
        .save(&flat)
        .unwrap();
    let (status, lines, stderr) = hash_images(&[s(&flat)]);
    assert_eq!(status, 1, "{stderr}");
    assert!(lines.lines().all(|l| l.starts_with("md5 ")), "{lines}");
    assert!(
        stderr.contains("skipped pdq: quality 0 is below 50"),
        "{stderr}"
    );
    // Without --id-from-name the id is the start of the file's SHA-256.
    let id = lines.split_whitespace().nth(2).unwrap();
    assert_eq!(id.len(), 32);
    // An unreadable file fails the run (2) and the others are still hashed.
    let missing = dir.path().join("missing.png");
    let camera = copy_photo(dir.path(), "camera.png");
    let (status, lines, stderr) = hash_images(&["--id-from-name", s(&missing), s(&camera)]);
    assert_eq!(status, 2);
    assert!(stderr.contains("missing.png: not_found error"), "{stderr}");
    assert!(lines.contains(" camera\n"), "{lines}");
}
