//! URL screening against hostile URLs: loopback, private and metadata addresses reached
//! directly, by name, by redirect or by a DNS answer that changes; slow and endless bodies;
//! connections closed under a request.
//! These exercise the fetcher alone; `service.rs` checks that `/v1/screen` answers
//! `blocked_destination` through it.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coverguard::fetch::destination::Lookup;
use coverguard::fetch::{DestinationPolicy, FetchError, HttpFetcher, HttpOptions, Refusal};

use common::raw_http::{respond, RawOrigin};

/// A raw HTTP/1.1 server on 127.0.0.1 that counts the connections it accepts.
/// `/img` answers 8 bytes, `/to?<url>` redirects there, `/stall` sends its headers and
/// a few bytes and then nothing.
fn origin() -> RawOrigin {
    RawOrigin::start(|target, stream| match target.split_once('?') {
        Some(("/to", location)) => respond(stream, "302 Found", &[("Location", location)], b""),
        _ if target == "/img" => respond(stream, "200 OK", &[], b"imgbytes"),
        _ if target == "/stall" => {
            stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nfirst",
            )?;
            // Holds the body's other 995 bytes back (the client's deadline ends it).
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        }
        _ => respond(stream, "404 Not Found", &[], b""),
    })
}

/// A DNS server under the test's control: each name answers from its list of answers in
/// turn (the last one repeats), and every lookup is counted.
#[derive(Default)]
struct ScriptedDns {
    answers: Mutex<std::collections::HashMap<String, Vec<Vec<SocketAddr>>>>,
    lookups: AtomicUsize,
}

impl ScriptedDns {
    fn answer(&self, name: &str, answers: &[&[&str]]) {
        let parsed = answers
            .iter()
            .map(|ips| {
                ips.iter()
                    .map(|ip| SocketAddr::new(ip.parse().unwrap(), 0))
                    .collect()
            })
            .collect();
        self.answers
            .lock()
            .unwrap()
            .insert(name.to_string(), parsed);
    }
}

impl Lookup for ScriptedDns {
    fn lookup(
        &self,
        name: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
    {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let mut answers = self.answers.lock().unwrap();
        let result = match answers.get_mut(&name) {
            Some(list) if list.len() > 1 => Ok(list.remove(0)),
            Some(list) => Ok(list[0].clone()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such name",
            )),
        };
        Box::pin(async move { result })
    }
}

fn fetcher(destinations: DestinationPolicy, dns: &Arc<ScriptedDns>) -> HttpFetcher {
    HttpFetcher::with_lookup(
        HttpOptions {
            destinations,
            ..HttpOptions::default()
        },
        Arc::clone(dns) as Arc<dyn Lookup>,
    )
    .unwrap()
}

