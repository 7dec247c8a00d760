//! A stand-in OTLP/HTTP collector on loopback: it answers every request with an empty 200 and
//! keeps what it was sent, so a test can check that a binary's spans really leave the process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the collector received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Received {
    /// Whether the (protobuf) body holds `needle`: strings travel as raw UTF-8 in protobuf.
    pub fn body_contains(&self, needle: &str) -> bool {
        self.body.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

/// The collector; it stops accepting when the test process ends.
#[derive(Debug, Clone)]
pub struct OtlpSink {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl OtlpSink {
    pub fn start() -> Result<Self, crate::Error> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = sink.clone();
                std::thread::spawn(move || serve(stream, &sink));
            }
        });
        Ok(Self { url, received })
    }

    /// The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Polls until a received request satisfies `pred`, or `within` passes.
    pub fn wait_for(&self, within: Duration, pred: impl Fn(&Received) -> bool) -> Option<Received> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(r) = self.received().into_iter().find(|r| pred(r)) {
                return Some(r);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Serves one keep-alive connection until the peer closes it or sends something unreadable.
fn serve(stream: TcpStream, sink: &Mutex<Vec<Received>>) {
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let (mut length, mut content_type) = (0usize, None);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("content-type") {
                    content_type = Some(value.to_owned());
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(mut r) = sink.lock() {
            r.push(Received {
                method,
                path,
                content_type,
                body,
            });
        }
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
