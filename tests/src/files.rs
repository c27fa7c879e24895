//! A plain HTTP file server standing in for "somewhere on the internet": the `url` source
//! method downloads SRPMs, specs and tarballs from it. It counts requests, and can be stopped
//! to show that a later step needs nothing from it.

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::oneshot;

/// Serves the files directly in one directory at `<url>/<name>`.
pub struct FileServer {
    url: String,
    requests: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

struct Served {
    dir: PathBuf,
    requests: Arc<AtomicUsize>,
}

impl FileServer {
    pub async fn start(dir: &Path) -> FileServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the file server");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(Served {
            dir: dir.to_owned(),
            requests: Arc::clone(&requests),
        });
        let app = Router::new()
            .route("/{name}", axum::routing::get(serve))
            .with_state(state);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        FileServer {
            url,
            requests,
            stop: Some(stop),
        }
    }

    /// `<base>/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// How many requests it has answered.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stops answering: connections are refused from now on.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(State(served): State<Arc<Served>>, UrlPath(name): UrlPath<String>) -> Response {
    served.requests.fetch_add(1, Ordering::SeqCst);
    if name.contains('/') || name.starts_with('.') {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match tokio::fs::read(served.dir.join(&name)).await {
        Ok(bytes) => bytes.into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
