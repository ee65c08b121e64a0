//! A console user for API tests: created by an admin token, logged in, and sending the
//! session cookie and CSRF token with each request.

use reqwest::Method;
use serde_json::{json, Value};

use super::server::{Server, ADMIN_TOKEN};

pub const PASSWORD: &str = "correct horse battery staple";

/// A logged-in console user: the session cookie and the CSRF token.
pub struct Console<'a> {
    pub server: &'a Server,
    pub cookie: String,
    pub csrf: String,
    /// The login answer's whole `Set-Cookie` header.
    pub set_cookie: String,
}

impl Console<'_> {
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self
            .server
            .client
            .request(method, format!("{}{path}", self.server.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(Method::POST, path, Some(body)).await
    }

    /// A GET answered with bytes (an image), not JSON.
    pub async fn bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .server
            .client
            .get(format!("{}{path}", self.server.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    }
}

/// Creates a console user with [`PASSWORD`].
pub async fn add_user(server: &Server, name: &str, role: &str) {
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/users",
            &json!({"username": name, "password": PASSWORD, "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// The console's answer to logging `name` in with `password`.
pub async fn login_response(server: &Server, name: &str, password: &str) -> reqwest::Response {
    server
        .client
        .post(format!("{}/v1/review/login", server.base))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap()
}

/// One login attempt: its status and error kind.
pub async fn try_login(server: &Server, name: &str, password: &str) -> (u16, Option<String>) {
    let response = login_response(server, name, password).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"]["kind"].as_str().map(str::to_string))
}

/// Logs `name` in with [`PASSWORD`].
pub async fn login<'a>(server: &'a Server, name: &str) -> Console<'a> {
    let response = login_response(server, name, PASSWORD).await;
    assert_eq!(response.status().as_u16(), 200);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    Console {
        server,
        cookie: set_cookie.split(';').next().unwrap().to_string(),
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
        set_cookie,
    }
}
