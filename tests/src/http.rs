//! A small HTTP client for the tests: what a browser, curl or dnf would see of ferrocopr.
//!
//! ureq is blocking, so every call runs on tokio's blocking pool. Error statuses are answers, not
//! errors: tests assert on 401 and 404 as much as on 200.

use std::time::Duration;

/// Generous: a results file can be large and the machine busy building.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Bodies larger than this are a bug in the test or the server.
const BODY_LIMIT: u64 = 256 * 1024 * 1024;

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy: for assertions and messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into()
}

fn collect(url: &str, response: ureq::http::Response<ureq::Body>) -> HttpResponse {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response
        .into_body()
        .with_config()
        .limit(BODY_LIMIT)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("read the body of {url}: {e}"));
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// `GET url`.
pub async fn get(url: &str) -> HttpResponse {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let response = agent()
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        collect(&url, response)
    })
    .await
    .expect("the HTTP GET task panicked")
}

/// `GET url` with `headers` (a `Range`, say).
pub async fn get_with(url: &str, headers: Vec<(String, String)>) -> HttpResponse {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut request = agent().get(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = request.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        collect(&url, response)
    })
    .await
    .expect("the HTTP GET task panicked")
}

/// `POST url` with `headers` and `body`.
pub async fn post(url: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> HttpResponse {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut request = agent().post(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = request
            .send(&body[..])
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        collect(&url, response)
    })
    .await
    .expect("the HTTP POST task panicked")
}

/// `method url` with `headers` and `body` (the API's `PUT` and `DELETE` as much as `GET`).
pub async fn request(
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> HttpResponse {
    let (method, url) = (method.to_owned(), url.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut builder = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(&url);
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(body)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let response = agent()
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        collect(&url, response)
    })
    .await
    .expect("the HTTP request task panicked")
}

/// The `Authorization` value copr-cli sends for an API token: HTTP Basic `login:token`.
pub fn basic_auth(login: &str, token: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{login}:{token}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// `method url` with a JSON `body`, as `authorization` (a [`basic_auth`] value; `None`:
/// anonymous), the way python-copr calls the API v3.
pub async fn api_request(
    method: &str,
    url: &str,
    authorization: Option<String>,
    body: &serde_json::Value,
) -> HttpResponse {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(authorization) = authorization {
        headers.push(("Authorization".to_owned(), authorization));
    }
    request(method, url, headers, body.to_string().into_bytes()).await
}

/// `POST url` that announces a body of `content_length` bytes but sends only the request head,
/// then reads the answer: what a server that refuses oversized bodies up front must answer
/// without waiting for the body. Returns the status code.
pub async fn post_head_only(url: &str, headers: Vec<(String, String)>, content_length: u64) -> u16 {
    use std::io::{Read, Write};
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("{url} is not plain http"));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut stream = std::net::TcpStream::connect(authority)
            .unwrap_or_else(|e| panic!("connect to {authority}: {e}"));
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {content_length}\r\n"
        );
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.windows(2).any(|w| w == b"\r\n") {
            let n = stream
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("read the answer of {url}: {e}"));
            assert!(n > 0, "{url} closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&answer);
        line.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("{url} answered {line:?}"))
    })
    .await
    .expect("the HTTP POST task panicked")
}