fn refusal(result: Result<Vec<u8>, FetchError>) -> Refusal {
    match result {
        Err(FetchError::Blocked { reason, .. }) => reason,
        other => panic!("expected a refused destination, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_private_and_metadata_addresses_are_refused_before_connecting() {
    let origin = origin();
    let port = origin.addr.port();
    let dns = Arc::new(ScriptedDns::default());
    dns.answer("metadata.test", &[&["169.254.169.254"]]);
    dns.answer("intranet.test", &[&["10.1.2.3"]]);
    dns.answer("v6-loopback.test", &[&["::1"]]);
    dns.answer("loopback.test", &[&["127.0.0.1"]]);
    // The port is allowed, so only the address stands in the way.
    let policy = DestinationPolicy {
        allow_ports: vec![80, 443, port],
        ..DestinationPolicy::default()
    };
    let f = fetcher(policy, &dns);
    for url in [
        format!("http://127.0.0.1:{port}/img"),
        format!("http://[::ffff:127.0.0.1]:{port}/img"),
        format!("http://2130706433:{port}/img"),
        format!("http://loopback.test:{port}/img"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://metadata.test/latest/meta-data/".to_string(),
        "http://intranet.test/admin".to_string(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_string(),
        "http://v6-loopback.test/".to_string(),
    ] {
        let reason = refusal(f.get(&url, 1 << 20).await);
        assert!(
            matches!(reason, Refusal::Address { .. }),
            "{url}: {reason:?}"
        );
    }
    assert_eq!(origin.connections(), 0, "nothing was connected to");

    // Schemes and ports are refused from the URL alone.
    let f = fetcher(DestinationPolicy::default(), &dns);
    assert_eq!(
        refusal(
            f.get(&format!("http://127.0.0.1:{port}/img"), 1 << 20)
                .await
        ),
        Refusal::Port(port)
    );
    assert_eq!(
        refusal(f.get("gopher://example.test/", 10).await),
        Refusal::Scheme("gopher".into())
    );
    assert_eq!(
        refusal(f.get("file:///etc/passwd", 10).await),
        Refusal::Scheme("file".into())
    );
    assert_eq!(origin.connections(), 0);
}

#[tokio::test]
async fn the_allow_listed_server_is_fetched_and_redirects_out_of_it_are_refused() {
    let origin = origin();
    let port = origin.addr.port();
    let dns = Arc::new(ScriptedDns::default());
    dns.answer("metadata.test", &[&["169.254.169.254"]]);
    dns.answer("images.test", &[&["127.0.0.1"]]);
    let f = fetcher(DestinationPolicy::allowing(origin.addr), &dns);
    let base = format!("http://127.0.0.1:{port}");

    assert_eq!(
        f.get(&format!("{base}/img"), 1 << 20).await.unwrap(),
        b"imgbytes"
    );
    // A redirect inside the allow-listed server is followed, by address and by name.
    assert_eq!(
        f.get(&format!("{base}/to?http://images.test:{port}/img"), 1 << 20)
            .await
            .unwrap(),
        b"imgbytes"
    );
    let before = origin.connections();
    // 127.0.0.2 is loopback too, and answers on Linux: only the check stops it.
    for (location, expected) in [
        (format!("http://127.0.0.2:{port}/img"), "address"),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "address",
        ),
        (
            "http://metadata.test/latest/meta-data/".to_string(),
            "address",
        ),
        (format!("http://[::1]:{port}/img"), "address"),
        ("http://images.test:22/".to_string(), "port"),
        ("ftp://images.test/img".to_string(), "scheme"),
    ] {
        let reason = refusal(f.get(&format!("{base}/to?{location}"), 1 << 20).await);
        let kind = match reason {
            Refusal::Address { .. } => "address",
            Refusal::Port(_) => "port",
            Refusal::Scheme(_) => "scheme",
            Refusal::NoAddress(_) => "none",
        };
        assert_eq!(kind, expected, "redirect to {location}: {reason:?}");
    }
    // Each refused redirect cost exactly one connection: the allow-listed first hop.
    assert_eq!(origin.connections() - before, 6);
}

#[tokio::test]
async fn the_connection_goes_to_the_address_that_was_checked() {
    let origin = origin();
    let port = origin.addr.port();
    let dns = Arc::new(ScriptedDns::default());
    // A rebinding name: allowed on the first answer, loopback outside the allow-list after.
    dns.answer("rebind.test", &[&["127.0.0.1"], &["127.0.0.2"]]);
    // A name answering one allowed and one private address is refused as a whole.
    dns.answer("mixed.test", &[&["127.0.0.1", "10.0.0.1"]]);
    let f = fetcher(DestinationPolicy::allowing(origin.addr), &dns);

    let url = format!("http://rebind.test:{port}/img");
    assert_eq!(f.get(&url, 1 << 20).await.unwrap(), b"imgbytes");
    // One lookup served both the check and the connection: no window to rebind in.
    assert_eq!(dns.lookups.load(Ordering::SeqCst), 1);
    let reason = refusal(f.get(&url, 1 << 20).await);
    assert!(
        matches!(reason, Refusal::Address { ref host, .. } if host == "rebind.test"),
        "{reason:?}"
    );
    assert_eq!(dns.lookups.load(Ordering::SeqCst), 2);

    let connections = origin.connections();
    let reason = refusal(
        f.get(&format!("http://mixed.test:{port}/img"), 1 << 20)
            .await,
    );
    assert!(matches!(reason, Refusal::Address { .. }), "{reason:?}");
    assert_eq!(origin.connections(), connections);
}

#[tokio::test]
async fn a_stalled_body_hits_the_read_timeout_long_before_the_deadline() {
    let origin = origin();
    let dns = Arc::new(ScriptedDns::default());
    let f = HttpFetcher::with_lookup(
        HttpOptions {
            timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(1),
            destinations: DestinationPolicy::allowing(origin.addr),
            ..HttpOptions::default()
        },
        dns as Arc<dyn Lookup>,
    )
    .unwrap();
    let started = Instant::now();
    let err = f
        .get(&format!("http://{}/stall", origin.addr), 1 << 20)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "timeout", "{err}");
    assert!(err.to_string().contains("no data for 1 s"), "{err}");
    // The 60 s deadline was not what ended it (a generous bound, not a speed claim).
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// An origin that keeps its connections alive and answers the first `answered` requests on
/// each with 8 bytes; the next request on a connection finds it closed, unanswered, as a
/// server's idle close can meet a client's next request. Counts the connections accepted.
fn closing_origin(answered: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                for _ in 0..answered {
                    let mut line = String::new();
                    // The request's head, up to its blank line.
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                        line.clear();
                    }
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nimgbytes";
                    if stream.write_all(answer).is_err() {
                        return;
                    }
                }
                // The next request's head arrives, and the connection closes under it.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
            });
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn a_request_cut_off_on_a_kept_connection_is_sent_again_on_a_new_one() {
    let (addr, connections) = closing_origin(1);
    let dns = Arc::new(ScriptedDns::default());
    let f = fetcher(DestinationPolicy::allowing(addr), &dns);
    let url = format!("http://{addr}/img");
    for fetch in 0..3 {
        let got = f.get(&url, 1 << 20).await;
        assert_eq!(got.unwrap(), b"imgbytes", "fetch {fetch}");
    }
    // Each fetch after the first met its kept connection closed and opened another.
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_origin_that_never_answers_is_tried_twice_and_refused() {
    let (addr, connections) = closing_origin(0);
    let dns = Arc::new(ScriptedDns::default());
    let f = fetcher(DestinationPolicy::allowing(addr), &dns);
    let err = f
        .get(&format!("http://{addr}/img"), 1 << 20)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "fetch", "{err}");
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}
