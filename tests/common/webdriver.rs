//! Debian's Chromium driven by its chromedriver over the W3C WebDriver protocol (no browser
//! download: the tests drive the system browser), shared by the browser tests.
//!
//! Browser tests run when /usr/bin/chromium and /usr/bin/chromedriver exist;
//! `COVERGUARD_TEST_BROWSER=1` (set by `.ci/run`) makes a missing browser a failure instead
//! of a skip.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether the browser test can run here: false (after printing `skipped: <reason>`) when
/// the browser is missing, and a panic instead when `COVERGUARD_TEST_BROWSER` is set.
pub fn browser_available() -> bool {
    let present = Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists();
    if !present {
        assert!(
            std::env::var_os("COVERGUARD_TEST_BROWSER").is_none(),
            "COVERGUARD_TEST_BROWSER is set but {CHROMIUM} or {CHROMEDRIVER} is missing \
             (apt-get install chromium chromium-driver)"
        );
        coverguard::testing::skip(&format!("no {CHROMIUM} / {CHROMEDRIVER}"));
    }
    present
}

/// chromedriver, killed on drop.
pub struct Driver {
    child: Child,
    pub base: String,
    client: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Browser<'a> {
    driver: &'a Driver,
    pub session: String,
}

/// Starts chromedriver on a port it binds itself (`--port=0`, read back from the line it
/// prints once listening), so no other process can take the port between choice and bind.
pub async fn start_driver() -> Driver {
    let mut child = Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let stdout = child.stdout.take().unwrap();
    let port = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
            line.strip_prefix("ChromeDriver was started successfully on port ")
                .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok())
        });
        // Keep draining, so chromedriver never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        port
    })
    .await
    .unwrap()
    .expect("chromedriver printed the port it listens on");
    let driver = Driver {
        child,
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(r) = driver
            .client
            .get(format!("{}/status", driver.base))
            .send()
            .await
        {
            let status: Value = r.json().await.unwrap_or_default();
            if status["value"]["ready"] == true {
                return driver;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not become ready");
}

impl Driver {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {body}"
        );
        body["value"].clone()
    }

    /// A headless Chromium session with its profile in `profile`, launched with `args`
    /// besides the ones every test needs.
    pub async fn browser(&self, profile: &Path, args: &[&str]) -> Browser<'_> {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .iter()
        .chain(args)
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let created = self
            .call(
                Method::POST,
                "/session",
                Some(json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
                }}})),
            )
            .await;
        Browser {
            driver: self,
            session: created["sessionId"].as_str().unwrap().to_string(),
        }
    }
}

impl Browser<'_> {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.driver
            .call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.call(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.call(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs `script` with a callback as its last argument, and returns what it calls back.
    pub async fn script_async(&self, script: &str, args: Value) -> Value {
        self.call(
            Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Polls until `script` returns something truthy (10 s), and returns it.
    pub async fn until(&self, what: &str, script: &str, args: Value) -> Value {
        for _ in 0..100 {
            let value = self.script(script, args.clone()).await;
            if !(value.is_null() || value == false || value == "" || value == 0) {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = self
            .script(
                "return document.body ? document.body.innerText : ''",
                json!([]),
            )
            .await;
        panic!("waited for {what}; the page says:\n{page}");
    }

    pub async fn find(&self, css: &str) -> String {
        self.until(
            &format!("element {css}"),
            "return document.querySelector(arguments[0]) !== null",
            json!([css]),
        )
        .await;
        let found = self
            .call(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_string()
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(
            Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The viewport as the browser painted it: PNG bytes.
    pub async fn screenshot_png(&self) -> Vec<u8> {
        let png = self.call(Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap()
    }

    pub async fn quit(self) {
        self.driver
            .call(Method::DELETE, &format!("/session/{}", self.session), None)
            .await;
    }
}
