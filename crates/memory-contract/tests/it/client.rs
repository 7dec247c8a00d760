//! The client against a scripted HTTP server on loopback: breaker, 4xx, redirects, typed errors,
//! capabilities and timeouts. (Its round trips against the real plugin live in the plugin's
//! tests.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use molecule_memory_contract::client::{ClientConfig, ClientError, PluginClient};
use molecule_memory_contract::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the stub does with the next request.
#[derive(Clone)]
enum Reply {
    Status(u16, &'static str),
    /// Close the connection without answering.
    Hangup,
    /// Answer after this long.
    Slow(Duration),
    /// A 307 to this path on the same stub.
    Redirect(&'static str),
}

struct Stub {
    port: u16,
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Stub {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let script: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, r) = (script.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut got = 0;
                    // Read the head and, by Content-Length, the body.
                    loop {
                        let Ok(n) = conn.read(&mut buf[got..]).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        got += n;
                        let text = String::from_utf8_lossy(&buf[..got]).to_string();
                        if let Some(head_end) = text.find("\r\n\r\n") {
                            let len = text[..head_end]
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if got >= head_end + 4 + len {
                                r.lock()
                                    .unwrap()
                                    .push(text.lines().next().unwrap_or_default().to_owned());
                                break;
                            }
                        }
                    }
                    let reply = s.lock().unwrap().pop_front().unwrap_or(Reply::Status(500, ""));
                    let mut extra = String::new();
                    let (status, body) = match reply {
                        Reply::Hangup => return,
                        Reply::Redirect(to) => {
                            extra = format!("location: {to}\r\n");
                            (307, "")
                        }
                        Reply::Slow(d) => {
                            tokio::time::sleep(d).await;
                            (200, r#"{"status":"ok","version":"1.0.0","capabilities":[]}"#)
                        }
                        Reply::Status(code, body) => (code, body),
                    };
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        });
        Self { port, script, seen }
    }

    fn then(&self, replies: &[Reply]) {
        self.script.lock().unwrap().extend(replies.iter().cloned());
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn client(&self, cooldown: Duration) -> PluginClient {
        PluginClient::new(ClientConfig {
            base_url: format!("http://127.0.0.1:{}/", self.port),
            timeout: Duration::from_millis(500),
            failure_threshold: 3,
            cooldown,
        })
        .unwrap()
    }
}

const HEALTH: &str = r#"{"status":"ok","version":"1.0.0","capabilities":["fts","ttl"]}"#;
const NOT_FOUND: &str = r#"{"code":"not_found","message":"namespace team:x does not exist"}"#;

fn search() -> SearchRequest {
    SearchRequest {
        namespaces: vec!["team:x".into()],
        ..SearchRequest::default()
    }
}

#[tokio::test]
async fn three_failures_open_the_breaker_and_a_probe_closes_it() {
    let stub = Stub::start().await;
    let client = stub.client(Duration::from_millis(300));
    stub.then(&[Reply::Status(500, ""), Reply::Hangup, Reply::Status(503, "")]);
    for _ in 0..3 {
        let e = client.search(&search()).await.unwrap_err();
        assert!(!matches!(e, ClientError::BreakerOpen { .. }), "{e}");
    }
    // Open: fails fast, nothing sent.
    let before = stub.requests();
    let e = client.search(&search()).await.unwrap_err();
    assert!(matches!(e, ClientError::BreakerOpen { .. }), "{e}");
    assert!(e.to_string().contains("circuit breaker open"));
    assert_eq!(stub.requests(), before, "an open breaker sends nothing");

    // After the cooldown one probe goes through; its success closes the breaker.
    tokio::time::sleep(Duration::from_millis(350)).await;
    stub.then(&[Reply::Status(200, r#"{"memories":[]}"#), Reply::Status(500, "")]);
    assert!(client.search(&search()).await.unwrap().memories.is_empty());
    // Closed again: one failure does not reopen it.
    assert!(client.search(&search()).await.is_err());
    stub.then(&[Reply::Status(200, r#"{"memories":null}"#)]);
    assert!(client.search(&search()).await.is_ok());
}

#[tokio::test]
async fn a_failed_probe_reopens_at_once() {
    let stub = Stub::start().await;
    let client = stub.client(Duration::from_millis(200));
    stub.then(&[Reply::Status(500, ""), Reply::Status(500, ""), Reply::Status(500, "")]);
    for _ in 0..3 {
        let _ = client.search(&search()).await;
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    stub.then(&[Reply::Status(502, "bad gateway")]);
    assert!(matches!(
        client.search(&search()).await.unwrap_err(),
        ClientError::Plugin { status: 502, .. }
    ));
    assert!(matches!(
        client.search(&search()).await.unwrap_err(),
        ClientError::BreakerOpen { .. }
    ));
}

#[tokio::test]
async fn four_hundreds_never_count_and_errors_are_typed() {
    let stub = Stub::start().await;
    let client = stub.client(Duration::from_secs(60));
    for _ in 0..5 {
        stub.then(&[Reply::Status(404, NOT_FOUND)]);
        let e = client.commit("team:x", &MemoryWrite::fact("hello")).await.unwrap_err();
        match &e {
            ClientError::Plugin { status: 404, body } => {
                assert_eq!(body.code, ErrorCode::NotFound);
                assert_eq!(body.message, "namespace team:x does not exist");
            }
            other => panic!("{other}"),
        }
        assert_eq!(e.code(), Some(ErrorCode::NotFound));
    }
    // Still closed after five 4xx.
    stub.then(&[Reply::Status(200, HEALTH)]);
    assert!(client.health().await.is_ok());

    // A body that is not an Error: the code follows the status, the message quotes the body.
    stub.then(&[Reply::Status(418, "short and stout")]);
    let e = client.search(&search()).await.unwrap_err();
    assert!(
        e.to_string().contains("bad_request") && e.to_string().contains("short and stout"),
        "{e}"
    );
    stub.then(&[Reply::Status(500, "")]);
    let e = client.search(&search()).await.unwrap_err();
    assert!(
        e.to_string().contains("internal") && e.to_string().contains("(empty body)"),
        "{e}"
    );
}

#[tokio::test]
async fn invalid_requests_are_refused_before_sending() {
    let stub = Stub::start().await;
    let client = stub.client(Duration::from_secs(60));
    let empty = SearchRequest::default();
    assert!(matches!(client.search(&empty).await, Err(ClientError::Invalid(_))));
    assert!(matches!(
        client.commit("team:x", &MemoryWrite::fact("  ")).await,
        Err(ClientError::Invalid(_))
    ));
    assert!(matches!(
        client.commit("Team X", &MemoryWrite::fact("x")).await,
        Err(ClientError::Invalid(_))
    ));
    assert!(matches!(
        client.patch_namespace("team:x", &NamespacePatch::default()).await,
        Err(ClientError::Invalid(_))
    ));
    assert_eq!(stub.requests(), 0);
}

#[tokio::test]
async fn capabilities_and_timeouts() {
    let stub = Stub::start().await;
    let client = stub.client(Duration::from_secs(60));
    assert!(!client.supports(MemoryCapability::Fts), "nothing before a refresh");
    stub.then(&[Reply::Status(200, HEALTH)]);
    client.refresh().await.unwrap();
    assert!(client.supports(MemoryCapability::Fts));
    assert!(client.supports(MemoryCapability::Ttl));
    assert!(!client.supports(MemoryCapability::Embedding));

    stub.then(&[Reply::Slow(Duration::from_secs(3))]);
    let e = client.health().await.unwrap_err();
    assert!(e.to_string().contains("MEMORY_PLUGIN_TIMEOUT"), "{e}");

    // A URL that cannot be one is refused when the client is made, naming the knob.
    for bad in [
        "127.0.0.1:9100",
        "ftp://127.0.0.1:9100",
        "http://127.0.0.1:9100?x=1",
        "not a url",
    ] {
        let e = PluginClient::new(ClientConfig {
            base_url: bad.into(),
            ..ClientConfig::default()
        })
        .unwrap_err();
        assert!(matches!(e, ClientError::BadUrl { .. }), "{bad}: {e}");
        assert!(e.to_string().contains("MEMORY_PLUGIN_URL"), "{e}");
    }

    let nobody = PluginClient::new(ClientConfig {
        base_url: "http://127.0.0.1:1".into(),
        ..ClientConfig::default()
    })
    .unwrap();
    let e = nobody.health().await.unwrap_err();
    assert!(matches!(e, ClientError::Transport { .. }), "{e}");
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
}

#[tokio::test]
async fn a_408_is_sent_again_once_on_a_new_connection() {
    let stub = Stub::start().await;
    let client = stub.client(Duration::from_secs(60));
    stub.then(&[Reply::Status(408, ""), Reply::Status(200, HEALTH)]);
    client.health().await.expect("the second attempt answers");
    assert_eq!(stub.requests(), 2);
    // Only once: a server that keeps answering 408 gets an error naming the status.
    stub.then(&[Reply::Status(408, ""), Reply::Status(408, "")]);
    let err = client.health().await.unwrap_err();
    assert_eq!(stub.requests(), 4);
    assert!(err.to_string().contains("408"), "{err}");
    assert!(!client.breaker_open());
}

#[tokio::test]
async fn a_redirect_is_reported_and_never_followed() {
    let stub = Stub::start().await;
    let client = stub.client(Duration::from_secs(60));
    stub.then(&[
        Reply::Redirect("/elsewhere"),
        Reply::Status(
            200,
            r#"{"id":"00000000-0000-0000-0000-000000000001","namespace":"team:x"}"#,
        ),
    ]);
    let e = client.commit("team:x", &MemoryWrite::fact("hello")).await.unwrap_err();
    assert!(matches!(e, ClientError::Plugin { status: 307, .. }), "{e}");
    assert_eq!(stub.requests(), 1, "the memory went nowhere else");
}
