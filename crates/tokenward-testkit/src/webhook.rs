//! A local webhook listener: binds 127.0.0.1 at a free port, answers every `POST /hook` with
//! 200, and hands each delivery to the test.

use std::time::Duration;

pub use axum::body::Bytes;
use axum::http::HeaderMap;
use tokio::sync::mpsc;

/// One webhook as the listener got it: the `Plaid-Verification` value and the raw body.
#[derive(Debug)]
pub struct Delivery {
    /// The `Plaid-Verification` header, if any.
    pub header: Option<String>,
    /// The body, byte for byte (the verifier hashes these bytes).
    pub body: Bytes,
}

/// A local webhook listener: its URL and what it receives.
#[derive(Debug)]
pub struct Hook {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    rx: mpsc::UnboundedReceiver<Delivery>,
}

impl Hook {
    /// Listens on 127.0.0.1 at a free port (the server runs on the current tokio runtime).
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub async fn start() -> Hook {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let tx = tx.clone();
                async move {
                    let header = headers
                        .get("plaid-verification")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let _ = tx.send(Delivery { header, body });
                    "ok"
                }
            }),
        );
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!(
            "http://{}/hook",
            socket.local_addr().expect("a bound socket has an address")
        );
        tokio::spawn(async move {
            // The listener lives as long as the runtime; a serve error ends the test's
            // deliveries, which `next` reports.
            let _ = axum::serve(socket, app).await;
        });
        Hook { url, rx }
    }

    /// A delivery already received, if any (does not wait).
    pub fn try_next(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }

    /// The next delivery.
    ///
    /// # Panics
    ///
    /// When none arrives within 10 s, or the listener stopped.
    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("no webhook within 10 s")
            .expect("listener gone")
    }
}
